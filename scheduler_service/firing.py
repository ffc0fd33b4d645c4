"""Trigger fires: schedules that came due, predicates that became true, fire-now requests.

A fire is one transaction (DESIGN invariant 4): the ledger row named by (trigger, fire key), a
run per action, each run's first outbox event, and - for schedules - the trigger's next due
time, compared against the due time that was read. The process of a run starts only after
that commit. A second attempt at the same fire (another replica, a retried call, a replay after
a crash) fails on the ledger key and starts nothing.

What a fire does with each action:
- the job exists and has room under MaxConcurrentRuns: a run (STARTING when a process slot is
  free, else WAITING) with TriggerName set, the action's Arguments over the job's defaults and
  its Timeout, SecurityConfiguration and NotificationProperty over the job's;
- the job is at MaxConcurrentRuns: a FAILED run carrying ConcurrentRunsExceededException's
  message (a direct StartJobRun would be refused instead; ORIGIN.md);
- the job does not exist (deleted since the trigger was made): an ERROR run naming it.
The fire's other actions start regardless.

Misfires: due times missed while no scheduler ran are not replayed. If the latest missed due
time is within the grace window it fires once, and the earlier ones become one COALESCED
ledger row; otherwise they become one SKIPPED row and the trigger waits for its next due time.

Conditional triggers (AND / ANY over job states): only runs that a trigger started count, as in
Glue. For each ACTIVATED conditional trigger the scheduler keeps, per watched job, the latest
terminal run since the trigger was activated, updated, or last fired. A predicate is evaluated
in the transaction that ends a run: AND fires when every condition's job's latest run is in the
condition's state, ANY when the run that just ended satisfies one. The fire is keyed by that
run, records the satisfying runs as the new runs' PredecessorRuns, and clears the observations,
so each satisfying set fires exactly once.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from glue.v1 import glue_pb2
from scheduler_service import registry
from scheduler_service.run_states import HOLDS_JOB_SLOT, JobRunState
from scheduler_service.runs import RunRecord, RunStore, max_concurrent_runs
from scheduler_service.tables import jobs, runs, trigger_fires, trigger_observations, triggers
from servicekit.cron import parse_schedule
from servicekit.db import Database
from servicekit.errors import EntityNotFoundException, InvalidInputException
from servicekit.glue_shapes import GlueDict

log = logging.getLogger(__name__)

DUE_BATCH = 500
# Missed due times counted one by one at most this far; beyond it the ledger says "at least".
MISSED_COUNT_LIMIT = 100_000


@dataclass
class FirePlan:
    """What one trigger's fire will create, decided before anything is written."""

    runs: list[RunRecord] = field(default_factory=list)


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
        reserve_slots: Callable[[int], int],
        release_slots: Callable[[int], None],
    ) -> None:
        self._db = db
        self._store = store
        self._grace = misfire_grace_seconds
        self._reserve = reserve_slots
        self._release = release_slots

    # -- shared ------------------------------------------------------------------------------

    async def _load_jobs(self, conn: AsyncConnection, names: set[str]) -> _JobSlots:
        """The jobs named by a batch of actions, locked, with their in-flight run counts."""
        ordered = sorted(names)
        found: dict[str, registry.RegisteredJob | None] = dict.fromkeys(ordered)
        active: dict[str, int] = dict.fromkeys(ordered, 0)
        for start in range(0, len(ordered), 500):
            chunk = ordered[start : start + 500]
            query = select(jobs).where(jobs.c.name.in_(chunk)).order_by(jobs.c.name)
            if conn.dialect.name == "postgresql":
                # Same lock StartJobRun takes: admissions and fires cannot overshoot the limit.
                query = query.with_for_update()
            for row in await conn.execute(query):
                found[row.name] = registry.RegisteredJob(
                    name=row.name,
                    version=row.version,
                    incarnation=row.incarnation,
                    deleted=row.deleted,
                    definition=json.loads(row.definition),
                )
            counts = await conn.execute(
                select(runs.c.job_name, func.count())
                .where(runs.c.job_name.in_(chunk))
                .where(runs.c.state.in_([s.value for s in HOLDS_JOB_SLOT]))
                .group_by(runs.c.job_name)
            )
            for name, count in counts:
                active[name] = int(count)
        return _JobSlots(jobs=found, active=active)

    def _plan_runs(
        self,
        trigger: registry.RegisteredTrigger,
        slots: _JobSlots,
        predecessors: Sequence[tuple[str, str]],
        free_slots: list[int],
    ) -> list[RunRecord]:
        """One run per action, in the state the action's job allows (see module docstring)."""
        now = time.time()
        planned = []
        for action in trigger.definition.get("Actions", []):
            name = action.get("JobName")
            if not name:
                continue
            run_id = "jr_" + secrets.token_hex(32)
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
            job = slots.jobs.get(name)
            if job is None or job.deleted:
                planned.append(self._error_run(run_id, name, trigger.name, request, now))
                continue
            limit = max_concurrent_runs(job.definition)
            queuing = bool(job.definition.get("JobRunQueuingEnabled"))
            if slots.active[name] >= limit and not queuing:
                run = self._store.new_run(
                    run_id=run_id, job=job, request=request, state=JobRunState.FAILED
                )
                planned.append(
                    replace(
                        run,
                        completed_at=now,
                        execution_time=0,
                        error_message=(
                            f"ConcurrentRunsExceededException: Job with name {name} already "
                            f"running: {slots.active[name]} of its {limit} concurrent runs "
                            "(ExecutionProperty.MaxConcurrentRuns) are in flight"
                        ),
                    )
                )
                continue
            start_now = free_slots[0] > 0 and slots.active[name] < limit
            slots.active[name] += 1
            if start_now:
                free_slots[0] -= 1
            planned.append(
                self._store.new_run(
                    run_id=run_id,
                    job=job,
                    request=request,
                    state=JobRunState.STARTING if start_now else JobRunState.WAITING,
                )
            )
        return planned

    def _error_run(
        self, run_id: str, job_name: str, trigger_name: str, request: GlueDict, now: float
    ) -> RunRecord:
        record: GlueDict = {
            "Id": run_id,
            "JobName": job_name,
            "TriggerName": trigger_name,
            "Arguments": dict(request.get("Arguments", {})),
            "LogGroupName": self._store.log_path(run_id),
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

    async def _insert_fire(
        self,
        conn: AsyncConnection,
        trigger_name: str,
        fire_key: str,
        *,
        scheduled_at: float,
        outcome: str,
        reason: str,
        run_ids: Sequence[str] = (),
        due_times: int = 1,
    ) -> bool:
        """Write one ledger row; False if that fire was already recorded."""
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        result = await conn.execute(
            dialect.insert(trigger_fires)
            .values(
                trigger_name=trigger_name,
                fire_key=fire_key,
                scheduled_at=scheduled_at,
                recorded_at=time.time(),
                outcome=outcome,
                reason=reason,
                run_ids=json.dumps(list(run_ids)),
                due_times=due_times,
            )
            .on_conflict_do_nothing()
        )
        return bool(result.rowcount)

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
        """Record the fire and create its runs; None if this fire already happened."""
        planned = self._plan_runs(trigger, slots, predecessors, free_slots)
        inserted = await self._insert_fire(
            conn,
            trigger.name,
            fire_key,
            scheduled_at=scheduled_at,
            outcome="FIRED",
            reason=reason,
            run_ids=[r.run_id for r in planned],
        )
        if not inserted:
            # Give back what the plan took: nothing of it will exist.
            for run in planned:
                if run.state in (JobRunState.STARTING, JobRunState.WAITING):
                    slots.active[run.job_name] -= 1
                if run.state is JobRunState.STARTING:
                    free_slots[0] += 1
            return None
        await self._store.insert_many(conn, planned)
        return planned

    # -- schedules ---------------------------------------------------------------------------

    async def fire_due(self, now: float) -> tuple[int, list[RunRecord]]:
        """Fire (or skip) every due SCHEDULED trigger, up to one batch.

        Returns how many triggers were handled and the runs created (STARTING ones hold a
        process slot and must be launched by the caller).
        """
        reserved = 0
        free = [0]
        created: list[RunRecord] = []
        try:
            async with self._store.write() as conn:
                query = (
                    select(triggers)
                    .where(triggers.c.next_fire_at <= now)
                    .where(triggers.c.state == "ACTIVATED")
                    .where(triggers.c.deleted.is_(False))
                    .order_by(triggers.c.next_fire_at)
                    .limit(DUE_BATCH)
                )
                if conn.dialect.name == "postgresql":
                    query = query.with_for_update(skip_locked=True)
                due = [registry.RegisteredTrigger.from_row(r) for r in await conn.execute(query)]
                if not due:
                    return 0, []
                actions = [a for t in due for a in t.definition.get("Actions", [])]
                names = {a["JobName"] for a in actions if a.get("JobName")}
                slots = await self._load_jobs(conn, names)
                # Process slots for the runs about to start (the rest will wait in WAITING).
                reserved = self._reserve(len(actions))
                free[0] = reserved
                for trigger in due:
                    created.extend(await self._fire_schedule(conn, trigger, slots, now, free))
        except BaseException:
            self._release(reserved)
            raise
        self._release(free[0])
        return len(due), created

    async def _fire_schedule(
        self,
        conn: AsyncConnection,
        trigger: registry.RegisteredTrigger,
        slots: _JobSlots,
        now: float,
        free: list[int],
    ) -> list[RunRecord]:
        assert trigger.next_fire_at is not None
        schedule = parse_schedule(trigger.definition["Schedule"])
        due = trigger.next_fire_at
        following = _next(schedule, due)
        if following is None or following > now:
            latest: float | None = due if now - due <= self._grace else None
            missed = 0 if latest is not None else 1
        else:
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
            following = _next(schedule, latest if latest is not None else now)
        created: list[RunRecord] = []
        if latest is not None:
            if missed:
                await self._insert_fire(
                    conn,
                    trigger.name,
                    "coalesced:" + registry.fire_key_for_instant(due),
                    scheduled_at=due,
                    outcome="COALESCED",
                    reason=(
                        f"{_count(missed)} due time(s) from {_iso(due)} were missed while no "
                        f"scheduler ran; folded into the fire at {_iso(latest)}"
                    ),
                    due_times=missed,
                )
            fired = await self._fire(
                conn,
                trigger,
                slots,
                fire_key=registry.fire_key_for_instant(latest),
                scheduled_at=latest,
                reason="schedule",
                free_slots=free,
            )
            created = fired or []
        else:
            await self._insert_fire(
                conn,
                trigger.name,
                "skipped:" + registry.fire_key_for_instant(due),
                scheduled_at=due,
                outcome="SKIPPED",
                reason=(
                    f"{_count(missed)} due time(s) from {_iso(due)} were missed while no "
                    f"scheduler ran, none within the misfire grace of {self._grace:g} s; the "
                    "trigger waits for its next due time"
                ),
                due_times=missed,
            )
        result = await conn.execute(
            update(triggers)
            .where(triggers.c.name == trigger.name)
            .where(triggers.c.version == trigger.version)
            .where(triggers.c.next_fire_at == trigger.next_fire_at)
            .values(next_fire_at=following)
        )
        if not result.rowcount:
            raise RuntimeError(f"trigger {trigger.name} changed while firing; retrying the batch")
        return created

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
                    raise EntityNotFoundException(f"Trigger {name} not found.")
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
            self._release(reserved)
            raise
        self._release(free[0])
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
        for row in rows.all():
            trigger = registry.RegisteredTrigger.from_row(row)
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
