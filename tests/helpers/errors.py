"""Assertions on gRPC errors: the status code and the Glue exception name in ErrorInfo."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import grpc

from servicekit.errors import error_reason


async def expect_error(call: Awaitable[Any], code: grpc.StatusCode, reason: str) -> str:
    """Await ``call``, expecting ``code`` with ErrorInfo ``reason``; returns the message."""
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        assert exc.code() == code, f"{exc.code()} {exc.details()}"
        assert error_reason(exc) == reason, f"reason {error_reason(exc)!r}: {exc.details()}"
        return exc.details() or ""
    raise AssertionError(f"expected {reason}, the call succeeded")
