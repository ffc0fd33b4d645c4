"""The console's pages and actions, served under ``/console`` on the HTTP gateway's listener.

Every page calls the catalog's operations in-process, through ``GlueOperations.operation``,
with ``identity.caller`` set to the session's caller: the same rules, policy checks and
response filtering as a gRPC or boto3 call with that key, so a key's policy limits what it sees
and does here too. Pages are rendered on the server; htmx refreshes parts of them and the run
page's log arrives as server-sent events (``EventSource``).
"""

from __future__ import annotations

import asyncio
import codecs
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from catalog_service import identity
from catalog_service.console import graph, views
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

PREFIX = "/console"
STATIC = Path(__file__).parent / "static"
# Page size of list calls, and how many pages a list page reads at most.
PAGE = 100
MAX_PAGES = 20
# Runs shown per page on the runs page and on a job's page.
RECENT_RUNS = 50
# A console form is a few fields; anything larger is not one.
MAX_FORM_BYTES = 64 * 1024
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


class Console:
    """The web console: its routes, sessions and templates."""

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

    def mount(self, app: web.Application) -> None:
        """Add the console to the gateway's application: ``/console/...`` and ``/`` to it."""
        console = web.Application(middlewares=[self._guard])
        console.on_startup.append(self._load_templates)
        console.on_shutdown.append(self._end_streams)
        console.router.add_static("/static/", STATIC)
        get, post = console.router.add_get, console.router.add_post
        get("/", self.jobs_page)
        get("/job", self.job_page)
        post("/job/start", self.start_run)
        get("/runs", self.runs_page)
        get("/run", self.run_page)
        get("/run/status", self.run_status)
        get("/run/log", self.run_log)
        post("/run/stop", self.stop_run)
        get("/triggers", self.triggers_page)
        get("/trigger", self.trigger_page)
        post("/trigger/activate", self.activate_trigger)
        post("/trigger/deactivate", self.deactivate_trigger)
        get("/chains", self.chains_page)
        get("/login", self.login_page)
        post("/login", self.login)
        post("/logout", self.logout)
        app.add_subapp(PREFIX, console)
        app.router.add_get(PREFIX, _to_console)
        app.middlewares.append(_root_to_console)

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

    # ---------------------------------------------------------------- plumbing

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

    # ---------------------------------------------------------------- jobs

    async def jobs_page(self, request: web.Request) -> web.Response:
        """Every job the caller may see, with its latest run."""
        jobs, cut = await self._all(request, "GetJobs", "Jobs")
        latest = await self._latest_runs(request)
        return await self._render(request, "jobs.html", jobs=jobs, latest=latest, cut=cut)

    async def _latest_runs(self, request: web.Request) -> dict[str, GlueDict]:
        """Each job's most recent run, by job name (jobs never run are absent)."""
        runs, _ = await self._all(request, "GetRecentJobRuns", "JobRuns", {"LatestPerJob": True})
        # A deleted job's runs are listed too; they are not the current job's.
        return {run["JobName"]: run for run in runs if not run.get("JobDeleted")}

    async def job_page(self, request: web.Request) -> web.Response:
        """One job: its definition, its recent runs and the Start run button."""
        name = _query(request, "name")
        job = (await self._call(request, "GetJob", {"JobName": name}))["Job"]
        runs = await self._call(request, "GetJobRuns", {"JobName": name, "MaxResults": RECENT_RUNS})
        return await self._render(request, "job.html", job=job, runs=runs.get("JobRuns", []))

    async def start_run(self, request: web.Request) -> web.Response:
        """StartJobRun, then the new run's page."""
        form = await request.post()
        name = _field(form, "name")
        params: GlueDict = {"JobName": name}
        arguments = _arguments(str(form.get("arguments", "")))
        if arguments:
            params["Arguments"] = arguments
        started = await self._call(request, "StartJobRun", params)
        return _redirect(views.link(f"{PREFIX}/run", job=name, id=started["JobRunId"]))

    # ---------------------------------------------------------------- runs

    async def runs_page(self, request: web.Request) -> web.Response:
        """Recent runs across jobs, newest first, filtered by job, state and trigger."""
        filters = {name: request.query.get(name, "") for name in ("job", "state", "trigger")}
        params: GlueDict = {"MaxResults": RECENT_RUNS}
        if filters["job"]:
            params["JobName"] = filters["job"]
        if filters["state"]:
            params["JobRunStates"] = [filters["state"]]
        if filters["trigger"]:
            params["TriggerName"] = filters["trigger"]
        if request.query.get("page"):
            params["NextToken"] = request.query["page"]
        output = await self._call(request, "GetRecentJobRuns", params)
        template = "_runs_table.html" if request.headers.get("HX-Request") else "runs.html"
        return await self._render(
            request,
            template,
            runs=output.get("JobRuns", []),
            older=output.get("NextToken"),
            # An older page stays put; the newest page refreshes itself.
            paged=bool(params.get("NextToken")),
            job=filters["job"],
            state=filters["state"],
            trigger=filters["trigger"],
        )

    async def _run(self, request: web.Request) -> GlueDict:
        job, run_id = _query(request, "job"), _query(request, "id")
        output = await self._call(request, "GetJobRun", {"JobName": job, "RunId": run_id})
        run: GlueDict = output["JobRun"]
        return run

    async def run_page(self, request: web.Request) -> web.Response:
        """One run: its details, its live log and Stop."""
        return await self._render(request, "run.html", run=await self._run(request))

    async def run_status(self, request: web.Request) -> web.Response:
        """The run page's status panel, which htmx polls until the run ends."""
        return await self._render(request, "_run_status.html", run=await self._run(request))

    async def run_log(self, request: web.Request) -> web.StreamResponse:
        """The run's log as server-sent events, following it until the run ends.

        Each ``log`` event carries a chunk of text (JSON) and, as its id, the byte offset after
        it, so EventSource's reconnect (``Last-Event-ID``) resumes where it broke off. An
        ``end`` event says the run ended; a ``failed`` event says why the log is unavailable.
        """
        job, run_id = _query(request, "job"), _query(request, "id")
        resume = request.headers.get("Last-Event-ID") or request.query.get("offset") or "0"
        offset = int(resume) if resume.isdigit() else 0
        token = identity.caller.set(self._session(request).caller)
        try:
            # The policy check runs here, before the response starts: a refusal is a plain
            # 403 page, which EventSource does not retry.
            chunks = self._operations.GetJobRunLog(
                {"JobName": job, "RunId": run_id, "Offset": offset, "Follow": True}
            )
            response = web.StreamResponse(
                headers={
                    "Content-Type": "text/event-stream",
                    "Cache-Control": "no-store",
                    **_SECURITY_HEADERS,
                }
            )
            await response.prepare(request)
            # In a task of its own that shutdown cancels, so the response still ends cleanly
            # (a "closing" event); the browser's EventSource then reconnects, to the next
            # process, from its last offset. The task copies this context, caller included.
            pump = asyncio.create_task(_stream_log(response, chunks))
            self._streams.add(pump)
            try:
                await asyncio.wait({pump})
            finally:
                self._streams.discard(pump)
                # The client went away: nothing more to send, stop following the log.
                pump.cancel()
            try:
                if pump.cancelled():
                    await response.write(b"event: closing\ndata: {}\n\n")
                else:
                    pump.result()
                await response.write_eof()
            except ConnectionResetError:
                pass  # The browser left (closed the tab or moved on): nothing to tell it.
            return response
        finally:
            identity.caller.reset(token)

    async def stop_run(self, request: web.Request) -> web.Response:
        """BatchStopJobRun for one run, then its page."""
        form = await request.post()
        job, run_id = _field(form, "job"), _field(form, "id")
        output = await self._call(
            request, "BatchStopJobRun", {"JobName": job, "JobRunIds": [run_id]}
        )
        for error in output.get("Errors", []):
            detail = error.get("ErrorDetail", {})
            return await self._render(
                request,
                "error.html",
                status=409,
                reason=detail.get("ErrorCode", "StopRefused"),
                message=detail.get("ErrorMessage", "the run could not be stopped"),
            )
        return _redirect(views.link(f"{PREFIX}/run", job=job, id=run_id))

    # ---------------------------------------------------------------- triggers

    async def triggers_page(self, request: web.Request) -> web.Response:
        """Every trigger the caller may see: state, schedule, next fire."""
        triggers, cut = await self._all(request, "GetTriggers", "Triggers")
        triggers.sort(key=lambda t: str(t.get("Name")))
        return await self._render(request, "triggers.html", triggers=triggers, cut=cut)

    async def trigger_page(self, request: web.Request) -> web.Response:
        """One trigger: definition, next fire times, the fire ledger, (de)activate."""
        name = _query(request, "name")
        trigger = (await self._call(request, "GetTrigger", {"Name": name}))["Trigger"]
        fires = await self._call(request, "GetTriggerFires", {"Name": name, "MaxResults": 50})
        return await self._render(
            request,
            "trigger.html",
            trigger=trigger,
            fires=fires.get("Fires", []),
            next=views.next_fires(trigger, self._now()),
        )

    async def activate_trigger(self, request: web.Request) -> web.Response:
        """StartTrigger, then the trigger's page."""
        return await self._trigger_action(request, "StartTrigger")

    async def deactivate_trigger(self, request: web.Request) -> web.Response:
        """StopTrigger, then the trigger's page."""
        return await self._trigger_action(request, "StopTrigger")

    async def _trigger_action(self, request: web.Request, operation: str) -> web.Response:
        name = _field(await request.post(), "name")
        await self._call(request, operation, {"Name": name})
        return _redirect(views.link(f"{PREFIX}/trigger", name=name))

    async def chains_page(self, request: web.Request) -> web.Response:
        """The triggers' chains as a graph of jobs and triggers."""
        triggers, cut = await self._all(request, "GetTriggers", "Triggers")
        return await self._render(request, "chains.html", graph=graph.layout(triggers), cut=cut)

    # ---------------------------------------------------------------- login

    async def login_page(self, request: web.Request) -> web.Response:
        """The login form (only when access keys are configured)."""
        if not self.sessions.requires_login:
            return _redirect(f"{PREFIX}/")
        return await self._render(request, "login.html", next=_next(request), failed=False)

    async def login(self, request: web.Request) -> web.Response:
        """Check an access key's secret; a new session and its cookie on success."""
        form = await request.post()
        key_id, secret = str(form.get("key_id", "")), str(form.get("secret", ""))
        session = self.sessions.login(key_id, secret)
        if session is None:
            log.warning("console login refused", extra={"key_id": key_id[:128]})
            # Slows guessing from one connection; the 256-bit secrets are what make it futile.
            await asyncio.sleep(0.25)
            return await self._render(
                request, "login.html", status=401, next=_next(request, form), failed=True
            )
        old = request.cookies.get(COOKIE)
        if old:
            self.sessions.end(old)
        log.info("console login", extra={"key_id": session.key_id})
        response = _redirect(_next(request, form))
        _set_cookie(request, response, session)
        return response

    async def logout(self, request: web.Request) -> web.Response:
        """End the session and clear its cookie."""
        self.sessions.end(self._session(request).id)
        response = _redirect(f"{PREFIX}/login" if self.sessions.requires_login else f"{PREFIX}/")
        response.del_cookie(COOKIE, path=PREFIX)
        return response


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
