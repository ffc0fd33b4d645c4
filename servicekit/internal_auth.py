"""Who may call the scheduler's internal API: a shared secret, or mutual TLS.

The scheduler's API (glue.scheduler.v1) is the catalog's alone: whoever can call it can
register jobs, start runs and read every run's record. Two ways to keep everyone else out:

- a **shared secret**: a file only the two services can read; the catalog sends its contents
  as call metadata (``INTERNAL_SECRET_HEADER``) on every call, and the scheduler's call guard
  refuses any call without it (compared in constant time);
- **mutual TLS**: the scheduler serves TLS and requires a client certificate signed by the
  internal CA (for services on different hosts; also encrypts the traffic).

A scheduler reachable from other machines with neither is refused at start-up unless the
operator says ``--insecure``.
"""

from __future__ import annotations

import hmac
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from servicekit.errors import MissingAuthenticationTokenException, UnrecognizedClientException
from servicekit.server import CallGuard, is_loopback

INTERNAL_SECRET_HEADER = "x-glue-internal-secret"
"""The call metadata key that carries the shared secret (gRPC keys are lower case)."""
# Longer than any sensible secret, short enough that a wrong file (a log, a database) is
# refused instead of being sent on every call.
MAX_SECRET_BYTES = 4096


def load_secret(path: Path) -> str:
    """The shared secret in ``path`` (surrounding whitespace stripped).

    Raises:
        ValueError: the file cannot be read, is readable by group or others, is empty, or is
            not a short line of printable ASCII; the message names the file and the fix.
    """
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read the internal secret file {path}: {exc.strerror}") from exc
    refuse_shared(path, mode, "the internal secret file")
    secret = data.strip()
    if not secret:
        raise ValueError(f"the internal secret file {path} is empty; put a long random line in it")
    if len(secret) > MAX_SECRET_BYTES or not all(0x21 <= b < 0x7F for b in secret):
        raise ValueError(
            f"the internal secret file {path} must hold one line of at most "
            f"{MAX_SECRET_BYTES} printable ASCII characters (e.g. the output of "
            "`python -c 'import secrets; print(secrets.token_hex(32))'`)"
        )
    return secret.decode("ascii")


def refuse_shared(path: Path, mode: int, what: str) -> None:
    """Refuse a secrets file that group or others may use: its mode must be 0600 or tighter.

    Raises:
        ValueError: ``mode`` grants group or others anything; the message names the fix.
    """
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ValueError(
            f"{what} {path} is readable by group or others "
            f"(mode {stat.S_IMODE(mode):04o}); run: chmod 600 {path}"
        )


def secret_guard(secret: str) -> CallGuard:
    """A call guard that admits only calls carrying ``secret`` in ``INTERNAL_SECRET_HEADER``."""
    expected = secret.encode("ascii")

    def guard(method: str, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        sent = None
        for key, value in context.invocation_metadata() or ():
            if key == INTERNAL_SECRET_HEADER:
                sent = value.encode("utf-8", "replace") if isinstance(value, str) else value
        if sent is None:
            raise MissingAuthenticationTokenException(
                f"{method.rsplit('/', 1)[-1]} needs the internal secret: only the catalog "
                "service may call the scheduler"
            )
        # Constant time: a timing difference must not reveal how much of a guess was right.
        if not hmac.compare_digest(sent, expected):
            raise UnrecognizedClientException(
                f"{method.rsplit('/', 1)[-1]}: the internal secret sent is not this scheduler's"
            )

    return guard


def secret_metadata(secret: str | None) -> tuple[tuple[str, str], ...]:
    """The call metadata that carries ``secret`` (nothing without one)."""
    return ((INTERNAL_SECRET_HEADER, secret),) if secret else ()


@dataclass(frozen=True, slots=True, kw_only=True)
class MutualTls:
    """The PEM files of one side of the internal API's mutual TLS."""

    ca: Path
    """The internal CA: signs both services' certificates, and verifies the other side's."""
    cert: Path
    """This service's certificate."""
    key: Path
    """This service's private key."""

    @classmethod
    def from_paths(cls, ca: Path | None, cert: Path | None, key: Path | None) -> MutualTls | None:
        """All three files, or None when none is given.

        Raises:
            ValueError: only some of the three are given.
        """
        if ca is None and cert is None and key is None:
            return None
        if ca is None or cert is None or key is None:
            given = {"--internal-ca": ca, "--internal-cert": cert, "--internal-key": key}
            missing = ", ".join(flag for flag, value in given.items() if value is None)
            raise ValueError(f"mutual TLS needs all of {', '.join(given)}; missing {missing}")
        return cls(ca=ca, cert=cert, key=key)

    def read(self) -> tuple[bytes, bytes, bytes]:
        """(CA, certificate, key) PEM bytes.

        Raises:
            ValueError: a file cannot be read; the message names it.
        """
        out = []
        for name, path in (("CA", self.ca), ("certificate", self.cert), ("key", self.key)):
            try:
                out.append(path.read_bytes())
            except OSError as exc:
                raise ValueError(f"cannot read the internal {name} {path}: {exc.strerror}") from exc
        return out[0], out[1], out[2]


def check_exposure(listen: str, *, secret: bool, mutual_tls: bool, insecure: bool) -> None:
    """Refuse to serve the internal API beyond this machine with nothing guarding it.

    Raises:
        ValueError: ``listen`` is not a loopback address and neither a secret nor mutual TLS
            is configured, and ``insecure`` was not given; the message names the flags.
    """
    if secret or mutual_tls or insecure or is_loopback(listen):
        return
    raise ValueError(
        f"refusing to serve the internal API on {listen}, which other machines can reach, "
        "without authentication: add --internal-secret FILE (the same file the catalog "
        "service gets) or --internal-ca/--internal-cert/--internal-key for mutual TLS; "
        "--insecure serves it to anyone who can connect"
    )
