"""HttpGateway: Glue's AWS JSON 1.1 protocol over HTTP, served by the catalog's own servicer.

(One file a little over 400 lines: the request pipeline whose six steps are listed below is
one job, and a tenth of the file is this docstring.)

Every request is ``POST`` with ``X-Amz-Target: AWSGlue.<Operation>``, or
``Logs_20140328.<Operation>`` for the CloudWatch Logs operations over the runs' output
(``cloudwatch_logs.py``; signed for the ``logs`` service, verified the same way). The gateway
checks the SigV4 signature (when access keys are configured) and runs the JSON body, as
received, through the same ``GlueOperations`` method a gRPC request reaches (after its
conversion to Glue form) - so every rule, limit and error is the gRPC API's, written once. The
response message goes back out in Glue's JSON form.

Status codes: 200 with the output; 400 with ``{"__type", "message"}`` for every client error
(validation, not found, already exists, concurrency, unsupported operation, authentication);
500 only for InternalServiceException (a 5xx makes botocore retry, which is right only when the
service, not the request, failed - e.g. the scheduler is unreachable). Every response carries
``x-amzn-RequestId``.

With access keys, a request is judged in this order, so that a caller without a valid key
cannot make the gateway read (buffer, hash) its body:

1. method and ``X-Amz-Target`` (a served operation);
2. ``sigv4.check_headers``: the Authorization header, the signing date and skew, the credential
   scope, the signed headers, a known key id;
3. a declared Content-Length above ``MAX_BODY_BYTES`` is refused (413);
4. only now the body is read (at most ``MAX_BODY_BYTES``; a chunked body is cut off there), and
   the signature, which covers the body's hash, is verified;
5. a state-changing operation's signature is claimed in the replay cache (``replay.py``);
6. the operation runs.

"Before the body is read" is about this process: the kernel and aiohttp's parser still
receive what the client sends (aiohttp buffers up to its read-ahead limit, then pauses the
socket), and after an early refusal aiohttp discards - never stores - what keeps arriving for
``_LINGER_SECONDS`` before closing the connection.

A signature claimed in step 5 is used up whatever the operation then does: a StartJobRun that
fails validation, or whose client hangs up, consumed its signature. That is what makes the rule
simple to state (a signed state-changing request is accepted once) and what a replay of a
failed request needs: the second copy must not succeed where the first failed.

Replays and a full replay cache are answered ``ThrottlingException`` (HTTP 400), which botocore
retries in every retry mode after a back-off, re-signing each attempt with a new date. That
matters because botocore signs with second precision and does not sign its per-call
``amz-sdk-invocation-id``: two identical StartJobRun calls from one client within the same
second carry the same signature, and the second is indistinguishable from a replay. The retry,
signed a second later, goes through.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import ssl
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from catalog_service import identity
from catalog_service.gateway import (
    canonical_request,
    cloudwatch_logs,
    cloudwatch_logs_shapes,
    sigv4,
    wire,
)
from catalog_service.gateway.access_keys import AccessKey, load_access_keys
from catalog_service.gateway.replay import Claim, ReplayCache
from catalog_service.job_runs import JobRunCatalog
from catalog_service.servicer import UNARY_METHODS, GlueOperations, Operation
from catalog_service.validation.model import glue_model
from glue_vocabulary.shapes import to_glue
from servicekit.errors import GlueError, InternalServiceException
from servicekit.http_site import start_site

log = logging.getLogger(__name__)

# CodeGenConfigurationNodes can make a CreateJob body large; anything beyond this is refused.
MAX_BODY_BYTES = 16 * 1024 * 1024
# After an answer given without reading the body, aiohttp discards (never stores) what the
# client still sends for this long, then closes. A client such as urllib3 sends its whole body
# before reading the answer, so some lingering lets an ordinary request see our error rather
# than a connection reset; aiohttp's default (10 s) keeps taking a refused caller's bytes 5x
# longer for no gain.
_LINGER_SECONDS = 2.0
# Verified state-changing signatures remembered at once. Measured ~116 bytes each, so ~23 MB
# at the cap. A request signed just now is held 15 minutes, so the cap is reached only by more
# than ~220 state-changing requests a second sustained for 15 minutes.
REPLAY_CACHE_ENTRIES = 200_000
# Operations that change nothing: a replay of one is harmless, so they are not recorded.
_READ_ONLY_PREFIXES = ("Get", "List", "BatchGet")
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
        access_keys: Mapping[str, AccessKey] | None,
        ssl_context: ssl.SSLContext | None = None,
        insecure: bool = False,
        replay_cache_entries: int = REPLAY_CACHE_ENTRIES,
        shutdown_grace: float = 5.0,
        routes: Sequence[web.RouteDef] = (),
        mounts: Sequence[Callable[[web.Application], None]] = (),
        runs: JobRunCatalog | None = None,
    ) -> None:
        """Check the configuration; nothing binds until start().

        Args:
            operations: The catalog's operations, shared with the gRPC servicer.
            listen: HOST:PORT.
            access_keys: Keys whose signatures are verified; None accepts any signature.
            ssl_context: Serve HTTPS with this server context; None serves plain HTTP.
            insecure: Allow a non-loopback ``listen`` without access keys.
            replay_cache_entries: Capacity of the replay cache (see ``replay.py``).
            shutdown_grace: Seconds in-flight requests get on stop().
            routes: Other routes on the same listener (metrics, health), matched before the
                Glue handler, which takes every other request.
            mounts: Each adds what it serves (e.g. the web console: a sub-application and a
                middleware) to the application, also ahead of the Glue handler.
            runs: The catalog's runs, for the CloudWatch Logs operations (None: not served).

        Raises:
            ValueError: A non-loopback address without access keys and without ``insecure``.
        """
        host, port = split_listen(listen)
        if access_keys is None and not is_loopback(host):
            if not insecure:
                raise ValueError(
                    f"the HTTP gateway would listen on {listen} without verifying signatures: "
                    "set --access-keys FILE (CATALOG_ACCESS_KEYS) so that only signed requests "
                    "are served, or listen on a loopback address. The only way to serve an "
                    "open address without keys is --insecure"
                )
            log.warning(
                "INSECURE: the HTTP gateway will listen on %s WITHOUT verifying signatures "
                "(--insecure): anyone who can reach it can create, start and delete jobs",
                listen,
                extra={"listen": listen},
            )
        self._host, self._port = host, port
        self._keys = access_keys
        self._ssl = ssl_context
        self._grace = shutdown_grace
        self._routes = list(routes)
        self._mounts = tuple(mounts)
        self._operations = _served(operations)
        self._logs = None if runs is None else cloudwatch_logs.CloudWatchLogs(runs)
        # Each Logs call counts against the caller's calls in flight, as a Glue call does.
        self._guard = operations.guard
        # Only verified requests are claimed, so without keys there is nothing to hold.
        self._replays = None if access_keys is None else ReplayCache(replay_cache_entries)
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self) -> None:
        """Bind and start serving; ``port`` is the bound port afterwards."""
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_routes(self._routes)
        for mount in self._mounts:
            mount(app)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # In-flight requests get the service's shutdown grace, as gRPC calls do.
        self._runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=self._grace,
            lingering_time=_LINGER_SECONDS,
        )
        await self._runner.setup()
        self.port = await start_site(
            self._runner,
            self._host,
            self._port,
            setting="--http-listen / CATALOG_HTTP_LISTEN",
            ssl_context=self._ssl,
        )
        where = {"host": self._host, "port": self.port, "tls": self._ssl is not None}
        if self._keys is None:
            log.warning("HTTP gateway accepts ANY signature (no --access-keys)", extra=where)
        else:
            log.info(
                "HTTP gateway verifies SigV4 signatures", extra={**where, "keys": len(self._keys)}
            )
        if self._ssl is None and not is_loopback(self._host):
            # Secrets never travel (SigV4 sends none), but bodies, answers and replayable
            # read signatures do, in clear text.
            log.warning(
                "HTTP gateway serves plain HTTP on a non-loopback address; "
                "set --tls-cert/--tls-key to serve HTTPS",
                extra=where,
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
            operation = self._operation(request)
            if operation.startswith(cloudwatch_logs.TARGET_PREFIX):
                status, payload = 200, await self._call_logs(request, operation)
            else:
                caller = await self._authenticate(request, operation)
                params = wire.decode_request(operation, caller.body)
                output = await self._call(operation, params, caller.identity)
                status, payload = 200, wire.encode_output(operation, output)
        except cloudwatch_logs_shapes.LogsError as exc:
            status, payload = 400, wire.encode_error(exc.code, exc.message)
        except GlueError as exc:
            status = 500 if isinstance(exc, InternalServiceException) else 400
            payload = wire.encode_error(exc.reason, exc.message)
        except _ClientError as exc:
            status, payload = exc.status, wire.encode_error(exc.code, exc.message)
        except canonical_request.AuthError as exc:
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

    def _operation(self, request: web.Request) -> str:
        """The served operation named by X-Amz-Target (headers only)."""
        if request.method != "POST":
            raise _ClientError(
                "UnknownOperationException",
                f"{request.method} is not served: send POST with X-Amz-Target: AWSGlue.<Operation>",
            )
        target = request.headers.get("X-Amz-Target", "")
        if target.startswith(cloudwatch_logs.TARGET_PREFIX):
            name = target[len(cloudwatch_logs.TARGET_PREFIX) :]
            if self._logs is None or not self._logs.serves(name):
                served = ", ".join(cloudwatch_logs.OPERATIONS)
                known = cloudwatch_logs.CloudWatchLogs.known(name)
                raise _ClientError(
                    "UnknownOperationException",
                    f"{name[:100]!r} is not served: "
                    + (
                        f"of CloudWatch Logs' operations this service serves {served}, over "
                        "the runs' output"
                        if known
                        else "it is not a CloudWatch Logs operation"
                    ),
                )
            return target
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
        return operation

    async def _call_logs(self, request: web.Request, target: str) -> bytes:
        """Authenticate (scope ``logs``) and run one CloudWatch Logs operation; its JSON body.

        All served Logs operations read, so no signature is claimed in the replay cache.
        """
        assert self._logs is not None
        operation = target[len(cloudwatch_logs.TARGET_PREFIX) :]
        caller = await self._authenticate(request, target, service=cloudwatch_logs.SERVICE)
        try:
            params = json.loads(caller.body) if caller.body.strip() else {}
        except (ValueError, UnicodeDecodeError) as exc:
            raise wire.SerializationError(f"the request body is not valid JSON: {exc}") from None
        if not isinstance(params, dict):
            raise wire.SerializationError("the request body must be a JSON object")
        token = identity.caller.set(caller.identity)
        try:
            logs = self._logs
            output = await self._guard(lambda p: logs.call(operation, p))(params)
        finally:
            identity.caller.reset(token)
        return json.dumps(output, separators=(",", ":")).encode()

    async def _authenticate(
        self, request: web.Request, operation: str, *, service: str = canonical_request.SERVICE
    ) -> _Caller:
        """Judge the headers, then read the body and verify the signature over it.

        The order is the module docstring's: nothing of the body is consumed until the
        headers name a known key and a declared length within the cap.
        """
        if self._keys is None:
            return _Caller(identity=None, body=await self._read_body(request))
        path, _, query = request.raw_path.partition("?")
        signed = sigv4.check_headers(
            request.method, path, query, request.headers, self._keys, service=service
        )
        body = await self._read_body(request)
        verified = signed.verify(body)
        if (
            self._replays is not None
            and service == canonical_request.SERVICE
            and not operation.startswith(_READ_ONLY_PREFIXES)
        ):
            # Claimed before the operation runs: a failing operation uses its signature up too.
            claim = self._replays.claim(verified.signature, verified.expires_at.timestamp())
            if claim is Claim.REPLAYED:
                log.warning(
                    "replayed signature refused",
                    extra={"operation": operation, "key_id": verified.key.key_id},
                )
                raise _ClientError(
                    "ThrottlingException",
                    "This signed request was already received: a signature is accepted once "
                    "for an operation that changes state. Sign the request again (botocore's "
                    "retry does) to send it anew.",
                )
            if claim is Claim.FULL:
                log.error(
                    "replay cache full; refusing state-changing requests until entries expire",
                    extra={"operation": operation, "capacity": self._replays.capacity},
                )
                raise _ClientError(
                    "ThrottlingException",
                    "Rate exceeded: too many state-changing requests in the last 15 minutes; "
                    "retry later.",
                )
        return _Caller(identity=verified.key.caller, body=body)

    async def _read_body(self, request: web.Request) -> bytes:
        """The whole body, refused early when its declared length is over the cap."""
        if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
            raise _ClientError(
                "InvalidInputException",
                f"the request body ({request.content_length} bytes) is larger than "
                f"{MAX_BODY_BYTES} bytes",
                status=413,
            )
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge:
            # A chunked body declares no length; aiohttp stops reading at the cap.
            raise _ClientError(
                "InvalidInputException",
                f"the request body is larger than {MAX_BODY_BYTES} bytes",
                status=413,
            ) from None

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


@dataclass(frozen=True)
class _Caller:
    """Who sent a request (None: signatures not checked) and the body it was verified with."""

    identity: identity.Caller | None
    body: bytes


def load_keys(path: Path | None) -> dict[str, AccessKey] | None:
    """The access keys of a keys file; None (no verification) without one."""
    return None if path is None else load_access_keys(path)
