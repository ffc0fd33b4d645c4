"""The console's HTTP details: where it is served, its security headers and session cookie,
redirects, a run's log as server-sent events, and reading query and form fields.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from aiohttp import web

from catalog_service.console.sessions import COOKIE, Session
from servicekit.errors import GlueError

PREFIX = "/console"
STATIC = Path(__file__).parent / "static"
# The same origin only; no inline script or style, so injected markup cannot run.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
_SESSION_KEY = web.RequestKey("console_session", Session)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _redirect(location: str) -> web.Response:
    """303 See Other: after a POST, the browser GETs the result (reload does not repost)."""
    return web.Response(status=303, headers={"Location": location})


async def _to_console(_request: web.Request) -> web.Response:
    return web.Response(status=302, headers={"Location": f"{PREFIX}/"})


@web.middleware
async def _root_to_console(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A browser's ``GET /`` goes to the console; a Glue request there (it names its
    operation in X-Amz-Target) still gets the gateway's answer."""
    if request.path == "/" and request.method == "GET" and "X-Amz-Target" not in request.headers:
        return await _to_console(request)
    return await handler(request)


async def _stream_log(
    response: web.StreamResponse, chunks: AsyncIterator[tuple[bytes, int, int]]
) -> None:
    # Incremental: a multi-byte character split across chunks is decoded whole.
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    try:
        async for data, _offset, next_offset in chunks:
            text = decoder.decode(data)
            event = f"id: {next_offset}\nevent: log\ndata: {json.dumps(text)}\n\n"
            await response.write(event.encode())
    except GlueError as exc:
        failed = json.dumps({"reason": exc.reason, "message": exc.message})
        await response.write(f"event: failed\ndata: {failed}\n\n".encode())
        return
    await response.write(b"event: end\ndata: {}\n\n")


def _secured(response: web.StreamResponse) -> web.StreamResponse:
    for name, value in _SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _set_cookie(request: web.Request, response: web.StreamResponse, session: Session) -> None:
    response.set_cookie(
        COOKIE,
        session.id,
        path=PREFIX,
        httponly=True,
        samesite="Strict",
        # Secure whenever the console is served over TLS (the gateway's --tls-cert).
        secure=request.secure,
    )


def _query(request: web.Request, name: str) -> str:
    value = request.query.get(name, "")
    if not value:
        raise web.HTTPBadRequest(text=f"the {name!r} query parameter is required")
    return value


def _field(form: Mapping[str, Any], name: str) -> str:
    value = form.get(name)
    if not isinstance(value, str) or not value:
        raise web.HTTPBadRequest(text=f"the form field {name!r} is required")
    return value


def _next(request: web.Request, form: Mapping[str, Any] | None = None) -> str:
    """Where to go after login: a console path only (never another site)."""
    target = str((form or {}).get("next") or request.query.get("next") or "")
    if target.startswith(f"{PREFIX}/") and not target.startswith("//") and "\\" not in target:
        return target
    return f"{PREFIX}/"


def _arguments(text: str) -> dict[str, str]:
    """Run arguments typed one per line as ``--key=value``."""
    arguments: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.startswith("--"):
            raise web.HTTPBadRequest(
                text=f"Arguments: {line[:100]!r} is not --key=value (one argument per line)"
            )
        arguments[key] = value
    return arguments
