"""The channel a GlueClient owns, and the one way its calls are made: a retry of read-only calls
that found the service UNAVAILABLE, and the translation of gRPC errors to GlueError.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Final, Self, TypeVar

import grpc

from clients.credentials import Credentials, metadata_interceptors
from glue.v1 import glue_pb2_grpc
from servicekit.errors import (
    GlueError,
    OperationTimeoutException,
    ServiceUnavailableException,
    error_reason,
    from_rpc_error,
)

if TYPE_CHECKING:
    from glue.v1.glue_pb2_grpc import GlueAsyncStub


T = TypeVar("T")

DEFAULT_TIMEOUT: Final = 30.0
"""Seconds each unary call may take before it fails with OperationTimeoutException."""

# Two retries spanning under a second: enough to ride out a reconnect or a service restart that
# is already under way, short enough that a command line learns quickly that nothing listens.
_RETRY_DELAYS: Final = (0.2, 0.6)

_CHANNEL_OPTIONS: Final = [
    # gRPC's default reconnect backoff starts at a second and grows to two minutes, during which
    # every call fails fast without trying; the retries above need a reconnect to be attempted.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    # GetJobs pages carry whole job definitions (scripts' arguments, code-gen node graphs).
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
]


class _State(enum.Enum):
    UNOPENED = enum.auto()
    OPENED = enum.auto()
    CLOSED = enum.auto()


class ClientChannel:
    """GlueClient's channel and how its calls are made (its arguments: GlueClient's docstring)."""

    def __init__(
        self,
        address: str,
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
        retry_delays: Sequence[float] = _RETRY_DELAYS,
        credentials: Credentials | None = None,
        tls: grpc.ChannelCredentials | None = None,
    ) -> None:
        self.address = address
        self._credentials = credentials
        self._tls = tls
        self.timeout = timeout
        self._retry_delays = tuple(retry_delays)
        self._state = _State.UNOPENED
        self._channel: grpc.aio.Channel | None = None
        self._stub_instance: GlueAsyncStub | None = None

    async def __aenter__(self) -> Self:
        if self._state is not _State.UNOPENED:
            raise RuntimeError("a GlueClient can be opened only once")
        # Created here rather than in __init__: a grpc.aio channel binds to the running loop.
        interceptors = (
            None if self._credentials is None else metadata_interceptors(self._credentials.metadata)
        )
        if self._tls is None:
            self._channel = grpc.aio.insecure_channel(
                self.address, options=_CHANNEL_OPTIONS, interceptors=interceptors
            )
        else:
            self._channel = grpc.aio.secure_channel(
                self.address, self._tls, options=_CHANNEL_OPTIONS, interceptors=interceptors
            )
        self._stub_instance = glue_pb2_grpc.GlueStub(self._channel)
        self._state = _State.OPENED
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the channel (calls in flight are cancelled)."""
        self._state = _State.CLOSED
        self._stub_instance = None
        if self._channel is not None:
            await self._channel.close()
            self._channel = None

    @property
    def _stub(self) -> GlueAsyncStub:
        if self._stub_instance is None:
            state = "closed" if self._state is _State.CLOSED else "not opened"
            raise RuntimeError(f"the GlueClient is {state}; use `async with GlueClient(...)`")
        return self._stub_instance

    def _error(self, exc: grpc.aio.AioRpcError, *, read_only: bool = True) -> GlueError:
        error = from_rpc_error(exc)
        if isinstance(error, ServiceUnavailableException) and error_reason(exc) is None:
            # No ErrorInfo: the transport failed, not the service (which would have said why).
            return ServiceUnavailableException(
                f"the Glue service at {self.address} is unreachable: {exc.details()}"
            )
        if (
            isinstance(error, OperationTimeoutException)
            and error_reason(exc) is None
            and self.timeout is not None
        ):
            # Our own deadline expired (the service's errors carry an ErrorInfo). A change may
            # still be applied after the caller stopped waiting, so say so.
            maybe = "" if read_only else "; the change may still take effect"
            return OperationTimeoutException(
                f"no answer from the Glue service at {self.address} within {self.timeout:g}s{maybe}"
            )
        return error

    async def _call(self, call: Callable[[], Awaitable[T]], *, read_only: bool) -> T:
        delays = self._retry_delays if read_only else ()
        for attempt in range(len(delays) + 1):
            try:
                return await call()
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.UNAVAILABLE and attempt < len(delays):
                    await asyncio.sleep(delays[attempt])
                    continue
                raise self._error(exc, read_only=read_only) from None
        raise AssertionError("unreachable")
