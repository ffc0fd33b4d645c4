"""The console's run pages: recent runs, one run with its live log and status, stopping a run."""

from __future__ import annotations

import asyncio

from aiohttp import web

from catalog_service import identity
from catalog_service.console import views
from catalog_service.console.http_details import (
    _SECURITY_HEADERS,
    PREFIX,
    _field,
    _query,
    _redirect,
    _stream_log,
)
from catalog_service.console.plumbing import RECENT_RUNS, ConsolePlumbing
from glue_vocabulary.shapes import GlueDict


class RunPages(ConsolePlumbing):
    """The console's run pages."""

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
