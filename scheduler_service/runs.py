"""Runs and their state changes; every change writes its outbox event in the same transaction.

This module is the only writer of ``scheduler_runs``. Each public method is one short
transaction that reads the run, applies one transition, and appends the run's new record to
the outbox, so the catalog sees every change exactly once and in order (DESIGN invariant 2).

It also keeps run ownership between replicas (see ``leases``): a run that takes a process slot
is owned by the replica that admitted, promoted or claimed it, under a lease on the database's
clock; ``claim_runs`` takes over runs whose lease expired; ``renew_leases`` is the owner's
heartbeat; and the executor's state writes (``record_launch``, ``finish``) are fenced: they raise
``NotOwnerError`` rather than write over another replica's run.
"""

from __future__ import annotations

import enum
import functools
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from sqlalchemy import and_, bindparam, or_, select, true, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from glue.scheduler.v1 import scheduler_pb2
from glue.v1 import glue_pb2
from scheduler_service import bookmarks, bulk, concurrency, outbox, registry
from scheduler_service.bad_rows import TALLY, UnreadableRowError
from scheduler_service.leases import Replica, db_epoch
from scheduler_service.metrics import SchedulerMetrics
from scheduler_service.retries import RetryBackoff
from scheduler_service.run_states import (
    HOLDS_PROCESS_SLOT,
    TERMINAL,
    JobRunState,
    can_transition,
)
from scheduler_service.runner import is_safe_run_id
from scheduler_service.tables import runs
from servicekit.db import Database
from servicekit.errors import (
    EntityNotFoundException,
    GlueError,
    InvalidInputException,
)
from servicekit.glue_shapes import GlueDict, from_glue, pascal
from servicekit.internal_rules import MAX_RETRIES

DEFAULT_TIMEOUT_MINUTES = 2880
# Runs claimed per transaction by ``claim_runs``, and run ids per statement when renewing.
CLAIM_BATCH = 500
RENEW_CHUNK = 500
_IN_FLIGHT = [s.value for s in HOLDS_PROCESS_SLOT]

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
    owner: str | None = None
    """The replica responsible for the run while it holds a process slot (see ``leases``)."""
    lease_until: float | None = None
    """Until when the owner's claim holds (epoch seconds on the database's clock)."""
    site: str | None = None
    """Where the run was launched: its supervisor's data directory id, written with the launch
    (``RunStore.record_launch``) and never changed; None while it was never launched."""
    not_before: float | None = None
    """A WAITING retry's end of backoff (epoch seconds): it is not promoted before then."""

    @classmethod
    def from_row(cls, row: Row[Any]) -> RunRecord:
        """Decode a database row.

        Raises:
            UnreadableRowError: the record is not a JSON object, the state is unknown, or the
                run id cannot name a run directory.
        """
        try:
            if not is_safe_run_id(row.run_id):
                raise ValueError("its run id cannot name a run directory")
            record = json.loads(row.record)
            if not isinstance(record, dict):
                raise TypeError("its record is not a JSON object")
            state = JobRunState(row.state)
        except (ValueError, TypeError) as exc:
            raise UnreadableRowError("scheduler_runs", str(row.run_id), str(exc)) from None
        return cls(
            run_id=row.run_id,
            job_name=row.job_name,
            job_incarnation=row.job_incarnation,
            state=state,
            attempt=row.attempt,
            max_retries=row.max_retries,
            timeout_minutes=row.timeout_minutes,
            created_at=row.created_at,
            updated_at=row.updated_at,
            completed_at=row.completed_at,
            deadline=row.deadline,
            error_message=row.error_message,
            execution_time=row.execution_time,
            record=record,
            owner=row.owner,
            lease_until=row.lease_until,
            site=row.site,
            not_before=row.not_before,
        )

    def to_glue(self) -> GlueDict:
        """The run in Glue's JobRun form."""
        data = self.fixed_glue()
        data["JobRunState"] = self.state.value
        data["StartedOn"] = _dt(self.created_at)
        data["LastModifiedOn"] = _dt(self.updated_at)
        if self.completed_at is not None:
            data["CompletedOn"] = _dt(self.completed_at)
        if self.error_message:
            data["ErrorMessage"] = self.error_message
        if self.execution_time is not None:
            data["ExecutionTime"] = self.execution_time
        return data

    def fixed_glue(self) -> GlueDict:
        """The members of ``to_glue`` that stay as they are when a run is created: all but
        its state, timestamps, error and execution time (``RunDraft.settle`` adds those)."""
        data = {k: v for k, v in self.record.items() if not k.startswith("_")}
        data["Attempt"] = self.attempt
        return data

    def to_proto(self) -> glue_pb2.JobRun:
        """The run as a glue.v1.JobRun."""
        return job_run_proto(self.to_glue())

    @property
    def arguments(self) -> dict[str, str]:
        """The effective arguments the process gets."""
        return dict(self.record.get("Arguments", {}))

    @property
    def command(self) -> GlueDict:
        """The job's Command (Glue JobCommand form) as it was when the run was admitted."""
        return dict(self.record.get("_Command", {}))


class _Member(enum.Enum):
    """How a JobRun member's Glue value is put into the proto."""

    SCALAR = enum.auto()
    TIMESTAMP = enum.auto()
    MAP = enum.auto()
    NESTED = enum.auto()
    """Repeated or a message: left to ``from_glue``."""


def _member_kind(field: FieldDescriptor) -> _Member:
    repeated = bool(field.is_repeated)  # type: ignore[attr-defined]
    if field.type != FieldDescriptor.TYPE_MESSAGE:
        return _Member.NESTED if repeated else _Member.SCALAR
    assert field.message_type is not None
    if field.message_type.GetOptions().map_entry:
        return _Member.MAP
    if field.message_type.full_name == "google.protobuf.Timestamp" and not repeated:
        return _Member.TIMESTAMP
    return _Member.NESTED


# JobRun's members by Glue name, with how each is filled (worked out once, not per run).
_JOB_RUN_MEMBERS = {
    pascal(field.name): (field.name, _member_kind(field))
    for field in glue_pb2.JobRun.DESCRIPTOR.fields
}


def job_run_proto(data: GlueDict) -> glue_pb2.JobRun:
    """``from_glue(data, glue_pb2.JobRun)``, built faster: every run event is one of these (a
    burst of trigger fires makes thousands at once), and ``from_glue`` derives the Glue name of
    each of JobRun's 30 fields per call. This visits only the members present, looked up in a
    table made once; nested shapes (PredecessorRuns, NotificationProperty) still go through
    ``from_glue``."""
    message = glue_pb2.JobRun()
    nested: GlueDict = {}
    for key, value in data.items():
        member = _JOB_RUN_MEMBERS.get(key)
        if member is None or value is None:
            continue
        name, kind = member
        if kind is _Member.SCALAR:
            setattr(message, name, value)
        elif kind is _Member.TIMESTAMP:
            getattr(message, name).FromDatetime(value)
        elif kind is _Member.MAP:
            getattr(message, name).update({str(k): str(v) for k, v in value.items()})
        else:
            nested[key] = value
    if nested:
        message.MergeFrom(from_glue(nested, glue_pb2.JobRun))
    return message


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
class ClaimedRun:
    """An in-flight run this replica just took charge of, and who had it before."""

    run: RunRecord
    """The run as it now is (owned by this replica)."""
    previous_owner: str | None
    """The replica that owned it (None: never owned, a run from before leases existed)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LaunchRecord:
    """What ``RunStore.record_launch`` recorded."""

    run: RunRecord
    """The run as it now is."""
    launch: bool
    """Whether to start its process: False for a run stopped before it was ever launched."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Admission:
    """A StartRun to admit (``RunStore.admit_many``)."""

    registration: scheduler_pb2.JobRegistration
    """The job as the catalog holds it; stored first if newer than the scheduler's."""
    run_id: str
    """The run's id, chosen by the catalog: admitting it twice admits it once."""
    request: GlueDict
    """The StartJobRun request, in Glue form."""
    process_slot_reserved: bool
    """Whether a process slot is held for the run, so that it may start at once."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Admitted:
    """What an admission recorded (or found recorded before)."""

    event: scheduler_pb2.RunEvent
    """The run's latest event."""
    run: RunRecord
    created: bool
    """False if the run already existed (a repeated call): it must not be launched again."""


@dataclass(frozen=True, slots=True)
class NewRun:
    """A run about to be inserted, with its stored forms (``RunStore.insert_many``)."""

    run: RunRecord
    record_json: str
    """``run.record`` as stored."""
    payload: bytes
    """Its first event: ``run.to_proto()`` serialized."""


@dataclass(frozen=True, slots=True)
class RunDraft:
    """A new run worked out ahead of the transaction that creates it.

    Building a run's record, its JSON text and its first event is most of the Python work of a
    trigger fire. A draft does it once - for a burst of schedules, before they are due
    (``firing``) - and ``settle`` adds what only the creating transaction knows: the state,
    the timestamps and, for a run that cannot start, its error.
    """

    run: RunRecord
    """The run, provisionally WAITING (or ERROR) as of the draft's making."""
    record_json: str
    """``run.record`` as stored."""
    partial_payload: bytes
    """Its first event without the members ``settle`` decides (``RunRecord.fixed_glue``)."""

    @classmethod
    def of(cls, run: RunRecord) -> RunDraft:
        """A draft of ``run``."""
        partial = job_run_proto(run.fixed_glue()).SerializeToString()
        return cls(run, json.dumps(run.record, default=str), partial)

    def settle(self, state: JobRunState, now: float, error_message: str | None = None) -> NewRun:
        """The run as created at ``now`` in ``state``. A terminal state (a run that could not
        start: ERROR, FAILED) ends it at once, with ``error_message``."""
        ended = state in TERMINAL
        draft = self.run
        # The constructor, not dataclasses.replace: this runs once per run of a burst.
        run = RunRecord(
            run_id=draft.run_id,
            job_name=draft.job_name,
            job_incarnation=draft.job_incarnation,
            state=state,
            attempt=draft.attempt,
            max_retries=draft.max_retries,
            timeout_minutes=draft.timeout_minutes,
            created_at=now,
            updated_at=now,
            completed_at=now if ended else None,
            deadline=draft.deadline,
            error_message=error_message,
            execution_time=0 if ended else None,
            record=draft.record,
            owner=draft.owner,
            lease_until=draft.lease_until,
            site=draft.site,
            not_before=draft.not_before,
        )
        # Serialized messages concatenated parse as one message merged from both (protobuf's
        # wire format), so the settled members are appended to the draft's bytes instead of
        # building and serializing the whole event again.
        return NewRun(
            run,
            self.record_json,
            self.partial_payload + _settled_members(state, now, error_message),
        )


@functools.lru_cache(maxsize=16)
def _settled_members(state: JobRunState, now: float, error_message: str | None) -> bytes:
    """The members ``RunRecord.to_glue`` derives from a new run's state, timestamps and error,
    serialized. A batch's runs share one instant and mostly one state: encoded once."""
    ended = state in TERMINAL
    stamp = _dt(now)
    event = glue_pb2.JobRun(job_run_state=state.value)
    event.started_on.FromDatetime(stamp)
    event.last_modified_on.FromDatetime(stamp)
    if ended:
        event.completed_on.FromDatetime(stamp)
        event.execution_time = 0
    if error_message:
        event.error_message = error_message
    return event.SerializeToString()


def _row_values(run: RunRecord, record_json: str | None = None) -> dict[str, Any]:
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
        "record": json.dumps(run.record, default=str) if record_json is None else record_json,
        "owner": run.owner,
        "site": run.site,
        "not_before": run.not_before,
    }


# The columns of ``_row_tuple``, in its order.
_ROW_COLUMNS = (
    "run_id",
    "job_name",
    "job_incarnation",
    "state",
    "attempt",
    "max_retries",
    "timeout_minutes",
    "created_at",
    "updated_at",
    "completed_at",
    "deadline",
    "error_message",
    "execution_time",
    "record",
    "owner",
    "site",
    "not_before",
)


def _row_tuple(run: RunRecord, record_json: str) -> tuple[Any, ...]:
    """``_row_values`` as a tuple in _ROW_COLUMNS order (bulk inserts take tuples)."""
    return (
        run.run_id,
        run.job_name,
        run.job_incarnation,
        run.state.value,
        run.attempt,
        run.max_retries,
        run.timeout_minutes,
        run.created_at,
        run.updated_at,
        run.completed_at,
        run.deadline,
        run.error_message,
        run.execution_time,
        record_json,
        run.owner,
        run.site,
        run.not_before,
    )


# The statements of the per-run hot paths (admission, transitions), built once: composing a
# SQLAlchemy statement and working out its cache key costs more of the event loop than
# executing it does. Values are bound at execution.
_LOAD = select(runs).where(runs.c.run_id == bindparam("run_id"))
# On PostgreSQL a run's changes are serialised by its row lock (SQLite has one writer anyway).
_LOAD_LOCKED = _LOAD.with_for_update()
_INSERT = runs.insert()
# The SET clause is the columns given at execution (a bound name may not be a column's).
_SAVE = update(runs).where(runs.c.run_id == bindparam("saved_run_id"))
_LOAD_MANY = select(runs).where(runs.c.run_id.in_(bindparam("run_ids", expanding=True)))
_LOAD_MANY_LOCKED = _LOAD_MANY.with_for_update()


async def _readable_runs(conn: AsyncConnection, rows: Sequence[Row[Any]]) -> list[RunRecord]:
    """The runs among ``rows`` that can be read; the others are parked as ERROR with the
    reason (no event: a record that cannot be read cannot become one), so that recovery, the
    reaper and promotion neither stop on them nor pick them again."""
    found = []
    for row in rows:
        try:
            found.append(RunRecord.from_row(row))
        except UnreadableRowError as exc:
            TALLY.note(exc)
            await conn.execute(
                update(runs)
                .where(runs.c.run_id == row.run_id)
                .values(
                    state=JobRunState.ERROR.value,
                    error_message=f"The scheduler cannot read this run's row: {exc.reason}.",
                    completed_at=time.time(),
                    owner=None,
                    lease_until=None,
                )
            )
    return found


def _dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


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
        self._retry_backoff = retry_backoff or RetryBackoff()
        # Called inside the transaction that ends a run (conditional triggers hook in here);
        # returns the runs it created.
        self.on_terminal: TerminalHook | None = None
        # A run inserted with its lease taken now (built once, like the statements below).
        self._insert_leased = runs.insert().values(lease_until=self._lease_expr())

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
            rows = [_row_tuple(new.run, new.record_json) for new in others]
            await bulk.insert_rows(conn, runs, _ROW_COLUMNS, rows)
        elif others:
            await conn.execute(_INSERT, [_row_values(new.run, new.record_json) for new in others])
        self._metrics.runs_created(new.run.state for new in new_runs)
        return await outbox.append_many(
            conn, [(new.run.run_id, new.payload, new.run.job_incarnation) for new in new_runs]
        )

    # -- ownership ---------------------------------------------------------------------------

    def _lease_expr(self) -> Any:
        """SQL for a lease taken now: the database's clock plus the lease length."""
        return db_epoch() + self.replica.lease_seconds

    def _owned(self, run: RunRecord, record_json: str | None = None) -> dict[str, Any]:
        """Row values (without lease_until) for ``run`` owned by this replica (not launched:
        its site is written by ``record_launch``)."""
        owned = replace(run, owner=self.replica.replica_id, site=None)
        return _row_values(owned, record_json)

    def _fence(self, run: RunRecord) -> None:
        """Raise NotOwnerError unless this replica owns ``run`` (locked by the caller)."""
        if run.owner != self.replica.replica_id:
            raise NotOwnerError(run.run_id, run.owner)

    @property
    def single_process(self) -> bool:
        """True on SQLite, where a file lock keeps every other scheduler process away."""
        return self._db.is_sqlite

    def _takeable(
        self, now: Any, *, include_own: bool, dead_owners: Sequence[str], site_only: bool
    ) -> Any:
        """Which in-flight runs a claim may take at database time ``now`` (see ``leases``)."""
        site = self.replica.site
        here_or_unlaunched = or_(runs.c.site.is_(None), runs.c.site == site)
        takeable = or_(
            runs.c.owner.is_(None),
            runs.c.lease_until.is_(None),
            # Launched here or never launched: as soon as the lease expired.
            and_(runs.c.lease_until < now, here_or_unlaunched),
            # Launched on another site: only after a further lease period of silence, which
            # gives that site's caretaker time to take it (the orphan grace).
            runs.c.lease_until < now - self.replica.lease_seconds,
        )
        if include_own:
            takeable = or_(takeable, runs.c.owner == self.replica.replica_id)
        if dead_owners:
            # Processes of this site known to be dead: their runs at once, lease or not.
            takeable = or_(takeable, and_(runs.c.owner.in_(dead_owners), here_or_unlaunched))
        if site_only:
            takeable = and_(
                takeable,
                or_(
                    runs.c.site == site,
                    and_(runs.c.site.is_(None), runs.c.owner.in_(dead_owners)),
                ),
            )
        return takeable

    async def claim_runs(
        self,
        *,
        include_own: bool,
        include_all: bool = False,
        dead_owners: Sequence[str] = (),
        site_only: bool = False,
        limit: int = CLAIM_BATCH,
    ) -> list[ClaimedRun]:
        """Take charge of in-flight runs whose owner's lease expired (or that have no owner).

        A run launched on another site is taken only once its lease has been expired for a
        further lease period, a run of ``dead_owners`` (processes of this site known to be
        dead) at once. With ``include_own`` also this replica's own runs whatever their lease
        (a replica restarted under the same id re-adopts them at once); with ``include_all``
        every in-flight run (start-up in single-process mode, where no other owner can be
        alive); with ``site_only`` only runs launched on this site or never launched by one of
        ``dead_owners`` (a caretaker). Rows another transaction holds are skipped
        (``FOR UPDATE SKIP LOCKED``); each is taken by an update that compares the owner and
        lease that were read, so two reapers can never both take a run, and a run whose owner
        renewed its lease meanwhile is left alone. A run's site is left as it is: it says where
        its supervisor was launched. Oldest first.
        """
        me = self.replica.replica_id

        def takeable_at(now: Any) -> Any:
            if include_all:
                return true()
            return self._takeable(
                now, include_own=include_own, dead_owners=dead_owners, site_only=site_only
            )

        # A read first: almost always nothing is takeable, and the reaper of every replica asks
        # every second, so it must not take write locks (SQLite has one writer) to find that.
        async with self._db.read() as conn:
            takeable = takeable_at(db_epoch())
            any_takeable = (
                await conn.execute(
                    select(runs.c.run_id)
                    .where(runs.c.state.in_(_IN_FLIGHT))
                    .where(takeable)
                    .limit(1)
                )
            ).first()
        if any_takeable is None:
            return []
        async with self._db.transaction() as conn:
            now = float((await conn.execute(select(db_epoch()))).scalar_one())
            takeable = takeable_at(now)
            query = (
                select(runs)
                .where(runs.c.state.in_(_IN_FLIGHT))
                .where(takeable)
                .order_by(runs.c.created_at, runs.c.run_id)
                .limit(limit)
            )
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            found = await _readable_runs(conn, (await conn.execute(query)).all())
            lease_until = now + self.replica.lease_seconds
            claimed = []
            for run in found:
                result = await conn.execute(
                    update(runs)
                    .where(runs.c.run_id == run.run_id)
                    .where(runs.c.owner.is_not_distinct_from(run.owner))
                    .where(runs.c.lease_until.is_not_distinct_from(run.lease_until))
                    .values(owner=me, lease_until=lease_until)
                )
                if result.rowcount:
                    claimed.append(
                        ClaimedRun(
                            run=replace(run, owner=me, lease_until=lease_until),
                            previous_owner=run.owner,
                        )
                    )
        return claimed

    async def other_owners(self) -> list[str]:
        """The owners of in-flight runs other than this replica (candidates for
        ``SiteProcesses.dead``)."""
        async with self._db.read() as conn:
            rows = await conn.execute(
                select(runs.c.owner)
                .where(runs.c.state.in_(_IN_FLIGHT))
                .where(runs.c.owner.is_not(None))
                .where(runs.c.owner != self.replica.replica_id)
                .distinct()
            )
            return [row.owner for row in rows]

    async def renew_leases(
        self, run_ids: Sequence[str]
    ) -> dict[str, tuple[str | None, JobRunState]]:
        """The heartbeat: extend this replica's leases on ``run_ids`` (those still in flight).

        Returns each run's owner and state after the renewal, so the caller sees runs another
        replica took (owner not this replica) and runs asked to stop (STOPPING).
        """
        me = self.replica.replica_id
        seen: dict[str, tuple[str | None, JobRunState]] = {}
        ordered = sorted(run_ids)  # one lock order for every renewal: no deadlocks between them
        async with self._db.transaction() as conn:
            for start in range(0, len(ordered), RENEW_CHUNK):
                chunk = ordered[start : start + RENEW_CHUNK]
                await conn.execute(
                    update(runs)
                    .where(runs.c.run_id.in_(chunk))
                    .where(runs.c.owner == me)
                    .where(runs.c.state.in_(_IN_FLIGHT))
                    .values(lease_until=self._lease_expr())
                )
                rows = await conn.execute(
                    select(runs.c.run_id, runs.c.owner, runs.c.state).where(
                        runs.c.run_id.in_(chunk)
                    )
                )
                for row in rows:
                    seen[row.run_id] = (row.owner, JobRunState(row.state))
        return seen

    async def release_leases(self) -> int:
        """Expire this replica's leases now (graceful shutdown, a caretaker's hand-over).

        They expire at the database's current time, not at some time long past: a process of
        this site (and anyone, for a run never launched) may take them at once, while a replica
        of another site, which cannot see a launched run's supervisor, still waits out the
        orphan grace (see ``leases``). The owner stays, so a restart under the same id
        re-adopts whatever nobody took meanwhile. Returns how many runs were released.
        """
        async with self._db.transaction() as conn:
            result = await conn.execute(
                update(runs)
                .where(runs.c.owner == self.replica.replica_id)
                .where(runs.c.state.in_(_IN_FLIGHT))
                .values(lease_until=db_epoch())
            )
        return int(result.rowcount or 0)

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
            await conn.execute(_INSERT, _row_values(run))

    # -- admission ---------------------------------------------------------------------------

    async def admit_many(self, admissions: Sequence[Admission]) -> list[Admitted | GlueError]:
        """Record new runs whose jobs have room, in one transaction; idempotent by run id.

        Returns, for each admission in order, what it admitted or the error that refused it
        (EntityNotFoundException: the job was deleted; ConcurrentRunsExceededException: the job
        is at MaxConcurrentRuns and does not queue). A refused admission records nothing.
        The jobs' active runs (WAITING, STARTING, RUNNING, STOPPING) are counted under their
        row locks, taken in name order, and admissions are decided in the order given, so
        neither concurrent transactions nor a batch can overshoot MaxConcurrentRuns.
        """
        async with self.write() as conn:
            existing = await self._load_many(conn, [a.run_id for a in admissions])
            # Repeated calls (retries) get the run's latest event, as recorded.
            events = {
                run.run_id: scheduler_pb2.RunEvent(
                    sequence=await self._feed.latest_for_run(conn, run.run_id),
                    run=run.to_proto(),
                    job_incarnation=run.job_incarnation,
                )
                for run in existing.values()
            }
            fresh = [a for a in admissions if a.run_id not in existing]
            jobs = await self._lock_jobs(conn, fresh)
            active = await concurrency.count_active(conn, sorted(jobs))
            decided: list[RunRecord | GlueError] = []
            created: dict[str, RunRecord] = {}
            for admission in admissions:
                known = existing.get(admission.run_id) or created.get(admission.run_id)
                if known is not None:
                    decided.append(known)
                    continue
                outcome = self._decide(admission, jobs, active)
                if isinstance(outcome, RunRecord):
                    created[outcome.run_id] = outcome
                decided.append(outcome)
            protos = {run_id: run.to_proto() for run_id, run in created.items()}
            new_runs = [
                NewRun(run, json.dumps(run.record, default=str), protos[run_id].SerializeToString())
                for run_id, run in created.items()
            ]
            # Last: from here to the commit every other writer waits (see ``outbox``).
            sequences = await self.insert_many(conn, new_runs)
            for new, seq in zip(new_runs, sequences, strict=True):
                events[new.run.run_id] = scheduler_pb2.RunEvent(
                    sequence=seq,
                    run=protos[new.run.run_id],
                    job_incarnation=new.run.job_incarnation,
                )
        results: list[Admitted | GlueError] = []
        reported: set[str] = set()
        for outcome in decided:
            if isinstance(outcome, GlueError):
                results.append(outcome)
                continue
            # A run is new to the first admission that names it; a repeat (a retried call)
            # finds it existing, as it would in a later transaction.
            first = outcome.run_id in created and outcome.run_id not in reported
            reported.add(outcome.run_id)
            results.append(Admitted(event=events[outcome.run_id], run=outcome, created=first))
        return results

    def _decide(
        self,
        admission: Admission,
        jobs: dict[str, registry.RegisteredJob],
        active: dict[str, int],
    ) -> RunRecord | GlueError:
        """The new run an admission makes, or why it is refused; counts it in ``active``."""
        request = admission.request
        name = request["JobName"]
        job = jobs.get(name)
        if job is None or job.deleted:
            return EntityNotFoundException.job(name)
        running = active.get(name, 0)
        decision = concurrency.decide(
            job_name=name,
            job=job.definition,
            active_runs=running,
            run_queuing=request.get("JobRunQueuingEnabled"),
            free_process_slots=1 if admission.process_slot_reserved else 0,
        )
        if decision.refusal is not None:
            return decision.refusal
        active[name] = running + 1
        return self._new_run(
            run_id=admission.run_id,
            job=job,
            request=request,
            # A manual retry (StartJobRun with JobRunId) is a new run with its own retry
            # budget: Attempt 0, PreviousRunId set.
            attempt=0,
            state=(
                JobRunState.STARTING
                if decision.verdict is concurrency.Verdict.START
                else JobRunState.WAITING
            ),
        )

    async def _load_many(
        self, conn: AsyncConnection, run_ids: Sequence[str]
    ) -> dict[str, RunRecord]:
        query = _LOAD_MANY_LOCKED if conn.dialect.name == "postgresql" else _LOAD_MANY
        rows = await conn.execute(query, {"run_ids": sorted(set(run_ids))})
        return {row.run_id: RunRecord.from_row(row) for row in rows}

    async def _lock_jobs(
        self, conn: AsyncConnection, admissions: Sequence[Admission]
    ) -> dict[str, registry.RegisteredJob]:
        """The admissions' jobs, row-locked in name order, each stored first from the newest
        registration among the admissions if that is newer than the one held (its AddJob was
        lost or is still on its way). Almost always the versions match and nothing is written.
        """
        newest: dict[str, scheduler_pb2.JobRegistration] = {}
        for admission in admissions:
            name = admission.request["JobName"]
            held = newest.get(name)
            if held is None or admission.registration.version > held.version:
                newest[name] = admission.registration
        jobs = await registry.get_jobs(conn, sorted(newest), lock=True)
        stale = [
            registration
            for name, registration in sorted(newest.items())
            if registration.version
            and (name not in jobs or jobs[name].version < registration.version)
        ]
        for registration in stale:
            await registry.upsert_job(conn, registration)
        if stale:
            jobs.update(await registry.get_jobs(conn, [r.job.name for r in stale], lock=True))
        return jobs

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
            "LogGroupName": self.log_path(run_id),
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
        record["LogGroupName"] = self.log_path(retry_id)
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
            waiting = await _readable_runs(conn, (await conn.execute(query)).all())
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
                    .values(owner=run.owner, lease_until=self._lease_expr())
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
