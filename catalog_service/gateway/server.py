"""HttpGateway: Glue's AWS JSON 1.1 protocol over HTTP, served by the catalog's own servicer.

Every request is ``POST`` with ``X-Amz-Target: AWSGlue.<Operation>``. The gateway checks the
SigV4 signature (when access keys are configured) and runs the JSON body, as received, through
the same ``GlueOperations`` method a gRPC request reaches (after its conversion to Glue form) -
so every rule, limit and error is the gRPC API's, written once. The response message goes back
out in Glue's JSON form.

Status codes: 200 with the output; 400 with ``{"__type", "message"}`` for every client error
(validation, not found, already exists, concurrency, unsupported operation, authentication);
500 only for InternalServiceException (a 5xx makes botocore retry, which is right only when the
service, not the request, failed - e.g. the scheduler is unreachable). Every response carries
``x-amzn-RequestId``.
"""

from __future__ import annotations

import ipaddress
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from catalog_service import identity
from catalog_service.gateway import sigv4, wire
from catalog_service.servicer import UNARY_METHODS, GlueOperations, Operation
from catalog_service.validation import glue_model
from servicekit.errors import GlueError, InternalServiceException
from servicekit.glue_shapes import to_glue

log = logging.getLogger(__name__)

# CodeGenConfigurationNodes can make a CreateJob body large; anything beyond this is refused.
MAX_BODY_BYTES = 16 * 1024 * 1024
# What OperationNotSupportedException says of every Glue operation this service does not serve.
_SERVED = "this service serves Glue's jobs, job runs, job bookmarks, triggers and tags"


def _served(operations: GlueOperations) -> dict[str, Operation]:
    """The glue.v1 operations that are Glue's (not our extensions), by name."""
    model_operations = set(glue_model().operation_names)
    return {name: operations.operation(name) for name in UNARY_METHODS if name in model_operations}


@dataclass(frozen=True)
class _ClientError(Exception):
    """An error that is not a GlueError: protocol and authentication failures."""

    code: str
    message: str
    status: int = 400


def is_loopback(host: str) -> bool:
    """Whether a listen host is reachable only from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def split_listen(listen: str) -> tuple[str, int]:
    """HOST:PORT (``[::1]:PORT`` for IPv6) as (host, port)."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"listen address {listen!r} is not HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


class HttpGateway:
    """The gateway's HTTP server; start() binds, stop() drains and closes."""

    def __init__(
        self,
        operations: GlueOperations,
        listen: str,
        *,
        access_keys: Mapping[str, sigv4.AccessKey] | None,
        shutdown_grace: float = 5.0,
    ) -> None:
        host, port = split_listen(listen)
        if access_keys is None and not is_loopback(host):
            raise ValueError(
                f"the HTTP gateway would listen on {listen} without verifying signatures; "
                "set --access-keys (CATALOG_ACCESS_KEYS) or listen on a loopback address"
            )
        self._host, self._port = host, port
        self._keys = access_keys
        self._grace = shutdown_grace
        self._operations = _served(operations)
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        """Bind and start serving; ``port`` is the bound port afterwards."""
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # In-flight requests get the service's shutdown grace, as gRPC calls do.
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=self._grace
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        # aiohttp exposes the bound port (for port 0) only through the site's server.
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self._port
        if self._keys is None:
            log.warning(
                "HTTP gateway accepts ANY signature (no --access-keys); loopback only",
                extra={"host": self._host, "port": self.port},
            )
        else:
            log.info(
                "HTTP gateway verifies SigV4 signatures",
                extra={"host": self._host, "port": self.port, "keys": len(self._keys)},
            )

    async def stop(self) -> None:
        """Stop accepting, let in-flight requests finish, close."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.Response:
        request_id = str(uuid.uuid4())
        started = time.perf_counter()
        operation = ""
        try:
            operation, body = await self._read(request)
            caller = self._authenticate(request, body)
            params = wire.decode_request(operation, body)
            output = await self._call(operation, params, caller)
            status, payload = 200, wire.encode_output(operation, output)
        except GlueError as exc:
            status = 500 if isinstance(exc, InternalServiceException) else 400
            payload = wire.encode_error(exc.reason, exc.message)
        except _ClientError as exc:
            status, payload = exc.status, wire.encode_error(exc.code, exc.message)
        except sigv4.AuthError as exc:
            status = 403 if exc.code == "MissingAuthenticationTokenException" else 400
            payload = wire.encode_error(exc.code, exc.message)
        except wire.SerializationError as exc:
            status, payload = 400, wire.encode_error("SerializationException", str(exc))
        except Exception:
            log.exception(
                "unhandled error in the HTTP gateway",
                extra={"operation": operation, "request_id": request_id},
            )
            status = 500
            payload = wire.encode_error(
                "InternalServiceException",
                f"internal error in {operation or 'the request'}; the service log has the details",
            )
        log.debug(
            "gateway request",
            extra={
                "operation": operation,
                "status": status,
                "request_id": request_id,
                "ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
        return web.Response(
            status=status,
            body=payload,
            headers={"Content-Type": wire.CONTENT_TYPE, "x-amzn-RequestId": request_id},
        )

    async def _read(self, request: web.Request) -> tuple[str, bytes]:
        """The operation named by X-Amz-Target, and the body."""
        if request.method != "POST":
            raise _ClientError(
                "UnknownOperationException",
                f"{request.method} is not served: send POST with X-Amz-Target: AWSGlue.<Operation>",
            )
        target = request.headers.get("X-Amz-Target", "")
        if not target.startswith(wire.TARGET_PREFIX):
            raise _ClientError(
                "UnknownOperationException",
                f"X-Amz-Target must be AWSGlue.<Operation> (got {target[:100]!r})",
            )
        operation = target[len(wire.TARGET_PREFIX) :]
        if operation not in self._operations:
            if operation in glue_model().operation_names:
                raise _ClientError(
                    "OperationNotSupportedException", f"{operation} is not supported: {_SERVED}"
                )
            raise _ClientError(
                "UnknownOperationException", f"{operation[:100]!r} is not a Glue operation"
            )
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise _ClientError(
                "InvalidInputException",
                f"the request body is larger than {MAX_BODY_BYTES} bytes",
                status=413,
            ) from None
        return operation, body

    def _authenticate(self, request: web.Request, body: bytes) -> identity.Caller | None:
        """The caller identity of a verified request; None when signatures are not checked."""
        if self._keys is None:
            return None
        path, _, query = request.raw_path.partition("?")
        key = sigv4.verify(
            request.method,
            path,
            query,
            request.headers,
            body,
            self._keys,
        )
        return key.caller

    async def _call(
        self, operation: str, params: dict[str, Any], caller: identity.Caller | None
    ) -> Any:
        """Run one operation on the request as received; returns its output in Glue form."""
        token = identity.caller.set(caller)
        try:
            response = await self._operations[operation](params)
        finally:
            identity.caller.reset(token)
        return to_glue(response)


def load_keys(path: Path | None) -> dict[str, sigv4.AccessKey] | None:
    """The access keys of a keys file; None (no verification) without one."""
    return None if path is None else sigv4.load_access_keys(path)
