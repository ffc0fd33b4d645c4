"""Runs and their state changes; every change writes its outbox event in the same transaction.

This module is the only writer of ``scheduler_runs``. Each public method is one short
transaction that reads the run, applies one transition, and appends the run's new record to
the outbox, so the catalog sees every change exactly once and in order (DESIGN invariant 2).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from glue.scheduler.v1 import scheduler_pb2
from glue.v1 import glue_pb2
from scheduler_service import outbox, registry
from scheduler_service.run_states import (
    HOLDS_JOB_SLOT,
    HOLDS_PROCESS_SLOT,
    TERMINAL,
    JobRunState,
    can_transition,
)
from scheduler_service.tables import runs
from servicekit.db import Database
from servicekit.errors import (
    ConcurrentRunsExceededException,
    EntityNotFoundException,
    InvalidInputException,
)
from servicekit.glue_shapes import GlueDict, from_glue

DEFAULT_TIMEOUT_MINUTES = 2880
DEFAULT_MAX_CONCURRENT_RUNS = 1

# Run members copied from the job unless the StartJobRun request sets them.
_FROM_JOB_OR_REQUEST = (
    "AllocatedCapacity",
    "MaxCapacity",
    "WorkerType",
    "NumberOfWorkers",
    "SecurityConfiguration",
    "NotificationProperty",
    "ExecutionClass",
    "JobRunQueuingEnabled",
)
_FROM_JOB = ("JobMode", "GlueVersion", "MaintenanceWindow", "ProfileName")
_FROM_REQUEST = ("ExecutionRoleSessionPolicy",)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRecord:
    """One row of ``scheduler_runs``."""

    run_id: str
    job_name: str
    job_incarnation: str
    state: JobRunState
    attempt: int
    max_retries: int
    timeout_minutes: int
    created_at: float
    updated_at: float
    completed_at: float | None
    deadline: float | None
    error_message: str | None
    execution_time: int | None
    record: GlueDict

    @classmethod
    def from_row(cls, row: Row[Any]) -> RunRecord:
        """Decode a database row."""
        return cls(
            run_id=row.run_id,
            job_name=row.job_name,
            job_incarnation=row.job_incarnation,
            state=JobRunState(row.state),
            attempt=row.attempt,
            max_retries=row.max_retries,
            timeout_minutes=row.timeout_minutes,
            created_at=row.created_at,
            updated_at=row.updated_at,
            completed_at=row.completed_at,
            deadline=row.deadline,
            error_message=row.error_message,
            execution_time=row.execution_time,
            record=json.loads(row.record),
        )

    def to_glue(self) -> GlueDict:
        """The run in Glue's JobRun form."""
        data = {k: v for k, v in self.record.items() if not k.startswith("_")}
        data["JobRunState"] = self.state.value
        data["Attempt"] = self.attempt
        data["StartedOn"] = _dt(self.created_at)
        data["LastModifiedOn"] = _dt(self.updated_at)
        if self.completed_at is not None:
            data["CompletedOn"] = _dt(self.completed_at)
        if self.error_message:
            data["ErrorMessage"] = self.error_message
        if self.execution_time is not None:
            data["ExecutionTime"] = self.execution_time
        return data

    def to_proto(self) -> glue_pb2.JobRun:
        """The run as a glue.v1.JobRun."""
        return from_glue(self.to_glue(), glue_pb2.JobRun)

    @property
    def arguments(self) -> dict[str, str]:
        """The effective arguments the process gets."""
        return dict(self.record.get("Arguments", {}))

    @property
    def command(self) -> GlueDict:
        """The job's Command (Glue JobCommand form) as it was when the run was admitted."""
        return dict(self.record.get("_Command", {}))


TerminalHook = Callable[[AsyncConnection, "RunRecord"], Awaitable[Sequence["RunRecord"]]]


def _row_values(run: RunRecord) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "job_name": run.job_name,
        "job_incarnation": run.job_incarnation,
        "state": run.state.value,
        "attempt": run.attempt,
        "max_retries": run.max_retries,
        "timeout_minutes": run.timeout_minutes,
        "created_at": run.created_at,
        "updated_at": run.updated_at,
        "completed_at": run.completed_at,
        "deadline": run.deadline,
        "error_message": run.error_message,
        "execution_time": run.execution_time,
        "record": json.dumps(run.record, default=str),
    }


def _dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def merge_arguments(job: GlueDict, overrides: dict[str, str]) -> dict[str, str]:
    """Glue's precedence: DefaultArguments, then the run's, then NonOverridableArguments."""
    return {
        **job.get("DefaultArguments", {}),
        **overrides,
        **job.get("NonOverridableArguments", {}),
    }


def max_concurrent_runs(job: GlueDict) -> int:
    """The job's MaxConcurrentRuns (default 1)."""
    value = job.get("ExecutionProperty", {}).get("MaxConcurrentRuns")
    return int(value) if value is not None else DEFAULT_MAX_CONCURRENT_RUNS


def retry_run_id(run_id: str, attempt: int) -> str:
    """Glue's form for automatic retries: ``<first run id>_attempt_<n>``."""
    return f"{run_id.split('_attempt_', 1)[0]}_attempt_{attempt}"


class RunStore:
    """Reads and changes runs; each change is one transaction with its outbox event."""

    def __init__(self, db: Database, feed: outbox.EventFeed, runs_dir: Path) -> None:
        self._db = db
        self._feed = feed
        self._runs_dir = runs_dir
        # Called inside the transaction that ends a run (conditional triggers hook in here);
        # returns the runs it created.
        self.on_terminal: TerminalHook | None = None

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction; streams are woken after it commits."""
        async with self._db.transaction() as conn:
            yield conn
        self._feed.notify()

    async def _emit(self, conn: AsyncConnection, run: RunRecord) -> scheduler_pb2.RunEvent:
        proto = run.to_proto()
        seq = await outbox.append(conn, proto, run.job_incarnation)
        return scheduler_pb2.RunEvent(sequence=seq, run=proto, job_incarnation=run.job_incarnation)

    async def insert_many(self, conn: AsyncConnection, new_runs: Sequence[RunRecord]) -> None:
        """Insert new runs and their first events, in a few statements (trigger bursts)."""
        if not new_runs:
            return
        await conn.execute(runs.insert(), [_row_values(run) for run in new_runs])
        await outbox.append_many(conn, [(run.to_proto(), run.job_incarnation) for run in new_runs])

    def new_run(
        self,
        *,
        run_id: str,
        job: registry.RegisteredJob,
        request: GlueDict,
        state: JobRunState,
    ) -> RunRecord:
        """A new run of ``job`` as a StartJobRun-shaped ``request`` describes it (not stored)."""
        return self._new_run(run_id=run_id, job=job, request=request, attempt=0, state=state)

    def log_path(self, run_id: str) -> str:
        """Where a run's output goes."""
        return str(self._runs_dir / run_id / "output.log")

    async def _load(self, conn: AsyncConnection, run_id: str) -> RunRecord | None:
        query = select(runs).where(runs.c.run_id == run_id)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = (await conn.execute(query)).first()
        return RunRecord.from_row(row) if row is not None else None

    async def _save(self, conn: AsyncConnection, run: RunRecord) -> None:
        await conn.execute(
            update(runs)
            .where(runs.c.run_id == run.run_id)
            .values(
                state=run.state.value,
                updated_at=run.updated_at,
                completed_at=run.completed_at,
                deadline=run.deadline,
                error_message=run.error_message,
                execution_time=run.execution_time,
            )
        )

    async def _insert(self, conn: AsyncConnection, run: RunRecord) -> None:
        await conn.execute(runs.insert().values(**_row_values(run)))

    # -- admission ---------------------------------------------------------------------------

    async def admit(
        self,
        registration: scheduler_pb2.JobRegistration,
        run_id: str,
        request: GlueDict,
        *,
        process_slot_reserved: bool,
    ) -> tuple[scheduler_pb2.RunEvent, RunRecord, bool]:
        """Record a new run if its job has room; idempotent by ``run_id``.

        Returns the run's event, the run, and whether it was newly created. The job's active
        runs (WAITING, STARTING, RUNNING, STOPPING) are counted under the job row's lock, so
        concurrent admissions cannot overshoot MaxConcurrentRuns.

        Raises:
            EntityNotFoundException: the job was deleted.
            ConcurrentRunsExceededException: the job is at MaxConcurrentRuns (nothing recorded).
        """
        async with self.write() as conn:
            existing = await self._load(conn, run_id)
            if existing is not None:
                seq = await self._feed.latest_for_run(conn, run_id)
                event = scheduler_pb2.RunEvent(
                    sequence=seq, run=existing.to_proto(), job_incarnation=existing.job_incarnation
                )
                return event, existing, False
            if registration.version:
                await registry.upsert_job(conn, registration)
            name = request["JobName"]
            job = await registry.get_job(conn, name, lock=True)
            if job is None or job.deleted:
                raise EntityNotFoundException(f"Job {name} not found.")
            definition = job.definition
            queuing = request.get("JobRunQueuingEnabled", definition.get("JobRunQueuingEnabled"))
            limit = max_concurrent_runs(definition)
            active = (
                await conn.execute(
                    select(func.count())
                    .select_from(runs)
                    .where(runs.c.job_name == name)
                    .where(runs.c.state.in_([s.value for s in HOLDS_JOB_SLOT]))
                )
            ).scalar_one()
            if active >= limit and not queuing:
                raise ConcurrentRunsExceededException(
                    f"Job with name {name} already running: {active} of its "
                    f"{limit} concurrent runs (ExecutionProperty.MaxConcurrentRuns) are in flight"
                )
            start_now = process_slot_reserved and active < limit
            run = self._new_run(
                run_id=run_id,
                job=job,
                request=request,
                # A manual retry (StartJobRun with JobRunId) is a new run with its own retry
                # budget: Attempt 0, PreviousRunId set.
                attempt=0,
                state=JobRunState.STARTING if start_now else JobRunState.WAITING,
            )
            await self._insert(conn, run)
            event = await self._emit(conn, run)
            return event, run, True

    def _new_run(
        self,
        *,
        run_id: str,
        job: registry.RegisteredJob,
        request: GlueDict,
        attempt: int,
        state: JobRunState,
    ) -> RunRecord:
        definition = job.definition
        now = time.time()
        timeout = int(
            request.get("Timeout") or definition.get("Timeout") or DEFAULT_TIMEOUT_MINUTES
        )
        record: GlueDict = {
            "Id": run_id,
            "JobName": job.name,
            "Arguments": merge_arguments(definition, request.get("Arguments", {})),
            "Timeout": timeout,
            "LogGroupName": str(self._runs_dir / run_id / "output.log"),
            # What the process runs, fixed at admission: a later UpdateJob does not change a
            # run already admitted. Private members (leading "_") never leave the scheduler.
            "_Command": definition.get("Command", {}),
        }
        if request.get("JobRunId"):
            record["PreviousRunId"] = request["JobRunId"]
        for key in ("TriggerName", "PredecessorRuns"):
            if request.get(key):
                record[key] = request[key]
        for key in _FROM_JOB_OR_REQUEST:
            value = request.get(key, definition.get(key))
            if value is not None:
                record[key] = value
        for key in _FROM_JOB:
            if definition.get(key) is not None:
                record[key] = definition[key]
        for key in _FROM_REQUEST:
            if request.get(key) is not None:
                record[key] = request[key]
        return RunRecord(
            run_id=run_id,
            job_name=job.name,
            job_incarnation=job.incarnation,
            state=state,
            attempt=attempt,
            max_retries=int(definition.get("MaxRetries") or 0),
            timeout_minutes=timeout,
            created_at=now,
            updated_at=now,
            completed_at=None,
            deadline=None,
            error_message=None,
            execution_time=None,
            record=record,
        )

    # -- transitions -------------------------------------------------------------------------

    async def mark_running(self, run_id: str, deadline: float) -> RunRecord | None:
        """STARTING -> RUNNING once the process started; returns the run as it now is.

        If a stop arrived meanwhile the run stays STOPPING and the caller must stop the process.
        """
        async with self.write() as conn:
            run = await self._load(conn, run_id)
            if run is None:
                return None
            if run.state is not JobRunState.STARTING:
                if run.deadline is None:
                    run = replace(run, deadline=deadline)
                    await self._save(conn, run)
                return run
            run = replace(run, state=JobRunState.RUNNING, deadline=deadline, updated_at=time.time())
            await self._save(conn, run)
            await self._emit(conn, run)
            return run

    async def finish(
        self,
        run_id: str,
        state: JobRunState,
        message: str | None,
        *,
        started_at: float | None = None,
        ended_at: float | None = None,
    ) -> list[RunRecord]:
        """Settle a run in a terminal state, with what follows from it in the same transaction.

        A FAILED run with retries left gets its retry; conditional triggers watching the job
        may fire (``on_terminal``). The process's real outcome wins over the recorded state (a
        run STOPPING whose process exited 0 first ends SUCCEEDED). Returns the runs created.
        """
        assert state in TERMINAL
        async with self.write() as conn:
            run = await self._load(conn, run_id)
            if run is None or run.state in TERMINAL:
                return []
            now = time.time()
            ended = ended_at or now
            began = started_at or (
                run.deadline - run.timeout_minutes * 60 if run.deadline else None
            )
            run = replace(
                run,
                state=state,
                updated_at=now,
                completed_at=ended,
                error_message=message,
                execution_time=max(0, round(ended - began)) if began else 0,
            )
            await self._save(conn, run)
            await self._emit(conn, run)
            created = list(await self.on_terminal(conn, run)) if self.on_terminal else []
            retry = await self._retry(conn, run, now)
            return [*created, *([retry] if retry else [])]

    async def _retry(self, conn: AsyncConnection, run: RunRecord, now: float) -> RunRecord | None:
        if run.state is not JobRunState.FAILED or run.attempt >= run.max_retries:
            return None
        job = await registry.get_job(conn, run.job_name)
        if job is None or job.deleted or job.incarnation != run.job_incarnation:
            return None
        retry_id = retry_run_id(run.run_id, run.attempt + 1)
        record = dict(run.record, Id=retry_id, PreviousRunId=run.run_id)
        record["LogGroupName"] = str(self._runs_dir / retry_id / "output.log")
        retry = replace(
            run,
            run_id=retry_id,
            state=JobRunState.WAITING,
            attempt=run.attempt + 1,
            created_at=now,
            updated_at=now,
            completed_at=None,
            deadline=None,
            error_message=None,
            execution_time=None,
            record=record,
        )
        await self._insert(conn, retry)
        await self._emit(conn, retry)
        return retry

    async def request_stop(self, job_name: str, run_id: str) -> tuple[scheduler_pb2.RunEvent, bool]:
        """Ask a run to stop: WAITING ends STOPPED at once, STARTING/RUNNING go STOPPING.

        Returns the run's event and whether its process must be signalled.

        Raises:
            EntityNotFoundException: no such run of that job.
            InvalidInputException: the run already ended.
        """
        async with self.write() as conn:
            run = await self._load(conn, run_id)
            if run is None or run.job_name != job_name:
                raise EntityNotFoundException(f"Job run {run_id} of job {job_name} not found.")
            if run.state in TERMINAL:
                raise InvalidInputException(
                    f"Job run {run_id} cannot be stopped: it already ended {run.state.value}."
                )
            if run.state is JobRunState.STOPPING:
                seq = await self._feed.latest_for_run(conn, run_id)
                event = scheduler_pb2.RunEvent(
                    sequence=seq, run=run.to_proto(), job_incarnation=run.job_incarnation
                )
                return event, True
            now = time.time()
            if run.state is JobRunState.WAITING:
                run = replace(
                    run,
                    state=JobRunState.STOPPED,
                    updated_at=now,
                    completed_at=now,
                    execution_time=0,
                )
                signal = False
            else:
                assert can_transition(run.state, JobRunState.STOPPING)
                run = replace(run, state=JobRunState.STOPPING, updated_at=now)
                signal = True
            await self._save(conn, run)
            return await self._emit(conn, run), signal

    async def promote_waiting(self, free_slots: int) -> list[RunRecord]:
        """Start up to ``free_slots`` WAITING runs, oldest first, whose job has room."""
        if free_slots <= 0:
            return []
        promoted: list[RunRecord] = []
        async with self.write() as conn:
            query = (
                select(runs)
                .where(runs.c.state == JobRunState.WAITING.value)
                .order_by(runs.c.created_at, runs.c.run_id)
                .limit(free_slots * 4 + 16)
            )
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            waiting = [RunRecord.from_row(r) for r in (await conn.execute(query)).all()]
            running_by_job: dict[str, int] = {}
            for run in waiting:
                if len(promoted) >= free_slots:
                    break
                job = await registry.get_job(conn, run.job_name)
                limit = max_concurrent_runs(job.definition) if job and not job.deleted else 1
                if run.job_name not in running_by_job:
                    running_by_job[run.job_name] = (
                        await conn.execute(
                            select(func.count())
                            .select_from(runs)
                            .where(runs.c.job_name == run.job_name)
                            .where(runs.c.state.in_([s.value for s in HOLDS_PROCESS_SLOT]))
                        )
                    ).scalar_one()
                if running_by_job[run.job_name] >= limit:
                    continue
                running_by_job[run.job_name] += 1
                run = replace(run, state=JobRunState.STARTING, updated_at=time.time())
                await self._save(conn, run)
                await self._emit(conn, run)
                promoted.append(run)
        return promoted

    # -- reads -------------------------------------------------------------------------------

    async def get(self, run_id: str) -> RunRecord | None:
        """One run, or None."""
        async with self._db.read() as conn:
            row = (await conn.execute(select(runs).where(runs.c.run_id == run_id))).first()
        return RunRecord.from_row(row) if row is not None else None

    async def in_states(self, states: Sequence[JobRunState]) -> list[RunRecord]:
        """Every run in one of ``states``, oldest first."""
        async with self._db.read() as conn:
            rows = (
                await conn.execute(
                    select(runs)
                    .where(runs.c.state.in_([s.value for s in states]))
                    .order_by(runs.c.created_at)
                )
            ).all()
        return [RunRecord.from_row(r) for r in rows]

    async def job_definition(self, name: str) -> GlueDict | None:
        """The registered definition of job ``name`` (None if absent or deleted)."""
        async with self._db.read() as conn:
            job = await registry.get_job(conn, name)
        return job.definition if job is not None and not job.deleted else None
