"""Runs and their state changes; every change writes its outbox event in the same transaction.

With the modules below it is the only writer of ``scheduler_runs``. Each public method is one
short transaction that reads the run, applies one transition, and appends the run's new record to
the outbox, so the catalog sees every change exactly once and in order (docs/invariants.md §2).

The run path is split by responsibility:

- ``run_record``: the run record, its row codec (built from one column list), its JobRun
  proto and drafts;
- ``new_runs``: a new run's record, built from the job and the request (``RunStore.new_run``);
- ``concurrency``: the MaxConcurrentRuns decision and the one count of active runs;
- ``run_admission``: StartRun admission in batches (``RunStore.admit_many`` hands over);
- ``run_leases``: claims, renewals and releases of in-flight runs (``RunStore.leases``);
- ``run_end``: a run's end with what follows from it (``RunStore.end`` - or ``lock_many``,
  ``ending`` and ``save_many`` for ends written together - ``retry`` and ``promote`` are its
  steps);
- here: inserting new runs, the state changes (launch, end, retry, stop, promotion) and reads.

Run ownership between replicas (see ``leases``): a run that takes a process slot is owned by
the replica that admitted, promoted or claimed it, under a lease on the database's clock. A run
given a slot by an admission, a fire or a promotion is recorded STARTING with its launch (this
replica's site, its deadline) in that same transaction (``launched_here``), since this replica
launches it at once; only a run taken over without a recorded launch needs ``record_launch``.
It becomes RUNNING (Glue's "the job's process runs") once its supervisor reported the process
started: ``mark_running``, batched by ``running.RunningWrites``, or in the transaction that
records its end if that comes first (``end`` with ``started``). The executor's state writes
(``record_launch``, ``mark_running``, ``end``) are fenced: they raise ``NotOwnerError`` (or, in
a batch, skip the run) rather than write over another replica's run.

Longer than the ~400 lines the team aims for: the transitions share this store's private
load/save/emit steps and their lock order (job rows, then the run, then the outbox counter),
which is easiest to keep right when they sit together.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import KW_ONLY, dataclass, replace
from pathlib import Path
from typing import Any

from sqlalchemy import Double, Integer, Text, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from glue.scheduler.v1 import scheduler_pb2
from glue_vocabulary.run_states import HOLDS_PROCESS_SLOT, TERMINAL, JobRunState, can_transition
from glue_vocabulary.shapes import GlueDict
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
from scheduler_service.new_runs import NewRuns, retry_run_id
from scheduler_service.retries import RetryBackoff
from scheduler_service.run_admission import Admission, Admitted
from scheduler_service.run_leases import RunLeases
from scheduler_service.run_record import NewRun, RunRecord
from scheduler_service.tables import runs
from servicekit.db import Database
from servicekit.errors import EntityNotFoundException, GlueError, InvalidInputException
from servicekit.internal_rules import MAX_RETRIES


class NotOwnerError(Exception):
    """A fenced write found the run owned by another replica (this one lost it to a reaper).

    Nothing was written; the caller must drop the run and leave it to its owner.
    """

    def __init__(self, run_id: str, owner: str | None) -> None:
        super().__init__(f"run {run_id} is owned by replica {owner}, not by this one")
        self.run_id = run_id
        self.owner = owner


@dataclass(frozen=True, slots=True)
class EndReport:
    """How a run ended, as its executor reports it to ``run_end.RunEnd.finish``, which writes
    it with ``RunStore.end`` / ``ending``."""

    state: JobRunState
    """The terminal state to record."""
    message: str | None
    """Its ErrorMessage (None: none)."""
    _: KW_ONLY
    started_at: float | None = None
    """When its process started (None: worked out from its deadline, ``RunStore.end``)."""
    ended_at: float | None = None
    """When it ended (None: now)."""
    started: bool = False
    """The run's process ran, so a run still STARTING passes through RUNNING (``RunStore.end``)."""
    retry: bool = True
    """False: a FAILED run gets no automatic retry (its job may still run somewhere)."""
    bookmark: str | None = None
    """The bookmark its script committed, to become the job's (``bookmarks.commit``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Ending:
    """What ``RunStore.end`` wrote."""

    run: RunRecord
    """The run as it ended."""
    running: RunRecord | None
    """The run as it was RUNNING, when its RUNNING event is written with its end (``end``)."""


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
# Several runs, in key order; on PostgreSQL a row another transaction holds is skipped
# (``RunStore.lock_many``).
_LOAD_MANY = (
    select(runs)
    .where(runs.c.run_id.in_(bindparam("run_ids", expanding=True)))
    .order_by(runs.c.run_id)
)
_LOAD_MANY_LOCKED = _LOAD_MANY.with_for_update(skip_locked=True)


def _saved_values(run: RunRecord) -> dict[str, Any]:
    """The values of ``_SAVE``: what a state change writes."""
    return {
        "saved_run_id": run.run_id,
        "state": run.state.value,
        "updated_at": run.updated_at,
        "completed_at": run.completed_at,
        "deadline": run.deadline,
        "error_message": run.error_message,
        "execution_time": run.execution_time,
    }


# The events a ``RunStore.write`` transaction appended, published once it commits.
_APPENDED: ContextVar[list[tuple[int, str, bytes, str]]] = ContextVar("appended_events")

# The head of the queue: keys only (``RunStore.promote``).
_WAITING = (
    select(runs.c.run_id, runs.c.job_name)
    .where(runs.c.state == JobRunState.WAITING.value)
    .where(or_(runs.c.not_before.is_(None), runs.c.not_before <= bindparam("now", type_=Double)))
    .order_by(runs.c.created_at, runs.c.run_id)
    .limit(bindparam("limit", type_=Integer))
)


@dataclass(frozen=True, slots=True)
class Promotion:
    """What ``RunStore.promote`` did."""

    runs: list[RunRecord]
    """The runs promoted STARTING, oldest first."""
    exhausted: bool
    """Every due WAITING run was looked at and none other may start now (its job is at
    MaxConcurrentRuns): a slot left free may go to a new admission. False when the read
    stopped at its limit or at the slots, or a run it chose was taken meanwhile."""


class RunStore(NewRuns):
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
        # A run inserted with its lease taken now (built once, like the statements below).
        self._insert_leased = runs.insert().values(lease_until=self.leases.lease_expr())
        # Waiting runs promoted and launched by this replica (``promote``, ``launched_here``),
        # read back whole.
        self._promote_statement = (
            update(runs)
            .where(runs.c.run_id.in_(bindparam("run_ids", expanding=True)))
            .where(runs.c.state == JobRunState.WAITING.value)
            .values(
                state=JobRunState.STARTING.value,
                updated_at=bindparam("now", type_=Double),
                owner=bindparam("owner", type_=Text),
                site=bindparam("site", type_=Text),
                deadline=bindparam("now", type_=Double) + runs.c.timeout_minutes * 60,
                lease_until=self.leases.lease_expr(),
            )
            .returning(*runs.c)
        )
        # PostgreSQL: a chosen row another transaction holds is left, not waited for.
        self._promote_statement_pg = self._promote_statement.where(
            runs.c.run_id.in_(
                select(runs.c.run_id)
                .where(runs.c.run_id.in_(bindparam("run_ids", expanding=True)))
                .with_for_update(skip_locked=True)
            )
        )
        # Launched runs whose supervisor reported the process started (``mark_running``):
        # only those still STARTING and still this replica's (the fence), read back whole.
        self._running_statement = (
            update(runs)
            .where(runs.c.run_id.in_(bindparam("run_ids", expanding=True)))
            .where(runs.c.state == JobRunState.STARTING.value)
            .where(runs.c.owner == self.replica.replica_id)
            .values(state=JobRunState.RUNNING.value, updated_at=bindparam("now", type_=Double))
            .returning(*runs.c)
        )

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction; the events it appended are handed to local streams after it
        commits (``EventFeed.publish``), which also wakes them."""
        committed: list[tuple[int, str, bytes, str]] = []
        token = _APPENDED.set(committed)
        try:
            async with self._db.transaction() as conn:
                yield conn
        finally:
            _APPENDED.reset(token)
        self._feed.publish(committed)

    async def _append(
        self, conn: AsyncConnection, items: Sequence[tuple[str, bytes, str]]
    ) -> list[int]:
        """``outbox.append_many``, noting the events for ``write`` to publish."""
        seqs = await outbox.append_many(conn, items)
        appended = _APPENDED.get(None)
        if appended is not None:
            appended.extend(
                (seq, run_id, payload, incarnation)
                for seq, (run_id, payload, incarnation) in zip(seqs, items, strict=True)
            )
        return seqs

    async def _emit(self, conn: AsyncConnection, run: RunRecord) -> scheduler_pb2.RunEvent:
        proto = run.to_proto()
        self._metrics.run_changed(run.state)
        (seq,) = await self._append(
            conn, [(run.run_id, proto.SerializeToString(), run.job_incarnation)]
        )
        return scheduler_pb2.RunEvent(sequence=seq, run=proto, job_incarnation=run.job_incarnation)

    async def emit_many(self, conn: AsyncConnection, changed: Sequence[RunRecord]) -> list[int]:
        """Append the new records of ``changed`` runs as consecutive events (one statement);
        returns their sequence numbers. Last in a transaction: see ``outbox.append``."""
        items = []
        for run in changed:
            self._metrics.run_changed(run.state)
            items.append((run.run_id, run.to_proto().SerializeToString(), run.job_incarnation))
        return await self._append(conn, items)

    async def insert_many(self, conn: AsyncConnection, new_runs: Sequence[NewRun]) -> list[int]:
        """Insert new runs and their first events, in a few statements (trigger bursts, batches
        of admissions); returns the events' sequence numbers, in order.

        Runs inserted holding a process slot (STARTING, ``launched_here``) are owned by this
        replica, which must launch them.
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
        return await self._append(
            conn, [(new.run.run_id, new.payload, new.run.job_incarnation) for new in new_runs]
        )

    # -- ownership ---------------------------------------------------------------------------

    def _owned(self, run: RunRecord, record_json: str | None = None) -> dict[str, Any]:
        """Row values (without lease_until) for ``run`` owned by this replica."""
        owned = replace(run, owner=self.replica.replica_id)
        return run_record.row_values(owned, record_json)

    def launched_here(self, run: RunRecord, now: float) -> RunRecord:
        """``run`` as a transaction that starts it records it when this replica launches it at
        once: STARTING, owned by this replica, on its site, with its deadline.

        Writing the launch with the admission, fire or promotion saves a transaction and an
        event per run; the site is still written before the supervisor starts, which is what
        lets a process of this site (a restart, a caretaker) launch it again if this one dies
        first: the run directory's claim keeps it to one supervisor (docs/invariants.md §7, §8).
        It stays STARTING, as in Glue, until its process runs (``mark_running``).
        """
        return replace(
            run,
            state=JobRunState.STARTING,
            updated_at=now,
            owner=self.replica.replica_id,
            site=self.replica.site,
            deadline=now + run.timeout_minutes * 60,
        )

    def fence(self, run: RunRecord) -> None:
        """Raise NotOwnerError unless this replica owns ``run`` (locked by the caller)."""
        if run.owner != self.replica.replica_id:
            raise NotOwnerError(run.run_id, run.owner)

    def log_path(self, run_id: str) -> str:
        """Where a run's output goes."""
        # os.path, not pathlib: a trigger burst asks this thousands of times at once.
        return os.path.join(self._runs_dir, run_id, "output.log")

    async def _load(self, conn: AsyncConnection, run_id: str) -> RunRecord | None:
        query = _LOAD_LOCKED if conn.dialect.name == "postgresql" else _LOAD
        row = (await conn.execute(query, {"run_id": run_id})).first()
        return RunRecord.from_row(row) if row is not None else None

    async def _save(self, conn: AsyncConnection, run: RunRecord) -> None:
        await conn.execute(_SAVE, _saved_values(run))

    async def _insert(self, conn: AsyncConnection, run: RunRecord) -> None:
        if run.state in HOLDS_PROCESS_SLOT:
            # Admitted straight into a process slot: this replica owns it and launches it.
            await conn.execute(self._insert_leased, self._owned(run))
        else:
            await conn.execute(_INSERT, run_record.row_values(run))

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
        """Record that this replica launches a run taken over without a recorded launch,
        before its supervisor is started (runs this replica admits, fires or promotes have it
        recorded with that: ``launched_here``).

        The run gets this replica's site and its deadline; its state does not change (a
        STARTING run becomes RUNNING once its process runs, ``mark_running``), so no event is
        written. A run already launched on this site (taken over from a dead process of the
        site) keeps its deadline and is launched again: the run directory's claim lets at most
        one supervisor start. A run asked to stop before it was ever launched is not launched.
        Returns None if the run is gone or already ended.

        Raises:
            NotOwnerError: another replica owns the run now (nothing written).
        """
        async with self.write() as conn:
            run = await self._load(conn, run_id)
            if run is None or run.state in TERMINAL:
                return None
            self.fence(run)
            if run.site is None and run.state is JobRunState.STOPPING:
                return LaunchRecord(run=run, launch=False)
            if run.site is not None:
                # Launched before: only a process of that site may launch it again.
                assert run.site == self.replica.site, (run.site, self.replica.site)
                if run.deadline is None:
                    run = replace(run, deadline=deadline)
                    await self._save(conn, run)
                return LaunchRecord(run=run, launch=True)
            run = replace(run, deadline=deadline, updated_at=time.time(), site=self.replica.site)
            await conn.execute(
                _SAVE,
                {
                    "saved_run_id": run_id,
                    "updated_at": run.updated_at,
                    "deadline": run.deadline,
                    "site": run.site,
                },
            )
            return LaunchRecord(run=run, launch=True)

    async def mark_running(self, run_ids: Sequence[str]) -> list[RunRecord]:
        """Move launched runs whose supervisor reported their process started from STARTING to
        RUNNING, in one transaction with their events; returns the runs moved.

        Fenced per run: a run another replica owns now, or that is no longer STARTING (it
        ended, with its RUNNING event written by ``end``; or a stop moved it to STOPPING), is
        left as it is.
        """
        if not run_ids:
            return []
        async with self.write() as conn:
            rows = (
                await conn.execute(
                    self._running_statement, {"run_ids": sorted(set(run_ids)), "now": time.time()}
                )
            ).all()
            moved = await run_record.readable_runs(conn, rows)
            await self.emit_many(conn, moved)
        return moved

    async def end(self, conn: AsyncConnection, run_id: str, facts: EndReport) -> Ending | None:
        """Write a run's terminal state in ``conn`` (no event yet); None if the run is gone or
        already ended. The process's real outcome wins over the recorded state (a run STOPPING
        whose process exited 0 first ends SUCCEEDED). What follows from the end (retries,
        conditional triggers, promotion, the events) is ``run_end.RunEnd``'s, in the same
        transaction.

        ``facts.started``: the run's process ran (its supervisor reported it started). A run still
        STARTING then passes through RUNNING first, its RUNNING write (``mark_running``) not
        having happened yet: ``Ending.running`` is that record, whose event goes before the
        end's, so the history reads STARTING, RUNNING, end. A process that could not start
        (ERROR) goes from STARTING straight to its end.

        Raises:
            NotOwnerError: another replica owns the run now (nothing written).
        """
        assert facts.state in TERMINAL
        run = await self._load(conn, run_id)
        if run is None:
            return None
        self.fence(run)
        if run.state in TERMINAL:
            return None
        ending = self.ending(run, facts)
        await self._save(conn, ending.run)
        return ending

    def ending(self, run: RunRecord, facts: EndReport) -> Ending:
        """``run`` (not ended) as it ends as ``facts`` say, not yet saved; see ``end``."""
        now = time.time()
        state = facts.state
        running = None
        if run.state is JobRunState.STARTING and facts.started and state is not JobRunState.ERROR:
            running = replace(run, state=JobRunState.RUNNING, updated_at=now)
        ended = facts.ended_at or now
        began = facts.started_at or (
            run.deadline - run.timeout_minutes * 60 if run.deadline else None
        )
        run = replace(
            run,
            state=state,
            updated_at=now,
            completed_at=ended,
            error_message=facts.message,
            execution_time=max(0, round(ended - began)) if began else 0,
        )
        if began:
            self._metrics.run_ended(state, ended - began)
        return Ending(run=run, running=running)

    async def lock_many(self, conn: AsyncConnection, run_ids: Sequence[str]) -> list[RunRecord]:
        """Read and row-lock ``run_ids`` in ``conn``, for ends written together (``run_end``).

        On PostgreSQL a run whose row another transaction holds is left out rather than waited
        for, so that locking several runs cannot deadlock against another writer of several
        (a batch of RUNNING writes, a lease renewal) whatever order that one locks in; the
        caller writes such a run's end on its own. A run that is gone is left out too.
        """
        query = _LOAD_MANY_LOCKED if conn.dialect.name == "postgresql" else _LOAD_MANY
        rows = (await conn.execute(query, {"run_ids": list(run_ids)})).all()
        return [RunRecord.from_row(row) for row in rows]

    async def save_many(self, conn: AsyncConnection, ended: Sequence[RunRecord]) -> None:
        """Write the ends of runs ``lock_many`` locked (one statement)."""
        if ended:
            await conn.execute(_SAVE, [_saved_values(run) for run in ended])

    async def retry(self, conn: AsyncConnection, run: RunRecord, now: float) -> RunRecord | None:
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

    async def promote_waiting(self, free_slots: int) -> Promotion:
        """Start up to ``free_slots`` WAITING runs, oldest first, whose job has room, in a
        transaction of their own (``promote``)."""
        if free_slots <= 0:
            return Promotion([], exhausted=False)
        async with self.write() as conn:
            promotion = await self.promote(conn, free_slots)
            await self.emit_many(conn, promotion.runs)
        return promotion

    async def promote(self, conn: AsyncConnection, free_slots: int) -> Promotion:
        """In ``conn``: move up to ``free_slots`` WAITING runs, oldest first, whose job has
        room, to STARTING as launched by this replica (``launched_here``). The caller appends
        their events (last: the outbox counter) and launches them.

        Only the queue's keys are read (no records decoded for runs left waiting), the jobs of
        the candidates are row-locked in name order and their runs holding a process slot
        counted once, and the chosen runs are updated and read back in one statement.

        On PostgreSQL, promotions of the same jobs (other run ends, other replicas) queue on
        those jobs' row locks, and the queue is read again once they are held: a promotion
        then sees the runs the one before it took. Runs are not read ``FOR UPDATE SKIP
        LOCKED``: a read that skips what a concurrent promotion locked sees a queue that looks
        empty while runs wait, and the slot would stay idle until the next sweep. The update
        does skip a chosen run whose row another transaction holds (a stop: a run's end locks
        its own row before job rows, so waiting for it could deadlock).
        """
        if free_slots <= 0:
            return Promotion([], exhausted=False)
        # Retries still in their backoff wait (``retries``); the housekeeping loop promotes
        # them once due. More than the slots: the head of the queue may be runs of jobs at
        # MaxConcurrentRuns (queuing), which must not keep the runs behind them from a slot.
        limit = free_slots * 4 + 16
        waiting = (await conn.execute(_WAITING, {"now": time.time(), "limit": limit})).all()
        if not waiting:
            return Promotion([], exhausted=True)
        # The jobs' row locks, in name order (as fires and admissions take them): replicas
        # promoting runs of one job at once count its running runs one after the other, so
        # queued runs (JobRunQueuingEnabled) cannot overshoot MaxConcurrentRuns between them.
        names = sorted({row.job_name for row in waiting})
        try:
            found = await registry.get_jobs(conn, names, lock=True)
        except UnreadableRowError as exc:  # pragma: no cover - get_jobs tallies bad rows
            TALLY.note(exc)
            return Promotion([], exhausted=False)
        postgres = conn.dialect.name == "postgresql"
        if postgres:
            # (On SQLite this transaction holds the database's one write lock from its start.)
            waiting = (await conn.execute(_WAITING, {"now": time.time(), "limit": limit})).all()
        running_by_job = await concurrency.count_active(conn, names, HOLDS_PROCESS_SLOT)
        chosen: list[str] = []
        exhausted = len(waiting) < limit
        for row in waiting:
            if len(chosen) >= free_slots:
                exhausted = False
                break
            if row.job_name not in running_by_job:  # a job queued since the first read
                exhausted = False
                continue
            job = found.get(row.job_name)
            definition = job.definition if job is not None and not job.deleted else None
            if not concurrency.has_room(definition, running_by_job[row.job_name]):
                continue
            running_by_job[row.job_name] += 1
            chosen.append(row.run_id)
        if not chosen:
            return Promotion([], exhausted=exhausted)
        now = time.time()
        rows = (
            await conn.execute(
                self._promote_statement_pg if postgres else self._promote_statement,
                {
                    "run_ids": chosen,
                    "now": now,
                    "owner": self.replica.replica_id,
                    "site": self.replica.site,
                },
            )
        ).all()
        promoted = await run_record.readable_runs(conn, rows)
        # Oldest first, as chosen (RETURNING promises no order).
        order = {run_id: i for i, run_id in enumerate(chosen)}
        promoted.sort(key=lambda run: order[run.run_id])
        return Promotion(promoted, exhausted=exhausted and len(rows) == len(chosen))

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
