"""The console's pages and actions, served under ``/console`` on the HTTP gateway's listener.

Every page calls the catalog's operations in-process, through ``GlueOperations.operation``,
with ``identity.caller`` set to the session's caller: the same rules, policy checks and
response filtering as a gRPC or boto3 call with that key, so a key's policy limits what it sees
and does here too. Pages are rendered on the server; htmx refreshes parts of them and the run
page's log arrives as server-sent events (``EventSource``).

``Console`` adds the job, trigger and login pages and the routes to ``RunPages`` (``run_pages``)
and ``ConsolePlumbing`` (``plumbing``: the guard, calls and rendering); ``http_details`` holds
the headers, cookie, redirects and form reading they share.
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from catalog_service.console import graph, views
from catalog_service.console.http_details import (
    PREFIX,
    STATIC,
    _arguments,
    _field,
    _next,
    _query,
    _redirect,
    _root_to_console,
    _set_cookie,
    _to_console,
)
from catalog_service.console.plumbing import RECENT_RUNS
from catalog_service.console.run_pages import RunPages
from catalog_service.console.sessions import COOKIE
from glue_vocabulary.shapes import GlueDict

log = logging.getLogger(__name__)


class Console(RunPages):
    """The web console: its routes, sessions and templates."""

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
