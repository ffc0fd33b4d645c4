"""Runs and their state changes; every change writes its outbox event in the same transaction.

With the modules below it is the only writer of ``scheduler_runs``. Each public method is one
short transaction that reads the run, applies one transition, and appends the run's new record to
the outbox, so the catalog sees every change exactly once and in order (docs/invariants.md §2).

The run path is split by responsibility:

- ``run_record``: the run record, its row codec (built from one column list), its JobRun
  proto and drafts;
- ``concurrency``: the MaxConcurrentRuns decision and the one count of active runs;
- ``run_admission``: StartRun admission in batches (``RunStore.admit_many`` hands over);
- ``run_leases``: claims, renewals and releases of in-flight runs (``RunStore.leases``);
- here: new runs, the state changes (launch, end, retry, stop, promotion) and reads.

Run ownership between replicas (see ``leases``): a run that takes a process slot is owned by
the replica that admitted, promoted or claimed it, under a lease on the database's clock; the
executor's state writes (``record_launch``, ``finish``) are fenced: they raise
``NotOwnerError`` rather than write over another replica's run.

Longer than the ~400 lines the team aims for: the transitions share this store's private
load/save/emit steps and their lock order (job rows, then the run, then the outbox counter),
which is easiest to keep right when they sit together.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from glue.scheduler.v1 import scheduler_pb2
from scheduler_service import (
    bookmarks,
    bulk,
    concurrency,
    outbox,
    registry,
    run_admission,
    run_record,
)
from scheduler_service.bad_rows import TALLY, UnreadableRowError
from scheduler_service.leases import Replica
from scheduler_service.metrics import SchedulerMetrics
from scheduler_service.retries import RetryBackoff
from scheduler_service.run_admission import Admission, Admitted
from scheduler_service.run_leases import RunLeases
from scheduler_service.run_record import NewRun, RunRecord
from scheduler_service.run_states import (
    HOLDS_PROCESS_SLOT,
    TERMINAL,
    JobRunState,
    can_transition,
)
from scheduler_service.tables import runs
from servicekit import log_groups
from servicekit.db import Database
from servicekit.errors import (
    EntityNotFoundException,
    GlueError,
    InvalidInputException,
)
from servicekit.glue_shapes import GlueDict
from servicekit.internal_rules import MAX_RETRIES

DEFAULT_TIMEOUT_MINUTES = 2880

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


TerminalHook = Callable[[AsyncConnection, "RunRecord"], Awaitable[Sequence["RunRecord"]]]


class NotOwnerError(Exception):
    """A fenced write found the run owned by another replica (this one lost it to a reaper).

    Nothing was written; the caller must drop the run and leave it to its owner.
    """

    def __init__(self, run_id: str, owner: str | None) -> None:
        super().__init__(f"run {run_id} is owned by replica {owner}, not by this one")
        self.run_id = run_id
        self.owner = owner


@dataclass(frozen=True, slots=True, kw_only=True)
class LaunchRecord:
    """What ``RunStore.record_launch`` recorded."""

    run: RunRecord
    """The run as it now is."""
    launch: bool
    """Whether to start its process: False for a run stopped before it was ever launched."""


# The statements of the per-run hot paths (admission, transitions), built once: composing a
# SQLAlchemy statement and working out its cache key costs more of the event loop than
# executing it does. Values are bound at execution.
_LOAD = select(runs).where(runs.c.run_id == bindparam("run_id"))
# On PostgreSQL a run's changes are serialised by its row lock (SQLite has one writer anyway).
_LOAD_LOCKED = _LOAD.with_for_update()
_INSERT = runs.insert()
# The SET clause is the columns given at execution (a bound name may not be a column's).
_SAVE = update(runs).where(runs.c.run_id == bindparam("saved_run_id"))


def merge_arguments(job: GlueDict, overrides: dict[str, str]) -> dict[str, str]:
    """Glue's precedence: DefaultArguments, then the run's, then NonOverridableArguments."""
    return {
        **job.get("DefaultArguments", {}),
        **overrides,
        **job.get("NonOverridableArguments", {}),
    }


def retry_run_id(run_id: str, attempt: int) -> str:
    """Glue's form for automatic retries: ``<first run id>_attempt_<n>``."""
    return f"{run_id.split('_attempt_', 1)[0]}_attempt_{attempt}"


class RunStore:
    """Reads and changes runs; each change is one transaction with its outbox event."""

    def __init__(
        self,
        db: Database,
        feed: outbox.EventFeed,
        runs_dir: Path,
        *,
        replica: Replica,
        retry_backoff: RetryBackoff | None = None,
        metrics: SchedulerMetrics | None = None,
    ) -> None:
        self._db = db
        self._feed = feed
        self._metrics = metrics or SchedulerMetrics()
        self._runs_dir = str(runs_dir)
        self.replica = replica
        # Claims, renewals and releases of in-flight runs (the reaper's and heartbeat's side).
        self.leases = RunLeases(db, replica)
        self._retry_backoff = retry_backoff or RetryBackoff()
        # Called inside the transaction that ends a run (conditional triggers hook in here);
        # returns the runs it created.
        self.on_terminal: TerminalHook | None = None
        # A run inserted with its lease taken now (built once, like the statements below).
        self._insert_leased = runs.insert().values(lease_until=self.leases.lease_expr())

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction; streams are woken after it commits."""
        async with self._db.transaction() as conn:
            yield conn
        self._feed.notify()

    async def _emit(self, conn: AsyncConnection, run: RunRecord) -> scheduler_pb2.RunEvent:
        proto = run.to_proto()
        self._metrics.run_changed(run.state)
        seq = await outbox.append(conn, proto, run.job_incarnation)
        return scheduler_pb2.RunEvent(sequence=seq, run=proto, job_incarnation=run.job_incarnation)

    async def insert_many(self, conn: AsyncConnection, new_runs: Sequence[NewRun]) -> list[int]:
        """Insert new runs and their first events, in a few statements (trigger bursts, batches
        of admissions); returns the events' sequence numbers, in order.

        Runs inserted STARTING are owned by this replica, which must launch them.
        """
        if not new_runs:
            return []
        owned = [new for new in new_runs if new.run.state in HOLDS_PROCESS_SLOT]
        others = [new for new in new_runs if new.run.state not in HOLDS_PROCESS_SLOT]
        if owned:
            # At most a process slot's worth: their lease is taken on the database's clock.
            await conn.execute(
                self._insert_leased, [self._owned(new.run, new.record_json) for new in owned]
            )
        if len(others) >= outbox.COPY_MIN_ROWS:
            rows = [run_record.row_tuple(new.run, new.record_json) for new in others]
            await bulk.insert_rows(conn, runs, run_record.INSERTED, rows)
        elif others:
            await conn.execute(
                _INSERT, [run_record.row_values(new.run, new.record_json) for new in others]
            )
        self._metrics.runs_created(new.run.state for new in new_runs)
        return await outbox.append_many(
            conn, [(new.run.run_id, new.payload, new.run.job_incarnation) for new in new_runs]
        )

    # -- ownership ---------------------------------------------------------------------------

    def _owned(self, run: RunRecord, record_json: str | None = None) -> dict[str, Any]:
        """Row values (without lease_until) for ``run`` owned by this replica (not launched:
        its site is written by ``record_launch``)."""
        owned = replace(run, owner=self.replica.replica_id, site=None)
        return run_record.row_values(owned, record_json)

    def _fence(self, run: RunRecord) -> None:
        """Raise NotOwnerError unless this replica owns ``run`` (locked by the caller)."""
        if run.owner != self.replica.replica_id:
            raise NotOwnerError(run.run_id, run.owner)

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
        # os.path, not pathlib: a trigger burst asks this thousands of times at once.
        return os.path.join(self._runs_dir, run_id, "output.log")

    async def _load(self, conn: AsyncConnection, run_id: str) -> RunRecord | None:
        query = _LOAD_LOCKED if conn.dialect.name == "postgresql" else _LOAD
        row = (await conn.execute(query, {"run_id": run_id})).first()
        return RunRecord.from_row(row) if row is not None else None

    async def _save(self, conn: AsyncConnection, run: RunRecord) -> None:
        await conn.execute(
            _SAVE,
            {
                "saved_run_id": run.run_id,
                "state": run.state.value,
                "updated_at": run.updated_at,
                "completed_at": run.completed_at,
                "deadline": run.deadline,
                "error_message": run.error_message,
                "execution_time": run.execution_time,
            },
        )

    async def _insert(self, conn: AsyncConnection, run: RunRecord) -> None:
        if run.state in HOLDS_PROCESS_SLOT:
            # Admitted straight into a process slot: this replica owns it and launches it.
            await conn.execute(self._insert_leased, self._owned(run))
        else:
            await conn.execute(_INSERT, run_record.row_values(run))

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
            # Glue's group prefix for the job type, as AWS answers it; the log itself is
            # output.log in the run's directory (log_path).
            "LogGroupName": log_groups.group_prefix(definition.get("Command", {}).get("Name")),
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

    # -- admission ---------------------------------------------------------------------------

    async def admit_many(self, admissions: Sequence[Admission]) -> list[Admitted | GlueError]:
        """Record the new runs of ``admissions`` whose jobs have room, in one transaction
        (``run_admission.admit_many``)."""
        return await run_admission.admit_many(self, admissions)

    async def latest_sequence(self, conn: AsyncConnection, run_id: str) -> int:
        """The sequence number of the run's latest event."""
        return await self._feed.latest_for_run(conn, run_id)

    # -- transitions -------------------------------------------------------------------------

    async def record_launch(self, run_id: str, deadline: float) -> LaunchRecord | None:
        """Record that this replica launches the run, before its supervisor is started.

        STARTING moves to RUNNING with this replica's site and the run's deadline (one event);
        a run already launched on this site (taken over from a dead process of the site) keeps
        its deadline and is launched again: the run directory's claim lets at most one
        supervisor start. A run asked to stop before it was ever launched is not launched.
        Returns None if the run is gone or already ended.

        Raises:
            NotOwnerError: another replica owns the run now (nothing written).
        """
        async with self.write() as conn:
            run = await self._load(conn, run_id)
            if run is None or run.state in TERMINAL:
                return None
            self._fence(run)
            if run.site is None and run.state is JobRunState.STOPPING:
                return LaunchRecord(run=run, launch=False)
            if run.site is not None:
                # Launched before: only a process of that site may launch it again.
                assert run.site == self.replica.site, (run.site, self.replica.site)
                if run.deadline is None:
                    run = replace(run, deadline=deadline)
                    await self._save(conn, run)
                return LaunchRecord(run=run, launch=True)
            run = replace(
                run,
                state=JobRunState.RUNNING,
                deadline=deadline,
                updated_at=time.time(),
                site=self.replica.site,
            )
            await conn.execute(
                _SAVE,
                {
                    "saved_run_id": run_id,
                    "state": run.state.value,
                    "updated_at": run.updated_at,
                    "deadline": run.deadline,
                    "site": run.site,
                },
            )
            await self._emit(conn, run)
            return LaunchRecord(run=run, launch=True)

    async def finish(
        self,
        run_id: str,
        state: JobRunState,
        message: str | None,
        *,
        started_at: float | None = None,
        ended_at: float | None = None,
        retry: bool = True,
        bookmark: str | None = None,
    ) -> list[RunRecord]:
        """Settle a run in a terminal state, with what follows from it in the same transaction.

        A FAILED run with retries left gets its retry (unless not ``retry``: its job may still
        be running somewhere); conditional triggers watching the job may fire
        (``on_terminal``). The process's real outcome wins over the recorded state (a run
        STOPPING whose process exited 0 first ends SUCCEEDED). A ``bookmark`` the run's script
        committed (JSON text) becomes the job's bookmark. Returns the runs created.

        Raises:
            NotOwnerError: another replica owns the run now (nothing written).
        """
        assert state in TERMINAL
        async with self.write() as conn:
            run = await self._load(conn, run_id)
            if run is None:
                return []
            self._fence(run)
            if run.state in TERMINAL:
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
            if began:
                self._metrics.run_ended(state, ended - began)
            await self._save(conn, run)
            created = list(await self.on_terminal(conn, run)) if self.on_terminal else []
            retry_run = await self._retry(conn, run, now) if retry else None
            if bookmark is not None:
                # After the job rows the hooks lock, before the outbox counter (bookmarks).
                await bookmarks.commit(
                    conn,
                    job_name=run.job_name,
                    run_id=run.run_id,
                    previous_run_id=run.record.get("PreviousRunId"),
                    attempt=run.attempt,
                    state=bookmark,
                    now=now,
                )
            # The outbox counter is every writer's last lock: a fire this run causes locks its
            # jobs' rows first, as StartRun and scheduled fires do. Taking the counter before
            # them deadlocked against a StartRun of an action's job on PostgreSQL.
            await self._emit(conn, run)
            if retry_run is not None:
                await self._emit(conn, retry_run)
            return [*created, *([retry_run] if retry_run else [])]

    async def _retry(self, conn: AsyncConnection, run: RunRecord, now: float) -> RunRecord | None:
        """The automatic retry of a FAILED run with retries left, WAITING out its backoff.

        Inserted in the transaction that ends ``run``, with its not-before time: a restart
        during the backoff finds it there and starts it when due, once (its id is derived from
        the failed run's, so it cannot be made twice).
        """
        # Capped here too: a run stored before the catalog refused more keeps its number.
        if run.state is not JobRunState.FAILED or run.attempt >= min(run.max_retries, MAX_RETRIES):
            return None
        job = await registry.get_job(conn, run.job_name)
        if job is None or job.deleted or job.incarnation != run.job_incarnation:
            return None
        attempt = run.attempt + 1
        retry_id = retry_run_id(run.run_id, attempt)
        record = dict(run.record, Id=retry_id, PreviousRunId=run.run_id)
        not_before = now + self._retry_backoff.delay(attempt)
        retry = replace(
            run,
            run_id=retry_id,
            state=JobRunState.WAITING,
            attempt=attempt,
            # StartedOn is when the attempt may start (the end of its backoff), so attempts
            # show the backoff between them; it also queues the retry by that time.
            created_at=not_before,
            updated_at=now,
            not_before=not_before,
            completed_at=None,
            deadline=None,
            error_message=None,
            execution_time=None,
            record=record,
            # A retry waits for a slot like any new run; whoever promotes it owns it.
            owner=None,
            lease_until=None,
            site=None,
        )
        await self._insert(conn, retry)
        self._metrics.runs_created([retry.state])
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
                raise EntityNotFoundException.run(job_name, run_id)
            if run.state in TERMINAL:
                raise InvalidInputException(
                    f"Job run {run_id} cannot be stopped: it already ended {run.state.value}."
                )
            if run.state is JobRunState.STOPPING:
                seq = await self.latest_sequence(conn, run_id)
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
        """Start up to ``free_slots`` WAITING runs, oldest first, whose job has room.

        The promoted runs are owned by this replica, which must launch them.
        """
        if free_slots <= 0:
            return []
        promoted: list[RunRecord] = []
        async with self.write() as conn:
            query = (
                select(runs)
                .where(runs.c.state == JobRunState.WAITING.value)
                # Retries still in their backoff wait (``retries``); the housekeeping loop
                # promotes them once due.
                .where(or_(runs.c.not_before.is_(None), runs.c.not_before <= time.time()))
                .order_by(runs.c.created_at, runs.c.run_id)
                .limit(free_slots * 4 + 16)
            )
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            waiting = await run_record.readable_runs(conn, (await conn.execute(query)).all())
            # The jobs' row locks, in name order (as fires take them): replicas promoting runs
            # of one job at once count its running runs one after the other, so queued runs
            # (JobRunQueuingEnabled) cannot overshoot MaxConcurrentRuns between them.
            found: dict[str, registry.RegisteredJob] = {}
            for name in sorted({run.job_name for run in waiting}):
                try:
                    job = await registry.get_job(conn, name, lock=True)
                except UnreadableRowError as exc:
                    TALLY.note(exc)  # its runs wait: the catalog's reconciler replaces it
                    continue
                if job is not None:
                    found[name] = job
            running_by_job = await concurrency.count_active(
                conn, [run.job_name for run in waiting], HOLDS_PROCESS_SLOT
            )
            for run in waiting:
                if len(promoted) >= free_slots:
                    break
                job = found.get(run.job_name)
                definition = job.definition if job is not None and not job.deleted else None
                if not concurrency.has_room(definition, running_by_job[run.job_name]):
                    continue
                running_by_job[run.job_name] += 1
                run = replace(
                    run,
                    state=JobRunState.STARTING,
                    updated_at=time.time(),
                    owner=self.replica.replica_id,
                )
                await self._save(conn, run)
                await conn.execute(
                    update(runs)
                    .where(runs.c.run_id == run.run_id)
                    .values(owner=run.owner, lease_until=self.leases.lease_expr())
                )
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
        return TALLY.decode(rows, RunRecord.from_row)

    async def bookmark_for_next_run(self, job_name: str) -> str | None:
        """The job's bookmark, for a run about to start (None: none)."""
        return await bookmarks.state_for_next_run(self._db, job_name)

    async def job_definition(self, name: str) -> GlueDict | None:
        """The registered definition of job ``name`` (None if absent or deleted)."""
        async with self._db.read() as conn:
            job = await registry.get_job(conn, name)
        return job.definition if job is not None and not job.deleted else None
