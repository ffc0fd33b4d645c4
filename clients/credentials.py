"""Credentials and TLS for the gRPC door, found the way the aws CLI finds them.

An access key (from the catalog's ``--access-keys`` file) goes with every call as
``authorization: Bearer <access_key_id>:<secret_access_key>``. ``find_credentials`` looks, in
order, at what was given explicitly (flags), the environment (``AWS_ACCESS_KEY_ID`` and
``AWS_SECRET_ACCESS_KEY``), then the shared credentials file (``AWS_SHARED_CREDENTIALS_FILE``,
default ``~/.aws/credentials``) under the profile given, ``AWS_PROFILE``, or ``default`` - the
same sources and order as the aws CLI, so one configured key serves boto3, the aws CLI and
gluectl alike.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc


class CredentialsError(ValueError):
    """Credentials were asked for but cannot be found or read."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """An access key of the catalog's key file."""

    access_key_id: str
    secret_access_key: str

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        """The call metadata that carries the key."""
        return (("authorization", f"Bearer {self.access_key_id}:{self.secret_access_key}"),)

    def __repr__(self) -> str:
        # Keeps the secret out of logs and tracebacks.
        return f"Credentials(access_key_id={self.access_key_id!r})"


def find_credentials(
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    *,
    profile: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Credentials | None:
    """The credentials to call with, or None when none are configured anywhere.

    Raises:
        CredentialsError: only one half of a key was given, a named profile does not exist,
            or the credentials file cannot be parsed.
    """
    env = os.environ if environ is None else environ
    if access_key_id or secret_access_key:
        return _pair(access_key_id, secret_access_key, "the command line")
    profile_name = profile or env.get("AWS_PROFILE")
    if profile is None and (env.get("AWS_ACCESS_KEY_ID") or env.get("AWS_SECRET_ACCESS_KEY")):
        return _pair(
            env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY"), "the environment"
        )
    path = Path(env.get("AWS_SHARED_CREDENTIALS_FILE") or Path.home() / ".aws" / "credentials")
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise CredentialsError(f"{path}: not a credentials file: {exc}") from None
    section = profile_name or "default"
    if not parser.has_section(section):
        if profile_name:
            raise CredentialsError(f"profile {section!r} is not in {path}")
        return None
    return _pair(
        parser.get(section, "aws_access_key_id", fallback=None),
        parser.get(section, "aws_secret_access_key", fallback=None),
        f"profile {section!r} of {path}",
    )


def _pair(key_id: str | None, secret: str | None, source: str) -> Credentials:
    if not key_id or not secret:
        raise CredentialsError(
            f"{source} gives only half an access key: both the access key id and the secret "
            "access key are needed"
        )
    return Credentials(key_id, secret)


def channel_credentials(
    ca_file: Path | None = None,
    *,
    cert_file: Path | None = None,
    key_file: Path | None = None,
) -> grpc.ChannelCredentials:
    """TLS channel credentials: the service's certificate checked against ``ca_file`` (the
    system's roots without one), and a client certificate when one is given.

    Raises:
        CredentialsError: a file cannot be read.
    """

    def read(path: Path | None, what: str) -> bytes | None:
        if path is None:
            return None
        try:
            return path.read_bytes()
        except OSError as exc:
            raise CredentialsError(f"cannot read the {what} {path}: {exc.strerror}") from None

    return grpc.ssl_channel_credentials(
        root_certificates=read(ca_file, "TLS CA file"),
        private_key=read(key_file, "TLS client key"),
        certificate_chain=read(cert_file, "TLS client certificate"),
    )


def _with_metadata(
    details: grpc.aio.ClientCallDetails, metadata: tuple[tuple[str, str], ...]
) -> grpc.aio.ClientCallDetails:
    return grpc.aio.ClientCallDetails(
        details.method,
        details.timeout,
        grpc.aio.Metadata(*(details.metadata or ()), *metadata),
        details.credentials,
        details.wait_for_ready,
    )


class _UnaryMetadata(grpc.aio.UnaryUnaryClientInterceptor):
    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self._metadata = metadata

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_with_metadata(details, self._metadata), request)


class _StreamMetadata(grpc.aio.UnaryStreamClientInterceptor):
    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self._metadata = metadata

    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_with_metadata(details, self._metadata), request)


def metadata_interceptors(
    metadata: tuple[tuple[str, str], ...],
) -> list[grpc.aio.ClientInterceptor]:
    """Interceptors that add fixed metadata (the bearer key) to every unary call and server
    stream of a grpc.aio channel.

    Interceptors rather than call credentials: gRPC sends call credentials only over TLS, and
    a loopback service without TLS still checks keys. Two objects, because a channel files an
    interceptor under the first call kind it implements only.
    """
    return [_UnaryMetadata(metadata), _StreamMetadata(metadata)]
