"""gRPC server plumbing: error mapping, malformed-request handling, health and reflection.

Servicers stay thin: they raise ``GlueError`` values and this module turns them into gRPC
statuses in exactly one place. Anything else that escapes a handler is logged with its
traceback and reaches the client as INTERNAL / InternalServiceException, never as a trace.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.message import DecodeError
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from servicekit.errors import (
    GlueError,
    InternalServiceException,
    InvalidInputException,
    ServiceUnavailableException,
    to_rpc_status,
)
from servicekit.metrics import RpcMetrics

log = logging.getLogger(__name__)

CallGuard = Callable[[str, "grpc.aio.ServicerContext[Any, Any]"], None]
"""Runs before every API call with the method name and the call's context: it raises a
GlueError to refuse the call (authentication), and may set context variables the handler
reads (the caller's identity), since it runs in the handler's own task."""


@dataclass(frozen=True, slots=True)
class _Malformed:
    """Stands in for a request whose bytes did not decode as the method's message."""

    method: str
    error: str


def _safe_deserializer(
    method: str, deserializer: Callable[[bytes], Any] | None
) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except (DecodeError, ValueError, TypeError) as exc:
            return _Malformed(method, str(exc) or type(exc).__name__)

    return deserialize


def _malformed_error(request: _Malformed) -> InvalidInputException:
    return InvalidInputException(
        f"the request to {request.method} is not a valid protobuf message "
        f"of that method's request type: {request.error}"
    )


async def _abort(
    context: grpc.aio.ServicerContext[Any, Any], error: Exception, method: str
) -> None:
    if isinstance(error, GlueError):
        glue_error = error
    else:
        log.exception("unhandled error in %s", method, exc_info=error)
        glue_error = InternalServiceException(
            f"internal error in {method.rsplit('/', 1)[-1]}; the service log has the details"
        )
    await context.abort_with_status(to_rpc_status(glue_error))


class ErrorMappingInterceptor(grpc.aio.ServerInterceptor):
    """Maps GlueError (and anything unexpected) to gRPC statuses with a Glue ErrorInfo.

    Until ``ready`` is set (migrations applied, state recovered) every API call is refused as
    UNAVAILABLE, which clients retry. A ``guard`` sees every API call first (not health or
    reflection, which stay open to probes and to grpcurl's schema lookups). With ``metrics``
    every API call's final status code and latency are recorded (a stream's when it ends).
    """

    def __init__(self, guard: CallGuard | None = None, metrics: RpcMetrics | None = None) -> None:
        self.ready = False
        self._guard = guard
        self._metrics = metrics

    async def intercept_service(  # type: ignore[override]
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        """Wrap the method's handler so its errors are mapped."""
        handler = await continuation(handler_call_details)
        method = handler_call_details.method  # type: ignore[attr-defined]
        if handler is None or not method.startswith("/glue."):
            return handler
        deserializer = _safe_deserializer(method, handler.request_deserializer)
        if handler.unary_unary is not None:
            inner_uu: Any = handler.unary_unary

            async def unary_unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                started = time.perf_counter()
                code = grpc.StatusCode.OK
                try:
                    self._admit(method, request, context)
                    return await inner_uu(request, context)
                except grpc.aio.AbortError:
                    code = _aborted_code(context)
                    raise
                except asyncio.CancelledError:
                    code = grpc.StatusCode.CANCELLED
                    raise
                except Exception as exc:
                    code = _error_code(exc)
                    await _abort(context, exc, method)
                finally:
                    if self._metrics is not None:
                        self._metrics.observe(method, code, started)

            return grpc.unary_unary_rpc_method_handler(
                unary_unary,
                request_deserializer=deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream is not None:
            inner_us: Any = handler.unary_stream

            async def unary_stream(
                request: Any, context: grpc.aio.ServicerContext[Any, Any]
            ) -> AsyncIterator[Any]:
                started = time.perf_counter()
                code = grpc.StatusCode.OK
                try:
                    self._admit(method, request, context)
                    async for item in inner_us(request, context):
                        yield item
                except grpc.aio.AbortError:
                    code = _aborted_code(context)
                    raise
                except (asyncio.CancelledError, GeneratorExit):
                    # The client went away (or the server stops) mid-stream.
                    code = grpc.StatusCode.CANCELLED
                    raise
                except Exception as exc:
                    code = _error_code(exc)
                    await _abort(context, exc, method)
                finally:
                    if self._metrics is not None:
                        self._metrics.observe(method, code, started)

            return grpc.unary_stream_rpc_method_handler(
                unary_stream,
                request_deserializer=deserializer,
                response_serializer=handler.response_serializer,
            )
        return handler

    def _admit(
        self, method: str, request: Any, context: grpc.aio.ServicerContext[Any, Any]
    ) -> None:
        """Refuse the call unless the service is ready, the caller passes the guard (before
        anything of the request is looked at) and the request decoded."""
        if not self.ready:
            raise ServiceUnavailableException("the service is starting; retry shortly")
        if self._guard is not None:
            self._guard(method, context)
        if isinstance(request, _Malformed):
            raise _malformed_error(request)


def _error_code(error: Exception) -> grpc.StatusCode:
    """The status code ``_abort`` answers ``error`` with."""
    return error.grpc_code if isinstance(error, GlueError) else grpc.StatusCode.INTERNAL


def _aborted_code(context: grpc.aio.ServicerContext[Any, Any]) -> grpc.StatusCode:
    """The code a handler aborted with (``context.abort``); UNKNOWN if grpc does not say."""
    code = context.code()
    return code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.UNKNOWN


class GrpcServer:
    """A grpc.aio server with health (NOT_SERVING until ready) and reflection; ``guard``
    admits each API call (see ``CallGuard``); ``metrics`` records each call's code and latency.

    ``serving`` and ``unready_reason`` mirror the overall health status for HTTP ``/readyz``.
    """

    def __init__(
        self,
        service_names: Sequence[str],
        *,
        guard: CallGuard | None = None,
        metrics: RpcMetrics | None = None,
    ) -> None:
        self._interceptor = ErrorMappingInterceptor(guard, metrics)
        self.serving = False
        self.unready_reason = "starting"
        self.server = grpc.aio.server(
            interceptors=[self._interceptor],
            options=[
                ("grpc.max_receive_message_length", 16 * 1024 * 1024),
                ("grpc.so_reuseport", 0),
            ],
        )
        self.health = health.aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        self.service_names = list(service_names)
        reflection.enable_server_reflection(
            [*self.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], self.server
        )
        self.port = 0

    def bind(self, address: str, credentials: grpc.ServerCredentials | None = None) -> int:
        """Listen on ``HOST:PORT`` (port 0 picks a free one), over TLS with ``credentials``;
        returns the bound port."""
        if credentials is None:
            port = self.server.add_insecure_port(address)
        else:
            port = self.server.add_secure_port(address, credentials)
        if port == 0:
            raise OSError(f"cannot listen on {address}")
        self.port = port
        return port

    async def start(self) -> None:
        """Start serving (health still NOT_SERVING)."""
        for name in ["", *self.service_names]:
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.server.start()

    async def set_serving(self, serving: bool, reason: str = "not serving") -> None:
        """Flip the health status of the server and each of its services; ``reason`` says why
        it is not serving (for ``/readyz``)."""
        self.serving = serving
        self.unready_reason = reason
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ["", *self.service_names]:
            await self.health.set(name, status)

    def accept_calls(self, accept: bool) -> None:
        """Admit API calls (once the database is migrated); until then they are UNAVAILABLE."""
        self._interceptor.ready = accept

    async def stop(self, grace: float) -> None:
        """Report NOT_SERVING, then stop accepting calls and let in-flight ones finish."""
        await self.set_serving(False, "shutting down")
        await self.server.stop(grace)


def split_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` -> (host, port); ``[::1]:50051`` works too."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"address {address!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


def is_loopback(address: str) -> bool:
    """Whether a listen address ``HOST:PORT`` (or a bare host) is reachable only from this
    machine; ``0.0.0.0``, ``[::]`` and host names other than localhost are not."""
    host = address.rpartition(":")[0] if address.rpartition(":")[2].isdigit() else address
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def server_credentials(
    cert: Path, key: Path, *, client_ca: Path | None = None, require_client_cert: bool = False
) -> grpc.ServerCredentials:
    """TLS credentials from PEM files; with ``client_ca`` client certificates signed by it are
    verified (and required when ``require_client_cert``).

    Raises:
        ValueError: a file cannot be read; the message names it.
    """
    pem = {}
    for name, path in (("certificate", cert), ("key", key), ("client CA", client_ca)):
        if path is None:
            continue
        try:
            pem[name] = path.read_bytes()
        except OSError as exc:
            raise ValueError(f"cannot read the TLS {name} {path}: {exc.strerror}") from exc
    return grpc.ssl_server_credentials(
        [(pem["key"], pem["certificate"])],
        root_certificates=pem.get("client CA"),
        require_client_auth=require_client_cert,
    )
