"""Schedules that came due: claimed and fired in batches, one transaction each.

Misfires: due times missed while no scheduler ran are not replayed (``misfires``).

Bursts: due schedules are fired in batches of up to DUE_BATCH triggers, one transaction each,
set-based: one multi-row ledger insert whose answer says which fires are new (only those get
runs), one bulk insert of runs and one of their events, one update advancing every claimed
trigger's due time (each compared against the version and due time read). Most of a fire's
cost is Python work on its runs (records, JSON, event protos), so shortly before schedules are
due the clock has their fires *drafted* (``fire_drafts``): at the due time the batch
transaction claims the triggers as always and uses a draft only if it was made from the
trigger version and due time it claimed, and from the job versions it locked; the runs are
stamped then. Anything else is worked out there.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Double, Text, bindparam, column, func, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from glue_vocabulary.cron import parse_schedule
from scheduler_service import registry
from scheduler_service.bad_rows import TALLY, UnreadableRowError
from scheduler_service.fire_ledger import _ledger_row
from scheduler_service.fire_runs import FireRuns, _ActionRun, _job_actions, _new_run_ids
from scheduler_service.misfires import _count_between, _iso, _misfire_row, _next, _Step
from scheduler_service.run_record import NewRun, RunRecord
from scheduler_service.slots import ProcessSlots
from scheduler_service.tables import triggers
from servicekit.db import Database

# Due triggers fired per transaction. Larger batches spread each statement's fixed cost over
# more fires but hold their locks longer and leave less for a second batch in flight to
# overlap. For a 10,000 burst with two in flight, the last fire committed about as soon with
# 2,000 to 5,000 and later with 1,000 or 500.
DUE_BATCH = 2000

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


class ScheduledFiring(FireRuns):
    """Fires due schedules (part of ``firing.Firing``)."""

    _db: Database
    _slots: ProcessSlots
    _grace: float
    batch_size: int
    _prepared: dict[str, _ScheduledFire]

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
