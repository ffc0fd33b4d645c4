"""Trigger fires: schedules that came due, predicates that became true, fire-now requests.

A fire is one transaction (docs/invariants.md §4): the ledger row named by (trigger, fire key), a
run per action, each run's first outbox event, and - for schedules - the trigger's next due
time, compared against the due time that was read. The process of a run starts only after
that commit. A second attempt at the same fire (another replica, a retried call, a replay after
a crash) fails on the ledger key and starts nothing.

What a fire does with each action:
- the job exists and has room under MaxConcurrentRuns: a run (STARTING, launched by this
  replica once the fire commits, when a process slot is free, else WAITING) with TriggerName
  set, the action's Arguments over the job's defaults and its Timeout, SecurityConfiguration
  and NotificationProperty over the job's;
- the job is at MaxConcurrentRuns: a FAILED run carrying ConcurrentRunsExceededException's
  message (a direct StartJobRun would be refused instead; docs/glue-semantics.md §6);
- the job does not exist (deleted since the trigger was made): an ERROR run naming it.
The fire's other actions start regardless.

Misfires: due times missed while no scheduler ran are not replayed. If the latest missed due
time is within the grace window it fires once, and the earlier ones become one COALESCED
ledger row; otherwise they become one SKIPPED row and the trigger waits for its next due time.

Bursts: due schedules are fired in batches of up to DUE_BATCH triggers, one transaction each,
set-based: one multi-row ledger insert whose answer says which fires are new (only those get
runs), one bulk insert of runs and one of their events, one update advancing every claimed
trigger's due time (each compared against the version and due time read). Most of a fire's
cost is Python work on its runs (records, JSON, event protos), so shortly before schedules are
due the clock has their fires *drafted* (``prepare``: Quartz's acquisition window): triggers
and jobs are read - no lock taken, nothing written - and each run is built except for its
state and timestamps. At the due time the batch transaction claims the triggers as always and
uses a draft only if it was made from the trigger version and due time it claimed, and from
the job versions it locked; the runs are stamped then. Anything else is worked out there.

Conditional triggers (AND / ANY over job states): only runs that a trigger started count, as in
Glue. For each ACTIVATED conditional trigger the scheduler keeps, per watched job, the latest
terminal run since the trigger was activated, updated, or last fired. A predicate is evaluated
in the transaction that ends a run: AND fires when every condition's job's latest run is in the
condition's state, ANY when the run that just ended satisfies one. The fire is keyed by that
run, records the satisfying runs as the new runs' PredecessorRuns, and clears the observations,
so each satisfying set fires exactly once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import (
    BigInteger,
    Double,
    Text,
    and_,
    bindparam,
    column,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from glue.v1 import glue_pb2
from glue_vocabulary import log_groups
from glue_vocabulary.cron import parse_schedule
from glue_vocabulary.run_states import JobRunState
from glue_vocabulary.shapes import GlueDict
from scheduler_service import bulk, concurrency, registry
from scheduler_service.bad_rows import TALLY, UnreadableRowError
from scheduler_service.metrics import SchedulerMetrics
from scheduler_service.run_record import NewRun, RunDraft, RunRecord
from scheduler_service.runs import RunStore
from scheduler_service.slots import ProcessSlots
from scheduler_service.tables import jobs, trigger_fires, trigger_observations, triggers
from servicekit.db import Database
from servicekit.errors import EntityNotFoundException, InvalidInputException

log = logging.getLogger(__name__)

# Due triggers fired per transaction. Larger batches spread each statement's fixed cost over
# more fires but hold their locks longer and leave less for a second batch in flight to
# overlap. For a 10,000 burst with two in flight, the last fire committed about as soon with
# 2,000 to 5,000 and later with 1,000 or 500.
DUE_BATCH = 2000
# At most this many fires are drafted ahead: drafts are held in memory until fired, ~4 KB
# each (10,000 added ~40 MB of RSS, measured); further due triggers are worked out when due.
PREPARE_LIMIT = 10_000
# Drafting yields to the event loop after this many triggers (the server keeps answering).
PREPARE_CHUNK = 500
# Missed due times counted one by one at most this far; beyond it the ledger says "at least".
MISSED_COUNT_LIMIT = 100_000

# Advancing claimed triggers' due times on PostgreSQL: one statement whatever the batch size,
# the values travel as four arrays. Each row compares the version and due time that were read.
_CLAIMED = (
    func.unnest(
        bindparam("names", type_=postgresql.ARRAY(Text)),
        bindparam("versions", type_=postgresql.ARRAY(BigInteger)),
        bindparam("dues", type_=postgresql.ARRAY(Double)),
        bindparam("followings", type_=postgresql.ARRAY(Double)),
    )
    .table_valued(
        column("name", Text),
        column("version", BigInteger),
        column("due", Double),
        column("following", Double),
    )
    .render_derived(name="claimed")
)
_ADVANCE_POSTGRESQL = (
    update(triggers)
    .where(triggers.c.name == _CLAIMED.c.name)
    .where(triggers.c.version == _CLAIMED.c.version)
    .where(triggers.c.next_fire_at == _CLAIMED.c.due)
    .values(next_fire_at=_CLAIMED.c.following)
)
# The same on SQLite (in-process: no round trips to save), executed once per row.
_ADVANCE_ONE = (
    update(triggers)
    .where(triggers.c.name == bindparam("b_name"))
    .where(triggers.c.version == bindparam("b_version"))
    .where(triggers.c.next_fire_at == bindparam("b_due"))
    .values(next_fire_at=bindparam("b_following"))
)


class _Step(NamedTuple):
    """One due time of a schedule, worked out at one instant (see module docstring)."""

    fire_at: float | None
    """The due time that fires now; None: none is within the misfire grace."""
    fire_key: str | None
    """The ledger key of that fire (None when nothing fires)."""
    missed: int
    """Earlier due times not replayed, recorded as one COALESCED (or SKIPPED) ledger row."""
    following: float | None
    """The schedule's next due time once this one is handled (None: never again)."""


JobKey = tuple[int, str] | None
"""Which state of a job a run was drafted from: (version, incarnation); None: no such job."""


def _job_key(job: registry.RegisteredJob | None) -> JobKey:
    return None if job is None or job.deleted else (job.version, job.incarnation)


@dataclass(frozen=True, slots=True)
class _ActionRun:
    """The run one action of a fire creates, drafted from one state of its job."""

    job_name: str
    job_key: JobKey
    draft: RunDraft


@dataclass(frozen=True, slots=True)
class _ScheduledFire:
    """What one claimed due trigger does in a tick, decided before anything is written."""

    trigger: registry.RegisteredTrigger
    step: _Step
    run_ids: list[str]
    """One per job action if it fires: they go into the ledger row before the runs exist."""
    run_ids_json: str
    """``run_ids`` as the ledger stores them."""
    drafts: list[_ActionRun] | None = None
    """Its runs, drafted ahead (``prepare``); None: drafted in the firing transaction."""

    @property
    def due(self) -> float:
        """The due time that was read (the claim compares it)."""
        assert self.trigger.next_fire_at is not None
        return self.trigger.next_fire_at


@dataclass
class _JobSlots:
    """Jobs and their in-flight run counts for one fire transaction (loaded once, updated)."""

    jobs: dict[str, registry.RegisteredJob | None]
    active: dict[str, int]


def _dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def fire_to_proto(row: Any) -> glue_pb2.TriggerFire:
    """A ledger row as a glue.v1.TriggerFire."""
    fire = glue_pb2.TriggerFire(
        trigger_name=row.trigger_name,
        outcome=row.outcome,
        reason=row.reason,
        run_ids=json.loads(row.run_ids),
        due_times=row.due_times,
    )
    fire.scheduled_at.FromDatetime(_dt(row.scheduled_at))
    fire.recorded_at.FromDatetime(_dt(row.recorded_at))
    return fire


class Firing:
    """Fires triggers; the only writer of the fire ledger and of conditional observations."""

    def __init__(
        self,
        db: Database,
        store: RunStore,
        *,
        misfire_grace_seconds: float,
        slots: ProcessSlots,
        batch_size: int = DUE_BATCH,
        metrics: SchedulerMetrics | None = None,
    ) -> None:
        self._db = db
        self._metrics = metrics or SchedulerMetrics()
        # Due triggers fired per transaction at most.
        self.batch_size = batch_size
        self._store = store
        self._grace = misfire_grace_seconds
        # The replica's process slots: a fire's runs start at once while some are free.
        self._slots = slots
        # Fires drafted ahead by ``prepare``, by trigger name; taken by the tick that claims
        # the trigger.
        self._prepared: dict[str, _ScheduledFire] = {}
        # No draft is for an earlier due time (None: no drafts).
        self._earliest_draft: float | None = None

    # -- shared ------------------------------------------------------------------------------

    async def _read_jobs(
        self, conn: AsyncConnection, names: set[str], *, lock: bool
    ) -> dict[str, registry.RegisteredJob | None]:
        """The jobs ``names`` (None for those never registered); ``lock`` takes their rows'
        locks, in name order."""
        ordered = sorted(names)
        found: dict[str, registry.RegisteredJob | None] = dict.fromkeys(ordered)
        for start in range(0, len(ordered), 500):
            query = (
                select(jobs)
                .where(jobs.c.name.in_(ordered[start : start + 500]))
                .order_by(jobs.c.name)
            )
            if lock and conn.dialect.name == "postgresql":
                query = query.with_for_update()
            # A job whose row cannot be read counts as never registered (logged once).
            for job in TALLY.decode(await conn.execute(query), registry.registered_job):
                found[job.name] = job
        return found

    async def _load_jobs(self, conn: AsyncConnection, names: set[str]) -> _JobSlots:
        """The jobs named by a batch of actions, locked, with their in-flight run counts."""
        # Same lock StartJobRun takes: admissions and fires cannot overshoot the limit.
        found = await self._read_jobs(conn, names, lock=True)
        active = await concurrency.count_active(conn, list(found))
        return _JobSlots(jobs=found, active=active)

    def _draft_runs(
        self,
        trigger: registry.RegisteredTrigger,
        run_ids: Sequence[str],
        jobs_by_name: Mapping[str, registry.RegisteredJob | None],
        predecessors: Sequence[tuple[str, str]] = (),
    ) -> list[_ActionRun]:
        """One run per job action, named by ``run_ids`` in order, built from the jobs as
        given; an action whose job does not exist gets an ERROR run (module docstring)."""
        now = time.time()
        drafted = []
        for action, run_id in zip(_job_actions(trigger), run_ids, strict=True):
            name = action["JobName"]
            request: GlueDict = {
                "JobName": name,
                "TriggerName": trigger.name,
                "Arguments": action.get("Arguments", {}),
            }
            for key in ("Timeout", "SecurityConfiguration", "NotificationProperty"):
                if action.get(key) is not None:
                    request[key] = action[key]
            if predecessors:
                request["PredecessorRuns"] = [
                    {"JobName": job, "RunId": run} for job, run in predecessors
                ]
            job = jobs_by_name.get(name)
            if job is None or job.deleted:
                run = self._error_run(run_id, name, trigger.name, request, now)
            else:
                run = self._store.new_run(
                    run_id=run_id, job=job, request=request, state=JobRunState.WAITING
                )
            drafted.append(_ActionRun(name, _job_key(job), RunDraft.of(run)))
        return drafted

    def _admit(
        self, action: _ActionRun, slots: _JobSlots, free_slots: list[int], now: float
    ) -> NewRun:
        """Settle a drafted run in the state its job allows now (see module docstring). Takes a
        job slot from ``slots`` and a process slot from ``free_slots`` if it starts."""
        name, draft = action.job_name, action.draft
        job = slots.jobs.get(name)
        if job is None or job.deleted:
            return draft.settle(JobRunState.ERROR, now, draft.run.error_message)
        # A fire gives no run-level JobRunQueuingEnabled: the job's applies.
        decision = concurrency.decide(
            job_name=name,
            job=job.definition,
            active_runs=slots.active[name],
            run_queuing=None,
            free_process_slots=free_slots[0],
        )
        if decision.refusal is not None:
            # The exception's AWS text (docs/glue-fidelity.md); AWS's ErrorMessage for a
            # trigger-started run refused this way is not known.
            return draft.settle(JobRunState.FAILED, now, concurrency.refusal_text(decision.refusal))
        slots.active[name] += 1
        if decision.verdict is concurrency.Verdict.START:
            free_slots[0] -= 1
            # This replica launches it once the fire commits: the launch is recorded with it.
            new = draft.settle(JobRunState.STARTING, now)
            return NewRun(self._store.launched_here(new.run, now), new.record_json, new.payload)
        return draft.settle(JobRunState.WAITING, now)

    def _plan_runs(
        self,
        trigger: registry.RegisteredTrigger,
        run_ids: Sequence[str],
        slots: _JobSlots,
        free_slots: list[int],
        now: float,
        drafts: Sequence[_ActionRun] | None = None,
        predecessors: Sequence[tuple[str, str]] = (),
    ) -> list[NewRun]:
        """A fire's runs, created at ``now``. ``drafts`` made from other versions of the jobs
        than the locked ones in ``slots`` are not used: the runs are drafted again."""
        if drafts is None or any(_job_key(slots.jobs.get(d.job_name)) != d.job_key for d in drafts):
            drafts = self._draft_runs(trigger, run_ids, slots.jobs, predecessors)
        return [self._admit(action, slots, free_slots, now) for action in drafts]

    def _error_run(
        self, run_id: str, job_name: str, trigger_name: str, request: GlueDict, now: float
    ) -> RunRecord:
        record: GlueDict = {
            "Id": run_id,
            "JobName": job_name,
            "TriggerName": trigger_name,
            "Arguments": dict(request.get("Arguments", {})),
            # The job may be gone: Glue's default group prefix (Spark's).
            "LogGroupName": log_groups.SPARK_GROUP_PREFIX,
        }
        if request.get("PredecessorRuns"):
            record["PredecessorRuns"] = request["PredecessorRuns"]
        return RunRecord(
            run_id=run_id,
            job_name=job_name,
            job_incarnation="",
            state=JobRunState.ERROR,
            attempt=0,
            max_retries=0,
            timeout_minutes=int(request.get("Timeout") or 0) or 2880,
            created_at=now,
            updated_at=now,
            completed_at=now,
            deadline=None,
            error_message=(
                f"Job {job_name} does not exist (it was deleted or never created); trigger "
                f"{trigger_name} could not start it."
            ),
            execution_time=0,
            record=record,
        )

    async def _insert_fires(
        self, conn: AsyncConnection, rows: Sequence[tuple[Any, ...]]
    ) -> set[tuple[Any, ...]]:
        """Write ledger rows (see ``_ledger_row``); returns the (trigger, fire key) of those
        that are new. A fire already recorded (by another replica, an earlier attempt) is not
        in the answer: nothing of it may be created again."""
        return await bulk.insert_new(
            conn, trigger_fires, _LEDGER_COLUMNS, rows, ("trigger_name", "fire_key")
        )

    async def _fire(
        self,
        conn: AsyncConnection,
        trigger: registry.RegisteredTrigger,
        slots: _JobSlots,
        *,
        fire_key: str,
        scheduled_at: float,
        reason: str,
        free_slots: list[int],
        predecessors: Sequence[tuple[str, str]] = (),
    ) -> list[RunRecord] | None:
        """Record one fire and create its runs; None if this fire already happened."""
        run_ids = _new_run_ids(trigger)
        row = _ledger_row(
            trigger.name,
            fire_key,
            scheduled_at=scheduled_at,
            outcome="FIRED",
            reason=reason,
            run_ids_json=json.dumps(run_ids),
        )
        if not await self._insert_fires(conn, [row]):
            return None
        self._metrics.fired(trigger.type, "FIRED")
        planned = self._plan_runs(
            trigger, run_ids, slots, free_slots, time.time(), predecessors=predecessors
        )
        await self._store.insert_many(conn, planned)
        return [new.run for new in planned]

    # -- schedules ---------------------------------------------------------------------------

    async def fire_due(self, now: float) -> tuple[int, list[RunRecord]]:
        """Fire (or skip) due SCHEDULED triggers, up to one batch, in one transaction.

        Several may run at once on PostgreSQL (each claims other triggers): everything up to
        the job locks overlaps the other batch's work, and the job locks order the rest.
        Returns how many triggers were handled and the runs created (STARTING ones hold a
        process slot and must be launched by the caller).
        """
        reserved = 0
        free = [0]
        created: list[NewRun] = []
        created_at = time.time()
        try:
            async with self._store.write() as conn:
                rows = await self._claim_due(conn, now)
                if not rows:
                    return 0, []
                fires = await self._scheduled_fires(conn, rows, now)
                if not fires:
                    return len(rows), []  # every claimed row was unreadable (now parked)
                new = await self._insert_fires(
                    conn, [row for f in fires for row in self._ledger_rows(f)]
                )
                await self._advance(conn, fires)
                fired = [f for f in fires if (f.trigger.name, f.step.fire_key) in new]
                # The jobs' locks (StartJobRun takes them too), held to the commit: counted
                # in-flight runs cannot change before this batch's runs are in.
                slots = await self._load_jobs(
                    conn, {a["JobName"] for f in fired for a in _job_actions(f.trigger)}
                )
                # Process slots for the runs about to start (the rest will wait in WAITING).
                reserved = self._slots.reserve(sum(len(f.run_ids) for f in fired))
                free[0] = reserved
                # The batch's runs are created now, in this transaction: one instant for all.
                created_at = time.time()
                for fire in fired:
                    created.extend(
                        self._plan_runs(
                            fire.trigger, fire.run_ids, slots, free, created_at, fire.drafts
                        )
                    )
                # Last: the outbox's counter row stays locked until commit.
                await self._store.insert_many(conn, created)
        except BaseException as exc:
            self._slots.release(reserved)
            if isinstance(exc, Exception):
                self._metrics.fired("SCHEDULED", "failed")
            raise
        self._slots.release(free[0])
        self._metrics.scheduled_fires(
            [
                (f.step.fire_at, f.step.missed, (f.trigger.name, f.step.fire_key) in new)
                for f in fires
            ],
            created_at,
        )
        return len(rows), [new.run for new in created]

    async def _claim_due(self, conn: AsyncConnection, now: float) -> Sequence[Row[str, int, float]]:
        """The name, version and due time of up to ``batch_size`` triggers due by ``now``,
        earliest first; on PostgreSQL row-locked, skipping rows another replica holds (it is
        firing them)."""
        query = (
            select(triggers.c.name, triggers.c.version, triggers.c.next_fire_at)
            .where(triggers.c.next_fire_at <= now)
            .where(triggers.c.state == "ACTIVATED")
            .where(triggers.c.deleted.is_(False))
            .order_by(triggers.c.next_fire_at)
            .limit(self.batch_size)
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        return (await conn.execute(query)).all()

    async def _scheduled_fires(
        self, conn: AsyncConnection, claimed: Sequence[Row[str, int, float]], now: float
    ) -> list[_ScheduledFire]:
        """What each claimed trigger does now: its drafted fire if that was made from the
        version and due time claimed and fires the same way now (it is not a misfire),
        otherwise worked out here from the trigger's row."""
        step_of = self._steps_at(now)
        fires = []
        undrafted = []
        for row in claimed:
            prepared = self._prepared.pop(row.name, None)
            if (
                prepared is not None
                and prepared.trigger.version == row.version
                and prepared.due == row.next_fire_at
                and prepared.step == step_of(prepared.trigger)
            ):
                fires.append(prepared)
            else:
                undrafted.append(row.name)
        for start in range(0, len(undrafted), 500):
            rows = await conn.execute(
                select(triggers).where(triggers.c.name.in_(undrafted[start : start + 500]))
            )
            for full_row in rows:
                try:
                    trigger = registry.RegisteredTrigger.from_row(full_row)
                except UnreadableRowError as exc:
                    # Parked: no due time, so the clock stops claiming it; a newer
                    # registration from the catalog replaces the row.
                    TALLY.note(exc)
                    await conn.execute(
                        update(triggers)
                        .where(triggers.c.name == full_row.name)
                        .values(next_fire_at=None)
                    )
                    continue
                step = step_of(trigger)
                run_ids = _new_run_ids(trigger) if step.fire_key is not None else []
                fires.append(_ScheduledFire(trigger, step, run_ids, json.dumps(run_ids)))
        return fires

    def _step(self, schedule_text: str, due: float, now: float) -> _Step:
        """Misfire arithmetic for one due time of a schedule (see module docstring)."""
        schedule = parse_schedule(schedule_text)
        following = _next(schedule, due)
        if following is None or following > now:
            if now - due <= self._grace:
                return _Step(due, registry.fire_key_for_instant(due), 0, following)
            return _Step(None, None, 1, following)
        # Several due times passed unfired (the scheduler was down): the latest one within
        # the grace window fires, the rest are recorded, not replayed.
        latest = _next(schedule, now - self._grace - 1e-6)
        if latest is not None and latest > now:
            latest = None
        while latest is not None:
            later = _next(schedule, latest)
            if later is None or later > now:
                break
            latest = later
        missed = _count_between(schedule, due, latest if latest is not None else now)
        if latest is None:
            return _Step(None, None, missed, _next(schedule, now))
        return _Step(latest, registry.fire_key_for_instant(latest), missed, _next(schedule, latest))

    def _steps_at(self, now: float) -> Callable[[registry.RegisteredTrigger], _Step]:
        """``_step`` of a trigger's due time at ``now``, memoised: the triggers of a burst
        share a schedule and a due time, and so one computation."""
        known: dict[tuple[str, float], _Step] = {}

        def step_of(trigger: registry.RegisteredTrigger) -> _Step:
            assert trigger.next_fire_at is not None
            key = (trigger.definition["Schedule"], trigger.next_fire_at)
            step = known.get(key)
            if step is None:
                step = known[key] = self._step(*key, now)
            return step

        return step_of

    def _ledger_rows(self, fire: _ScheduledFire) -> list[tuple[Any, ...]]:
        """The ledger rows of one due schedule: its misfires as one row, then its fire (each
        stamped as it is made, so the ledger lists the fire as the newer)."""
        trigger, due, step = fire.trigger.name, fire.due, fire.step
        if step.fire_at is None:
            return [
                _misfire_row(
                    trigger,
                    due,
                    step.missed,
                    "SKIPPED",
                    f", none within the misfire grace of {self._grace:g} s; "
                    "the trigger waits for its next due time",
                )
            ]
        assert step.fire_key is not None
        rows = []
        if step.missed:
            rows.append(
                _misfire_row(
                    trigger,
                    due,
                    step.missed,
                    "COALESCED",
                    f"; folded into the fire at {_iso(step.fire_at)}",
                )
            )
        rows.append(
            _ledger_row(
                trigger,
                step.fire_key,
                scheduled_at=step.fire_at,
                outcome="FIRED",
                reason="schedule",
                run_ids_json=fire.run_ids_json,
            )
        )
        return rows

    async def _advance(self, conn: AsyncConnection, fires: Sequence[_ScheduledFire]) -> None:
        """Move every claimed trigger's due time on, each compared against the version and due
        time that were read (docs/invariants.md §4: a claim compares the exact fire time)."""
        if conn.dialect.name == "postgresql":
            result = await conn.execute(
                _ADVANCE_POSTGRESQL,
                {
                    "names": [f.trigger.name for f in fires],
                    "versions": [f.trigger.version for f in fires],
                    "dues": [f.due for f in fires],
                    "followings": [f.step.following for f in fires],
                },
            )
        else:
            result = await conn.execute(
                _ADVANCE_ONE,
                [
                    {
                        "b_name": f.trigger.name,
                        "b_version": f.trigger.version,
                        "b_due": f.due,
                        "b_following": f.step.following,
                    }
                    for f in fires
                ],
            )
        if result.rowcount != len(fires):
            raise RuntimeError(
                f"{len(fires) - result.rowcount} of {len(fires)} triggers changed while "
                "firing; retrying the batch"
            )

    async def prepare(self, until: float) -> int:
        """Draft the fires of the schedules due by ``until`` (a future instant), for the ticks
        that will claim them (see module docstring). Only reads: no lock is taken and nothing
        is written, so a draft is a guess that the claiming transaction checks. Stops drafting
        when ``until`` comes. Returns how many fires were drafted.
        """
        self.forget_drafts(time.time())
        room = PREPARE_LIMIT - len(self._prepared)
        async with self._db.read() as conn:
            rows = (
                await conn.execute(
                    select(triggers)
                    .where(triggers.c.next_fire_at <= until)
                    .where(triggers.c.state == "ACTIVATED")
                    .where(triggers.c.deleted.is_(False))
                    .order_by(triggers.c.next_fire_at, triggers.c.name)
                    .limit(PREPARE_LIMIT)
                )
            ).all()
            due: list[registry.RegisteredTrigger] = []
            for start in range(0, len(rows), PREPARE_CHUNK):
                due.extend(
                    TALLY.decode(
                        (
                            row
                            for row in rows[start : start + PREPARE_CHUNK]
                            if not self._is_prepared(row.name, row.version, row.next_fire_at)
                        ),
                        registry.RegisteredTrigger.from_row,
                    )
                )
                await asyncio.sleep(0)  # the server answers calls between chunks
            del due[max(room, 0) :]
            names = {a["JobName"] for trigger in due for a in _job_actions(trigger)}
            jobs_by_name = await self._read_jobs(conn, names, lock=False)
        drafted = 0
        # As each fires if claimed at its due time (the claiming tick checks that it does).
        on_time: dict[tuple[str, float], _Step] = {}
        for start in range(0, len(due), PREPARE_CHUNK):
            if time.time() >= until:
                break
            for trigger in due[start : start + PREPARE_CHUNK]:
                assert trigger.next_fire_at is not None
                key = (trigger.definition["Schedule"], trigger.next_fire_at)
                step = on_time.get(key)
                if step is None:
                    step = on_time[key] = self._step(*key, trigger.next_fire_at)
                if step.fire_key is None:
                    continue
                run_ids = _new_run_ids(trigger)
                drafts = self._draft_runs(trigger, run_ids, jobs_by_name)
                self._prepared[trigger.name] = _ScheduledFire(
                    trigger, step, run_ids, json.dumps(run_ids), drafts
                )
                if self._earliest_draft is None or trigger.next_fire_at < self._earliest_draft:
                    self._earliest_draft = trigger.next_fire_at
                drafted += 1
            await asyncio.sleep(0)
        return drafted

    def _is_prepared(self, name: str, version: int, due: float | None) -> bool:
        prepared = self._prepared.get(name)
        return prepared is not None and prepared.trigger.version == version and prepared.due == due

    def forget_drafts(self, until: float) -> int:
        """Drop the drafts for due times up to ``until``: once nothing due is left to fire,
        those triggers were changed, stopped or fired by another replica. Returns how many."""
        if self._earliest_draft is None or self._earliest_draft > until:
            return 0  # cheap: the clock asks every time it finds nothing due
        stale = [name for name, fire in self._prepared.items() if fire.due <= until]
        for name in stale:
            del self._prepared[name]
        self._earliest_draft = min((fire.due for fire in self._prepared.values()), default=None)
        return len(stale)

    async def next_due(self) -> float | None:
        """The earliest due time of any ACTIVATED scheduled trigger."""
        async with self._db.read() as conn:
            value = (
                await conn.execute(
                    select(func.min(triggers.c.next_fire_at))
                    .where(triggers.c.state == "ACTIVATED")
                    .where(triggers.c.deleted.is_(False))
                )
            ).scalar()
        return float(value) if value is not None else None

    # -- fire now ----------------------------------------------------------------------------

    async def fire_now(
        self, name: str, fire_id: str, reason: str
    ) -> tuple[glue_pb2.TriggerFire, list[RunRecord]]:
        """Fire a trigger's actions once, now (idempotent by ``fire_id``).

        Raises:
            EntityNotFoundException: no such trigger.
            InvalidInputException: an EVENT trigger (nothing here fires those).
        """
        key = "fire:" + fire_id
        reserved = 0
        free = [0]
        created: list[RunRecord] = []
        try:
            async with self._store.write() as conn:
                trigger = await registry.get_trigger(conn, name, lock=True)
                if trigger is None or trigger.deleted:
                    raise EntityNotFoundException.trigger(name)
                if trigger.type == "EVENT":
                    raise InvalidInputException(
                        f"Trigger {name} is an EVENT trigger: nothing fires it here."
                    )
                names = {
                    a["JobName"] for a in trigger.definition.get("Actions", []) if a.get("JobName")
                }
                slots = await self._load_jobs(conn, names)
                fired = await self._fire(
                    conn,
                    trigger,
                    slots,
                    fire_key=key,
                    scheduled_at=time.time(),
                    reason=reason,
                    free_slots=free,
                )
                created = fired or []
                row = (
                    await conn.execute(
                        select(trigger_fires).where(
                            and_(
                                trigger_fires.c.trigger_name == name,
                                trigger_fires.c.fire_key == key,
                            )
                        )
                    )
                ).one()
        except BaseException:
            self._slots.release(reserved)
            raise
        self._slots.release(free[0])
        return fire_to_proto(row), created

    async def list_fires(self, name: str, limit: int) -> list[glue_pb2.TriggerFire]:
        """A trigger's ledger, newest first."""
        async with self._db.read() as conn:
            rows = await conn.execute(
                select(trigger_fires)
                .where(trigger_fires.c.trigger_name == name)
                .order_by(trigger_fires.c.recorded_at.desc(), trigger_fires.c.fire_key.desc())
                .limit(limit)
            )
            return [fire_to_proto(r) for r in rows]

    # -- conditions --------------------------------------------------------------------------

    async def on_run_terminal(self, conn: AsyncConnection, run: RunRecord) -> list[RunRecord]:
        """Evaluate conditional triggers watching ``run``'s job (inside the run's final txn)."""
        if not run.record.get("TriggerName"):
            return []  # Glue: only runs a trigger started count.
        rows = await conn.execute(
            select(triggers)
            .where(triggers.c.type == "CONDITIONAL")
            .where(triggers.c.state == "ACTIVATED")
            .where(triggers.c.deleted.is_(False))
        )
        created: list[RunRecord] = []
        for trigger in TALLY.decode(rows.all(), registry.RegisteredTrigger.from_row):
            conditions = trigger.definition.get("Predicate", {}).get("Conditions", [])
            if not any(c.get("JobName") == run.job_name for c in conditions):
                continue
            fired = await self._observe(conn, trigger, conditions, run)
            created.extend(fired)
        return created

    async def _observe(
        self,
        conn: AsyncConnection,
        trigger: registry.RegisteredTrigger,
        conditions: list[GlueDict],
        run: RunRecord,
    ) -> list[RunRecord]:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(trigger_observations).values(
            trigger_name=trigger.name,
            job_name=run.job_name,
            run_id=run.run_id,
            state=run.state.value,
            observed_at=time.time(),
        )
        await conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[
                    trigger_observations.c.trigger_name,
                    trigger_observations.c.job_name,
                ],
                set_={
                    "run_id": stmt.excluded.run_id,
                    "state": stmt.excluded.state,
                    "observed_at": stmt.excluded.observed_at,
                },
            )
        )
        observed = {
            r.job_name: (r.run_id, r.state)
            for r in await conn.execute(
                select(trigger_observations).where(
                    trigger_observations.c.trigger_name == trigger.name
                )
            )
        }
        logical = trigger.definition.get("Predicate", {}).get("Logical", "AND")

        def holds(condition: GlueDict) -> bool:
            seen = observed.get(condition.get("JobName", ""))
            return seen is not None and seen[1] == condition.get("State")

        if logical == "ANY":
            satisfied = [
                c
                for c in conditions
                if c.get("JobName") == run.job_name and c.get("State") == run.state.value
            ]
        else:
            satisfied = conditions if all(holds(c) for c in conditions) else []
        if not satisfied:
            return []
        predecessors = sorted({(c["JobName"], observed[c["JobName"]][0]) for c in satisfied})
        names = {a["JobName"] for a in trigger.definition.get("Actions", []) if a.get("JobName")}
        slots = await self._load_jobs(conn, names)
        fired = await self._fire(
            conn,
            trigger,
            slots,
            fire_key="after:" + run.run_id,
            scheduled_at=time.time(),
            reason="predicate satisfied by " + ", ".join(f"{j} {r}" for j, r in predecessors),
            # Runs a predicate starts queue for a slot; the executor promotes them at once.
            free_slots=[0],
            predecessors=predecessors,
        )
        await conn.execute(
            delete(trigger_observations).where(trigger_observations.c.trigger_name == trigger.name)
        )
        return fired or []


def _job_actions(trigger: registry.RegisteredTrigger) -> list[GlueDict]:
    """The actions that start a job (each makes one run when the trigger fires)."""
    return [a for a in trigger.definition.get("Actions", []) if a.get("JobName")]


def _new_run_ids(trigger: registry.RegisteredTrigger) -> list[str]:
    """Fresh run ids for a fire of ``trigger``, one per job action."""
    return ["jr_" + secrets.token_hex(32) for _ in _job_actions(trigger)]


# The columns of ``_ledger_row``, in its order.
_LEDGER_COLUMNS = (
    "trigger_name",
    "fire_key",
    "scheduled_at",
    "recorded_at",
    "outcome",
    "reason",
    "run_ids",
    "due_times",
)


def _ledger_row(
    trigger_name: str,
    fire_key: str,
    *,
    scheduled_at: float,
    outcome: str,
    reason: str,
    run_ids_json: str = "[]",
    due_times: int = 1,
) -> tuple[Any, ...]:
    """One ``trigger_fires`` row, recorded now (values in _LEDGER_COLUMNS order)."""
    return (
        trigger_name,
        fire_key,
        scheduled_at,
        time.time(),
        outcome,
        reason,
        run_ids_json,
        due_times,
    )


def _misfire_row(
    trigger_name: str, due: float, missed: int, outcome: str, then: str
) -> tuple[Any, ...]:
    """The one ledger row of the due times from ``due`` that did not fire: SKIPPED or
    COALESCED, keyed by its outcome and first due time; ``then`` ends the reason with what
    became of them."""
    return _ledger_row(
        trigger_name,
        f"{outcome.lower()}:{registry.fire_key_for_instant(due)}",
        scheduled_at=due,
        outcome=outcome,
        reason=(
            f"{_count(missed)} due time(s) from {_iso(due)} were missed while "
            f"no scheduler ran{then}"
        ),
        due_times=missed,
    )


def _next(schedule: Any, after: float) -> float | None:
    following = schedule.next_fire_after(_dt(after))
    return following.timestamp() if following is not None else None


def _count_between(schedule: Any, first: float, end: float) -> int:
    """How many due times lie in [first, end), counting at most MISSED_COUNT_LIMIT."""
    count, current = 0, first
    while current < end and count < MISSED_COUNT_LIMIT:
        count += 1
        following = _next(schedule, current)
        if following is None:
            break
        current = following
    return count


def _iso(epoch: float) -> str:
    return _dt(epoch).strftime("%Y-%m-%dT%H:%M:%SZ")


def _count(n: int) -> str:
    return f"at least {n}" if n >= MISSED_COUNT_LIMIT else str(n)
