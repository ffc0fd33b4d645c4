"""Fires drafted ahead: shortly before schedules are due, their runs are built in advance.

Quartz's acquisition window: triggers and jobs are read - no lock taken, nothing written - and
each run is built except for its state and timestamps. The tick that claims a trigger at its
due time uses the draft only if it still holds (``scheduled_fires``).
"""

from __future__ import annotations

import asyncio
import json
import time

from sqlalchemy import select

from scheduler_service import registry
from scheduler_service.bad_rows import TALLY
from scheduler_service.fire_runs import _job_actions, _new_run_ids
from scheduler_service.misfires import _Step
from scheduler_service.scheduled_fires import ScheduledFiring, _ScheduledFire
from scheduler_service.tables import triggers

# At most this many fires are drafted ahead: drafts are held in memory until fired, ~4 KB
# each (10,000 added ~40 MB of RSS, measured); further due triggers are worked out when due.
PREPARE_LIMIT = 10_000
# Drafting yields to the event loop after this many triggers (the server keeps answering).
PREPARE_CHUNK = 500


class FireDrafting(ScheduledFiring):
    """Drafts the fires of schedules about to come due (part of ``firing.Firing``)."""

    _earliest_draft: float | None

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
