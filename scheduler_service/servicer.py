"""SchedulerServicer: the internal API, one thin method per RPC."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc

from glue.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc
from glue_vocabulary.run_states import TERMINAL
from glue_vocabulary.shapes import to_glue
from scheduler_service import bookmarks, registry, retention, run_log
from scheduler_service.admissions import Admissions
from scheduler_service.clock import Clock
from scheduler_service.executor import Executor
from scheduler_service.firing import Firing
from scheduler_service.outbox import EventFeed
from scheduler_service.request_rules import check_request
from scheduler_service.runs import RunStore
from servicekit.db import Database
from servicekit.errors import EntityNotFoundException, GlueError, InternalServiceException

log = logging.getLogger(__name__)

LOG_FOLLOW_POLL = 0.25
Context = grpc.aio.ServicerContext[Any, Any]


class SchedulerServicer(scheduler_pb2_grpc.SchedulerServicer):
    """Registrations, run admission and stop, the event stream, run logs and job bookmarks."""

    def __init__(
        self,
        db: Database,
        store: RunStore,
        feed: EventFeed,
        executor: Executor,
        firing: Firing,
        clock: Clock,
        admissions: Admissions,
    ) -> None:
        self._db = db
        self._store = store
        self._feed = feed
        self._executor = executor
        self._firing = firing
        self._clock = clock
        self._admissions = admissions

    async def AddJob(  # type: ignore[override]
        self, request: scheduler_pb2.AddJobRequest, context: Context
    ) -> scheduler_pb2.AddJobResponse:
        check_request(request)
        async with self._db.transaction() as conn:
            applied = await registry.upsert_job(conn, request.registration)
        return scheduler_pb2.AddJobResponse(applied=applied)

    async def AddJobs(  # type: ignore[override]
        self, request: scheduler_pb2.AddJobsRequest, context: Context
    ) -> scheduler_pb2.AddJobsResponse:
        for registration in request.registrations:
            # Each registration is checked as AddJob checks it.
            check_request(scheduler_pb2.AddJobRequest(registration=registration))
        async with self._db.transaction() as conn:
            applied = await registry.upsert_jobs(conn, request.registrations)
        return scheduler_pb2.AddJobsResponse(applied=applied)

    async def DeleteJob(  # type: ignore[override]
        self, request: scheduler_pb2.DeleteJobRequest, context: Context
    ) -> scheduler_pb2.DeleteJobResponse:
        check_request(request)
        async with self._db.transaction() as conn:
            applied = await registry.delete_job(conn, request.job_name, request.version)
            if applied:
                # In the same transaction: a job re-created under this name never sees them.
                await bookmarks.forget_job(conn, request.job_name)
        return scheduler_pb2.DeleteJobResponse(applied=applied)

    async def AddTrigger(  # type: ignore[override]
        self, request: scheduler_pb2.AddTriggerRequest, context: Context
    ) -> scheduler_pb2.AddTriggerResponse:
        check_request(request)
        async with self._db.transaction() as conn:
            applied = await registry.upsert_trigger(conn, request.registration)
        self._clock.wake()
        return scheduler_pb2.AddTriggerResponse(applied=applied)

    async def Unschedule(  # type: ignore[override]
        self, request: scheduler_pb2.UnscheduleRequest, context: Context
    ) -> scheduler_pb2.UnscheduleResponse:
        check_request(request)
        async with self._db.transaction() as conn:
            applied = await registry.unschedule_trigger(
                conn, request.trigger_name, request.version, delete_it=request.delete
            )
        self._clock.wake()
        return scheduler_pb2.UnscheduleResponse(applied=applied)

    async def FireTrigger(  # type: ignore[override]
        self, request: scheduler_pb2.FireTriggerRequest, context: Context
    ) -> scheduler_pb2.FireTriggerResponse:
        check_request(request)
        name = request.registration.trigger.name
        if request.registration.version:
            async with self._db.transaction() as conn:
                await registry.upsert_trigger(conn, request.registration)
        fire, created = await self._firing.fire_now(
            name, request.fire_id, request.reason or "manual fire"
        )
        self._executor.accept_created(created)
        return scheduler_pb2.FireTriggerResponse(fire=fire)

    async def ListTriggerFires(  # type: ignore[override]
        self, request: scheduler_pb2.ListTriggerFiresRequest, context: Context
    ) -> scheduler_pb2.ListTriggerFiresResponse:
        check_request(request)
        limit = request.max_results or 20
        fires = await self._firing.list_fires(request.trigger_name, limit)
        return scheduler_pb2.ListTriggerFiresResponse(fires=fires)

    async def ListRegistrations(  # type: ignore[override]
        self, request: scheduler_pb2.ListRegistrationsRequest, context: Context
    ) -> scheduler_pb2.ListRegistrationsResponse:
        check_request(request)
        async with self._db.read() as conn:
            jobs, triggers = await registry.list_registrations(conn)
        return scheduler_pb2.ListRegistrationsResponse(jobs=jobs, triggers=triggers)

    async def StartRun(  # type: ignore[override]
        self, request: scheduler_pb2.StartRunRequest, context: Context
    ) -> scheduler_pb2.StartRunResponse:
        check_request(request)
        event = await self._admissions.admit(
            request.registration, request.run_id, to_glue(request.request)
        )
        return scheduler_pb2.StartRunResponse(event=event)

    async def StartRuns(  # type: ignore[override]
        self, request: scheduler_pb2.StartRunsRequest, context: Context
    ) -> scheduler_pb2.StartRunsResponse:
        check_request(request)
        # At once, so the admissions share one transaction (``Admissions``).
        results = await asyncio.gather(
            *(self._start_one(one) for one in request.runs), return_exceptions=True
        )
        response = scheduler_pb2.StartRunsResponse()
        for result in results:
            outcome = response.outcomes.add()
            if isinstance(result, scheduler_pb2.RunEvent):
                outcome.event.CopyFrom(result)
                continue
            if isinstance(result, asyncio.CancelledError):
                raise result
            if not isinstance(result, GlueError):
                log.error("admitting a run failed", exc_info=result)
                result = InternalServiceException("the scheduler could not admit the run")
            outcome.refusal.reason = result.reason
            outcome.refusal.message = result.message
        return response

    async def _start_one(self, request: scheduler_pb2.StartRunRequest) -> scheduler_pb2.RunEvent:
        """One of StartRuns' runs, checked and admitted on its own."""
        check_request(request)
        return await self._admissions.admit(
            request.registration, request.run_id, to_glue(request.request)
        )

    async def StopRun(  # type: ignore[override]
        self, request: scheduler_pb2.StopRunRequest, context: Context
    ) -> scheduler_pb2.StopRunResponse:
        check_request(request)
        event, signal = await self._store.request_stop(request.job_name, request.run_id)
        if signal:
            await self._executor.stop(request.run_id)
        return scheduler_pb2.StopRunResponse(event=event)

    async def WatchRunEvents(  # type: ignore[override]
        self, request: scheduler_pb2.WatchRunEventsRequest, context: Context
    ) -> AsyncIterator[scheduler_pb2.RunEvent]:
        check_request(request)
        # Headers now, so the consumer knows it is connected before the first event.
        await context.send_initial_metadata(())
        async for event in self._feed.stream(request.after_sequence):
            yield event

    async def AcknowledgeRunEvents(  # type: ignore[override]
        self, request: scheduler_pb2.AcknowledgeRunEventsRequest, context: Context
    ) -> scheduler_pb2.AcknowledgeRunEventsResponse:
        check_request(request)
        async with self._db.transaction() as conn:
            await retention.acknowledge(conn, request.sequence)
        return scheduler_pb2.AcknowledgeRunEventsResponse()

    async def GetJobBookmark(  # type: ignore[override]
        self, request: scheduler_pb2.GetJobBookmarkRequest, context: Context
    ) -> scheduler_pb2.GetJobBookmarkResponse:
        check_request(request)
        run_id = request.run_id if request.HasField("run_id") else None
        async with self._db.read() as conn:
            entry = await bookmarks.get(conn, request.job_name, request.incarnation, run_id=run_id)
        return scheduler_pb2.GetJobBookmarkResponse(entry=entry.to_proto())

    async def ResetJobBookmark(  # type: ignore[override]
        self, request: scheduler_pb2.ResetJobBookmarkRequest, context: Context
    ) -> scheduler_pb2.ResetJobBookmarkResponse:
        check_request(request)
        run_id = request.run_id if request.HasField("run_id") else None
        async with self._db.transaction() as conn:
            entry = await bookmarks.reset(
                conn, request.job_name, request.incarnation, run_id=run_id, now=time.time()
            )
        return scheduler_pb2.ResetJobBookmarkResponse(entry=entry.to_proto())

    async def ReadRunLog(  # type: ignore[override]
        self, request: scheduler_pb2.ReadRunLogRequest, context: Context
    ) -> AsyncIterator[scheduler_pb2.ReadRunLogResponse]:
        check_request(request)
        run = await self._store.get(request.run_id)
        if run is None:
            raise EntityNotFoundException(f"Job run {request.run_id} not found.")
        log = run_log.RunLog(
            os.path.dirname(self._store.log_path(request.run_id)), finished=run.state in TERMINAL
        )
        stream = request.stream or None
        if request.events:
            async for lines in self._log_events(log, request, stream):
                yield scheduler_pb2.ReadRunLogResponse(
                    offset=lines[0].offset if lines else request.offset,
                    next_offset=lines[-1].end if lines else request.offset,
                    events=[_event(line) for line in lines],
                )
            return
        offset = max(0, request.offset)
        last_read = False
        while True:
            batch = await asyncio.to_thread(run_log.read_chunks, log, offset, stream)
            for data, start, end in batch:
                yield scheduler_pb2.ReadRunLogResponse(data=data, offset=start, next_offset=end)
                offset = end
            if len(batch) == run_log.CHUNKS_PER_READ:
                continue  # more is there now
            if not request.follow or last_read:
                return
            current = await self._store.get(request.run_id)
            if current is None or current.state in TERMINAL:
                # One last read: output written just before the run ended (the supervisor
                # closes the log, with its cut line, before the run's end is recorded).
                log.finished = last_read = True
                continue
            await asyncio.sleep(LOG_FOLLOW_POLL)

    async def _log_events(
        self, log: run_log.RunLog, request: scheduler_pb2.ReadRunLogRequest, stream: str | None
    ) -> AsyncIterator[list[run_log.LogLine]]:
        """Lines in messages of at most EVENTS_PER_MESSAGE (backward: one message)."""
        left = request.limit or None
        offset = request.offset
        while True:
            batch = (
                run_log.EVENTS_PER_MESSAGE
                if left is None
                else min(left, run_log.EVENTS_PER_MESSAGE)
            )
            if request.backward:
                batch = request.limit or run_log.EVENTS_PER_MESSAGE
            lines, reached = await asyncio.to_thread(
                run_log.events,
                log,
                offset,
                stream,
                start_time=request.start_time,
                end_time=request.end_time,
                limit=batch,
                backward=request.backward,
            )
            yield lines
            if left is not None:
                left -= len(lines)
            if request.backward or len(lines) < batch or left == 0 or reached == offset:
                return
            offset = reached


def _event(line: run_log.LogLine) -> scheduler_pb2.RunLogEvent:
    return scheduler_pb2.RunLogEvent(
        offset=line.offset,
        timestamp=line.timestamp,
        stream=line.stream,
        message=line.text.decode("utf-8", "replace"),
        end=line.end,
    )
