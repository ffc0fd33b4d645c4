"""Authentication of gRPC calls: ``authorization: Bearer <access_key_id>:<secret_access_key>``.

The keys are the gateway's access keys (``--access-keys``), so one key works on both doors.
The secret is compared in constant time; an unknown key id costs the same comparison, so the
answer's timing does not tell which key ids exist. The secret travels as sent, so outside
loopback it must travel over TLS (the catalog refuses to start otherwise, see ``listen``).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

import grpc

from catalog_service.gateway.access_keys import AccessKey
from catalog_service.gateway.canonical_request import INVALID_TOKEN_MESSAGE, MISSING_TOKEN_MESSAGE
from catalog_service.identity import caller
from servicekit.errors import MissingAuthenticationTokenException, UnrecognizedClientException

_SCHEME = "bearer"
# Compared against when the key id is unknown, so both answers take the same time.
_NO_SECRET = b"\0" * 40


class BearerAuthenticator:
    """The catalog's gRPC call guard: verifies the bearer key and sets the caller."""

    def __init__(self, keys: Mapping[str, AccessKey]) -> None:
        self._keys = dict(keys)

    def __call__(self, method: str, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        header = None
        for name, value in context.invocation_metadata() or ():
            if name == "authorization":
                if header is not None:
                    raise UnrecognizedClientException("more than one authorization header")
                header = value if isinstance(value, str) else value.decode("latin-1")
        if header is None:
            raise MissingAuthenticationTokenException(MISSING_TOKEN_MESSAGE)
        scheme, _, token = header.strip().partition(" ")
        key_id, colon, secret = token.strip().partition(":")
        if scheme.lower() != _SCHEME or not colon:
            raise UnrecognizedClientException(
                f"{INVALID_TOKEN_MESSAGE} Expected 'authorization: Bearer "
                "<access_key_id>:<secret_access_key>'."
            )
        key = self._keys.get(key_id)
        expected = key.secret.encode() if key is not None else _NO_SECRET
        if not hmac.compare_digest(secret.encode(), expected) or key is None:
            raise UnrecognizedClientException(INVALID_TOKEN_MESSAGE)
        caller.set(key.caller)
