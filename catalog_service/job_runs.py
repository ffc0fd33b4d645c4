"""Job runs: StartJobRun, GetJobRun, GetJobRuns, BatchStopJobRun, and run logs.

The scheduler admits and executes runs; the catalog keeps their history from its events. A
StartJobRun applies the admission event itself, so the run is readable the moment its id is
returned (the same event arriving later through the stream changes nothing).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from functools import partial

from sqlalchemy import delete, select

from catalog_service import identity, limits
from catalog_service.identity_quotas import WAITING_STATES, RunAdmissions
from catalog_service.job_run_listing import _LISTED, _NewestFirst, _recent_filters, _run
from catalog_service.jobs import JobCatalog
from catalog_service.limits import Limits
from catalog_service.run_events import AppliedElsewhere, apply_admissions, apply_events
from catalog_service.run_starts import RunStarts
from catalog_service.scheduler_link import SchedulerLink
from catalog_service.tables import job_runs, jobs
from catalog_service.validation import validate_request
from glue.scheduler.v1 import scheduler_pb2
from glue.v1 import glue_pb2
from glue_vocabulary.run_states import TERMINAL
from glue_vocabulary.shapes import GlueDict, from_glue
from servicekit.batches import Batches
from servicekit.db import Database
from servicekit.errors import (
    EntityNotFoundException,
    GlueError,
    InvalidInputException,
    ServiceUnavailableException,
)

log = logging.getLogger(__name__)

DEFAULT_PAGE = 100
# GetRecentJobRuns' default page (its largest: job_run_listing.MAX_RECENT).
DEFAULT_RECENT = 50
# Runs of deleted jobs are kept this long (see JobRunCatalog.prune_deleted_job_runs).
DELETED_JOB_RUNS_KEPT_SECONDS = 30 * 86400
FINISHED_CACHE_SIZE = 50_000
FOLLOW_SETTLE_POLLS = 100
FOLLOW_SETTLE_INTERVAL = 0.05


def new_run_id() -> str:
    """A run id in Glue's form: ``jr_`` and 64 hex digits."""
    return "jr_" + secrets.token_hex(32)


class JobRunCatalog:
    """The job-run operations."""

    def __init__(
        self,
        db: Database,
        link: SchedulerLink,
        job_catalog: JobCatalog,
        *,
        caps: Limits | None = None,
    ) -> None:
        self._db = db
        self._link = link
        self._jobs = job_catalog
        self.caps = caps or Limits()
        # --max-waiting-runs-per-identity, counted in memory while far from it.
        self.admissions = RunAdmissions(db, self.caps.max_waiting_runs_per_identity)
        # Finished runs never change, so GetJobRun serves them from memory. Only DeleteJob
        # removes them, and it purges this cache (one catalog process owns the catalog's
        # tables; a second catalog process would need its own invalidation).
        self._finished: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self.applied_elsewhere = AppliedElsewhere()
        """Events applied here that the event consumer need not apply again."""
        self.starts = RunStarts(link)
        """StartJobRun's admissions, sent to the scheduler in batches under load."""
        self._admission_writes: Batches[tuple[scheduler_pb2.RunEvent, str | None], None] = Batches(
            self._write_admissions,
            stopping=partial(ServiceUnavailableException.stopping, "catalog service"),
            writers=2,
        )
        job_catalog.on_deleted.append(self._forget_job)

    async def close(self) -> None:
        """Refuse new runs; let those being admitted finish (briefly)."""
        await self.starts.close()
        await self._admission_writes.close(grace=2.0)

    async def _write_admissions(
        self, admissions: list[tuple[scheduler_pb2.RunEvent, str | None]]
    ) -> list[None]:
        # One statement, executed for each: atomic by itself (``Database.statement``).
        async with self._db.statement() as conn:
            await apply_admissions(conn, admissions)
        return [None] * len(admissions)

    def _forget_job(self, job_name: str) -> None:
        for key in [k for k in self._finished if k[0] == job_name]:
            del self._finished[key]
        self.applied_elsewhere.forget_job(job_name)

    def consumer_applied(self, events: Sequence[scheduler_pb2.RunEvent]) -> None:
        """The event consumer applied these events. A run it wrote in a waiting state may be
        a new run with no identity (a trigger's, a retry): anonymous's quota counts it."""
        waiting = sum(1 for e in events if e.run.job_run_state in WAITING_STATES)
        self.admissions.note_added(None, waiting)

    def _remember(self, run: glue_pb2.JobRun) -> None:
        if run.job_run_state in TERMINAL:
            self._finished[(run.job_name, run.id)] = run.SerializeToString()
            if len(self._finished) > FINISHED_CACHE_SIZE:
                self._finished.popitem(last=False)

    async def start(self, params: GlueDict) -> str:
        """StartJobRun.

        Raises:
            InvalidInputException: the request breaks a rule.
            EntityNotFoundException: no such job, or no such run to retry (JobRunId).
            ConcurrentRunsExceededException: the job is at MaxConcurrentRuns; nothing recorded.
            ResourceNumberLimitExceededException: the caller is at its quota of runs waiting
                to start; nothing started.
            ServiceUnavailableException: the scheduler is unreachable; nothing started.
        """
        validate_request("StartJobRun", params)
        arguments = params.get("Arguments") or {}
        limits.check_arguments(arguments, "Arguments", self.caps)
        name = params["JobName"]
        registration = await self._jobs.get_registration(name)
        job = registration.job
        limits.check_merged(
            name,
            job.default_arguments,
            arguments,
            job.non_overridable_arguments,
            "Arguments",
            self.caps,
        )
        previous = params.get("JobRunId")
        if previous:
            await self._load(name, previous)
        run_id = new_run_id()
        request = scheduler_pb2.StartRunRequest(
            registration=registration,
            run_id=run_id,
            request=from_glue(params, glue_pb2.StartJobRunRequest),
        )
        # The consumer waits for this write rather than write the run too
        # (``AppliedElsewhere``).
        with self.applied_elsewhere.admitting(run_id):
            async with self.admissions.admit():
                event = await self.starts.start(request)
                # Written before answering, so a GetJobRun right after finds the run; the
                # consumer, which waits for this write, then drops the same event without a
                # transaction. Admissions answered together are written together.
                await self._admission_writes.submit((event, identity.caller_name()))
                # (Had the consumer written it first, past its patience, it is past this event
                # and the note is ignored.)
                self.applied_elsewhere.note([event])
        return run_id

    async def _load(self, job_name: str, run_id: str) -> glue_pb2.JobRun:
        async with self._db.read() as conn:
            row = (
                await conn.execute(
                    select(job_runs.c.snapshot, job_runs.c.started_by)
                    .where(job_runs.c.run_id == run_id)
                    .where(job_runs.c.job_name == job_name)
                    .where(job_runs.c.job_deleted.is_(False))
                )
            ).first()
            if row is None:
                job = (
                    await conn.execute(select(jobs.c.name).where(jobs.c.name == job_name))
                ).first()
        if row is None:
            if job is None:
                raise EntityNotFoundException.job(job_name)
            raise EntityNotFoundException.run(job_name, run_id)
        return _run(row.snapshot, row.started_by)

    async def get(self, params: GlueDict) -> glue_pb2.JobRun:
        """GetJobRun; PredecessorRuns only with PredecessorsIncluded.

        Raises:
            EntityNotFoundException: no such job or run.
        """
        validate_request("GetJobRun", params)
        cached = self._finished.get((params["JobName"], params["RunId"]))
        if cached is not None:
            run = glue_pb2.JobRun.FromString(cached)
        else:
            run = await self._load(params["JobName"], params["RunId"])
            self._remember(run)
        if not params.get("PredecessorsIncluded"):
            run.ClearField("predecessor_runs")
        return run

    async def list_runs(self, params: GlueDict) -> tuple[list[glue_pb2.JobRun], str | None]:
        """GetJobRuns: newest first, keyset-paged.

        Raises:
            EntityNotFoundException: no such job.
        """
        validate_request("GetJobRuns", params)
        name = params["JobName"]
        listing = f"runs:{name}"
        query = (
            select(*_LISTED)
            .where(job_runs.c.job_name == name)
            .where(job_runs.c.job_deleted.is_(False))
        )
        page = _NewestFirst(params, listing, DEFAULT_PAGE, self.caps)
        async with self._db.read() as conn:
            exists = (await conn.execute(select(jobs.c.name).where(jobs.c.name == name))).first()
            if exists is None:
                raise EntityNotFoundException.job(name)
            rows = (await conn.execute(page.query(query))).all()
        return page.runs(rows)

    async def recent(self, params: GlueDict) -> tuple[list[glue_pb2.JobRun], str | None]:
        """GetRecentJobRuns (extension): runs across jobs, newest first, keyset-paged;
        runs of deleted jobs included and marked ``job_deleted``.

        Raises:
            InvalidInputException: a filter or MaxResults breaks a rule, or a foreign token.
        """
        query = select(*_LISTED)
        filters = _recent_filters(params)
        for condition in filters.conditions:
            query = query.where(condition)
        if params.get("LatestPerJob"):
            # Each job's newest run among those the filters keep: the one no newer run of the
            # same job (under the same filters) follows.
            newer = job_runs.alias("newer")
            later = select(newer.c.run_id).where(
                newer.c.job_name == job_runs.c.job_name,
                (newer.c.started_on > job_runs.c.started_on)
                | (
                    (newer.c.started_on == job_runs.c.started_on)
                    & (newer.c.run_id > job_runs.c.run_id)
                ),
                *_recent_filters(params, newer).conditions,
            )
            query = query.where(~later.exists())
        page = _NewestFirst(params, f"recent:{filters.key}", DEFAULT_RECENT, self.caps)
        async with self._db.read() as conn:
            rows = (await conn.execute(page.query(query))).all()
        return page.runs(rows)

    async def prune_deleted_job_runs(self, older_than: float) -> int:
        """Forget runs of deleted jobs that started before ``older_than`` (epoch seconds):
        nothing else ever removes them (a trigger naming a deleted job keeps starting runs
        that end ERROR). Returns how many were removed."""
        async with self._db.transaction() as conn:
            result = await conn.execute(
                delete(job_runs)
                .where(job_runs.c.job_deleted.is_(True))
                .where(job_runs.c.started_on < older_than)
            )
        return int(result.rowcount)

    async def prune_deleted_job_runs_forever(self, interval: float = 3600.0) -> None:
        """Prune runs of deleted jobs older than ``DELETED_JOB_RUNS_KEPT_SECONDS`` every
        ``interval`` seconds, until cancelled."""
        while True:
            try:
                pruned = await self.prune_deleted_job_runs(
                    time.time() - DELETED_JOB_RUNS_KEPT_SECONDS
                )
                if pruned:
                    log.info("pruned runs of deleted jobs", extra={"runs": pruned})
            except Exception:
                log.exception("pruning runs of deleted jobs failed; will retry")
            await asyncio.sleep(interval)

    async def batch_stop(
        self, params: GlueDict
    ) -> tuple[
        list[glue_pb2.BatchStopJobRunSuccessfulSubmission], list[glue_pb2.BatchStopJobRunError]
    ]:
        """BatchStopJobRun: each id lands in SuccessfulSubmissions or Errors; never fails whole."""
        validate_request("BatchStopJobRun", params)
        name = params["JobName"]

        async def stop(run_id: str) -> scheduler_pb2.RunEvent | GlueError:
            try:
                await self._load(name, run_id)
                return await self._link.stop_run(name, run_id)
            except GlueError as exc:
                return exc

        results = await asyncio.gather(*(stop(run_id) for run_id in params["JobRunIds"]))
        successes, errors, events = [], [], []
        for run_id, result in zip(params["JobRunIds"], results, strict=True):
            if isinstance(result, GlueError):
                errors.append(
                    glue_pb2.BatchStopJobRunError(
                        job_name=name,
                        job_run_id=run_id,
                        error_detail=glue_pb2.ErrorDetail(
                            error_code=result.reason, error_message=result.message
                        ),
                    )
                )
            else:
                events.append(result)
                successes.append(
                    glue_pb2.BatchStopJobRunSuccessfulSubmission(job_name=name, job_run_id=run_id)
                )
        if events:
            async with self._db.transaction() as conn:
                await apply_events(conn, events)
            self.applied_elsewhere.note(events)
        return successes, errors

    async def read_log(self, params: GlueDict) -> AsyncIterator[tuple[bytes, int, int]]:
        """A run's captured output from an offset as (data, offset, next offset); with Stream,
        one stream's lines; with Follow, until the run ends."""
        validate_request(
            "GetJobRun", {"JobName": params.get("JobName"), "RunId": params.get("RunId")}
        )
        stream = params.get("Stream") or ""
        if stream not in ("", "stdout", "stderr"):
            raise InvalidInputException("Stream must be stdout or stderr.", field="Stream")
        await self._load(params["JobName"], params["RunId"])
        follow = bool(params.get("Follow", False))
        try:
            async for chunk in self._link.read_run_log(
                params["RunId"], int(params.get("Offset", 0)), follow, stream=stream
            ):
                # A scheduler from before next_offset sends none: the chunk's end is it.
                yield chunk.data, chunk.offset, chunk.next_offset or chunk.offset + len(chunk.data)
        except EntityNotFoundException:
            raise self._log_gone(params["RunId"]) from None
        if follow:
            # The scheduler ends the stream when the run ends; wait (briefly) until this
            # catalog has applied that event too, so a GetJobRun right after shows the end.
            for _ in range(FOLLOW_SETTLE_POLLS):
                run = await self._load(params["JobName"], params["RunId"])
                if run.job_run_state in TERMINAL:
                    break
                await asyncio.sleep(FOLLOW_SETTLE_INTERVAL)

    @staticmethod
    def _log_gone(run_id: str) -> EntityNotFoundException:
        # The catalog has the run, the scheduler no longer has it: history retention.
        return EntityNotFoundException(
            f"The log of job run {run_id} is no longer kept (the scheduler "
            "keeps finished runs' logs for its --history-days)."
        )

    async def run_by_id(self, run_id: str) -> glue_pb2.JobRun | None:
        """The run with this id, whatever its job (CloudWatch Logs names runs by id alone)."""
        async with self._db.read() as conn:
            row = (
                await conn.execute(
                    select(job_runs.c.snapshot, job_runs.c.started_by).where(
                        job_runs.c.run_id == run_id
                    )
                )
            ).first()
        return None if row is None else _run(row.snapshot, row.started_by)

    async def runs_by_id(
        self, prefix: str, after: str | None, limit: int, *, descending: bool
    ) -> list[glue_pb2.JobRun]:
        """Up to ``limit`` runs whose id starts with ``prefix``, in id order, after ``after``."""
        query = select(job_runs.c.snapshot, job_runs.c.started_by)
        if prefix:
            # A range rather than LIKE: ids may hold LIKE's wildcards, and the key is used.
            query = query.where(job_runs.c.run_id >= prefix).where(
                job_runs.c.run_id < prefix + "\U0010ffff"
            )
        if after is not None:
            query = query.where(
                job_runs.c.run_id < after if descending else job_runs.c.run_id > after
            )
        order = job_runs.c.run_id.desc() if descending else job_runs.c.run_id
        async with self._db.read() as conn:
            rows = (await conn.execute(query.order_by(order).limit(limit))).all()
        return [_run(row.snapshot, row.started_by) for row in rows]

    async def runs_by_start(
        self, after: tuple[float, str] | None, limit: int, *, descending: bool
    ) -> list[tuple[float, glue_pb2.JobRun]]:
        """Up to ``limit`` runs in start-time order (then id), after the (start, id) ``after``,
        each with its stored start time (the key to continue from).

        Sorted without an index of its own (the one on start time leads with the job name):
        fine for the history a catalog keeps, named here in case it grows.
        """
        query = select(job_runs.c.snapshot, job_runs.c.started_by, job_runs.c.started_on)
        key = (job_runs.c.started_on, job_runs.c.run_id)
        if after is not None:
            started, run_id = after
            if descending:
                query = query.where((key[0] < started) | ((key[0] == started) & (key[1] < run_id)))
            else:
                query = query.where((key[0] > started) | ((key[0] == started) & (key[1] > run_id)))
        order = (key[0].desc(), key[1].desc()) if descending else key
        async with self._db.read() as conn:
            rows = (await conn.execute(query.order_by(*order).limit(limit))).all()
        return [(row.started_on, _run(row.snapshot, row.started_by)) for row in rows]

    async def read_log_events(
        self,
        run_id: str,
        *,
        stream: str,
        offset: int,
        start_time: int = 0,
        end_time: int = 0,
        limit: int = 0,
        backward: bool = False,
    ) -> AsyncGenerator[scheduler_pb2.ReadRunLogResponse]:
        """A run's output lines of one stream with their times (see ReadRunLogRequest)."""
        request = scheduler_pb2.ReadRunLogRequest(
            run_id=run_id,
            offset=offset,
            stream=stream,
            events=True,
            start_time=start_time,
            end_time=end_time,
            limit=limit,
            backward=backward,
        )
        try:
            async for message in self._link.read_run_log_request(request):
                yield message
        except EntityNotFoundException:
            raise self._log_gone(run_id) from None
