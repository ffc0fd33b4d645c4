"""ConsolePlumbing: what every console page stands on - the guard (session, login, CSRF, error
pages), calling the catalog's operations as the session's caller, and rendering templates.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import jinja2
from aiohttp import web

from catalog_service import identity
from catalog_service.console import views
from catalog_service.console.http_details import (
    _SESSION_KEY,
    PREFIX,
    STATIC,
    Handler,
    _redirect,
    _secured,
    _set_cookie,
)
from catalog_service.console.sessions import COOKIE, Session, SessionStore
from catalog_service.gateway.access_keys import AccessKey
from catalog_service.servicer import GlueOperations
from glue_vocabulary.shapes import GlueDict, to_glue
from servicekit.errors import (
    AccessDeniedException,
    EntityNotFoundException,
    GlueError,
    InternalServiceException,
)

log = logging.getLogger(__name__)

# Page size of list calls, and how many pages a list page reads at most.
PAGE = 100
MAX_PAGES = 20
# Runs shown per page on the runs page and on a job's page.
RECENT_RUNS = 50
# A console form is a few fields; anything larger is not one.
MAX_FORM_BYTES = 64 * 1024


class ConsolePlumbing:
    """The console's state and what every page stands on; ``Console`` adds the pages."""

    def __init__(
        self,
        operations: GlueOperations,
        keys: Mapping[str, AccessKey] | None,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """Build the console; nothing is served until ``mount``.

        Args:
            operations: The catalog's operations (what the gateway and the gRPC API call).
            keys: The access keys a login may use; None: no login (loopback-only catalog).
            now: The current time (next fire times are computed from it).
        """
        self._operations = operations
        self.sessions = SessionStore(keys)
        self._now = now
        self._templates: jinja2.Environment | None = None
        # Live log streams, ended when the server shuts down instead of holding it open.
        self._streams: set[asyncio.Task[None]] = set()

    async def _load_templates(self, _app: web.Application) -> None:
        # Read and compiled once, off the event loop; never re-read (auto_reload off).
        def load() -> jinja2.Environment:
            env = views.environment(views.static_versions(STATIC))
            for name in env.list_templates():
                env.get_template(name)
            return env

        self._templates = await asyncio.to_thread(load)

    async def _end_streams(self, _app: web.Application) -> None:
        for task in list(self._streams):
            task.cancel()

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Session, login, CSRF and error pages for every console route."""
        if request.path.startswith(f"{PREFIX}/static/"):
            return _secured(await handler(request))
        session = self.sessions.get(request.cookies.get(COOKIE))
        issued = None
        if session is None and not self.sessions.requires_login:
            session = issued = self.sessions.open_anonymous()
        public = request.path == f"{PREFIX}/login"
        try:
            if session is None and not public:
                if request.method == "GET":
                    return _secured(_redirect(views.link(f"{PREFIX}/login", next=request.path_qs)))
                raise web.HTTPForbidden(text="log in first: the session has ended")
            if request.method == "POST":
                if request.content_length is not None and request.content_length > MAX_FORM_BYTES:
                    raise web.HTTPRequestEntityTooLarge(MAX_FORM_BYTES, request.content_length)
                if not public:
                    assert session is not None
                    form = await request.post()
                    token = request.headers.get("X-CSRF-Token") or form.get("csrf_token")
                    if not self.sessions.csrf_ok(
                        session, token if isinstance(token, str) else None
                    ):
                        log.warning(
                            "console POST without a valid CSRF token refused",
                            extra={"path": request.path},
                        )
                        raise web.HTTPForbidden(
                            text="refused: this form's CSRF token is missing or not this "
                            "session's; reload the page and try again"
                        )
            if session is not None:
                request[_SESSION_KEY] = session
            response = await handler(request)
        except GlueError as exc:
            response = await self._error(request, exc)
        except web.HTTPException as exc:
            # As a plain response: HTTPException stops being one in aiohttp 4.
            response = web.Response(status=exc.status, text=exc.text, headers=exc.headers)
        except Exception:
            log.exception("unhandled error in the web console", extra={"path": request.path})
            response = await self._error(
                request,
                InternalServiceException(
                    "internal error in the console; the service log has the details"
                ),
            )
        if issued is not None:
            _set_cookie(request, response, issued)
        return _secured(response)

    def _session(self, request: web.Request) -> Session:
        return request[_SESSION_KEY]

    async def _call(self, request: web.Request, operation: str, params: GlueDict) -> GlueDict:
        """Run one catalog operation as the session's caller; its output in Glue form."""
        token = identity.caller.set(self._session(request).caller)
        try:
            return to_glue(await self._operations.operation(operation)(params))
        finally:
            identity.caller.reset(token)

    async def _all(
        self, request: web.Request, operation: str, member: str, params: GlueDict | None = None
    ) -> tuple[list[GlueDict], bool]:
        """Every item of a paginated list operation, up to MAX_PAGES pages; (items, cut)."""
        items: list[GlueDict] = []
        token: str | None = None
        for _ in range(MAX_PAGES):
            page_params: GlueDict = {**(params or {}), "MaxResults": PAGE}
            if token:
                page_params["NextToken"] = token
            output = await self._call(request, operation, page_params)
            items.extend(output.get(member, []))
            token = output.get("NextToken")
            if not token:
                return items, False
        return items, True

    async def _render(
        self, request: web.Request, template: str, status: int = 200, **context: Any
    ) -> web.Response:
        assert self._templates is not None, "templates load at start-up"
        session = request.get(_SESSION_KEY)
        page = await self._templates.get_template(template).render_async(
            session=session,
            csrf_token="" if session is None else session.csrf_token,
            logins=self.sessions.requires_login,
            now=self._now(),
            **context,
        )
        return web.Response(
            text=page,
            status=status,
            content_type="text/html",
            headers={"Cache-Control": "no-store"},
        )

    async def _error(self, request: web.Request, exc: GlueError) -> web.Response:
        if isinstance(exc, InternalServiceException):
            status = 503
        elif isinstance(exc, EntityNotFoundException):
            status = 404
        elif isinstance(exc, AccessDeniedException):
            status = 403
        else:
            status = 400
        return await self._render(
            request, "error.html", status=status, reason=exc.reason, message=exc.message
        )
