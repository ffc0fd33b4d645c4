"""Trigger fires: schedules that came due, predicates that became true, fire-now requests.

A fire is one transaction (docs/invariants.md §4): the ledger row named by (trigger, fire key), a
run per action, each run's first outbox event, and - for schedules - the trigger's next due
time, compared against the due time that was read. The process of a run starts only after
that commit. A second attempt at the same fire (another replica, a retried call, a replay after
a crash) fails on the ledger key and starts nothing.

``Firing`` is one object (one ledger writer, one set of drafts) built from a base per job:

- ``fire_runs.FireRuns``: a fire's runs (drafted, admitted, recorded with its ledger row);
- ``scheduled_fires.ScheduledFiring``: due schedules, claimed and fired in batches, with
  ``misfires`` deciding what fires and ``fire_ledger`` the rows;
- ``fire_drafts.FireDrafting``: fires drafted ahead of their due time;
- ``conditional_fires.ConditionalFiring``: predicates evaluated as runs end;
- here: the object, fire-now requests and the ledger's reads.
"""

from __future__ import annotations

import time

from sqlalchemy import and_, select

from glue.v1 import glue_pb2
from scheduler_service import registry
from scheduler_service.conditional_fires import ConditionalFiring
from scheduler_service.fire_drafts import FireDrafting
from scheduler_service.fire_ledger import fire_to_proto
from scheduler_service.metrics import SchedulerMetrics
from scheduler_service.run_record import RunRecord
from scheduler_service.runs import RunStore
from scheduler_service.scheduled_fires import DUE_BATCH, _ScheduledFire
from scheduler_service.slots import ProcessSlots
from scheduler_service.tables import trigger_fires
from servicekit.db import Database
from servicekit.errors import EntityNotFoundException, InvalidInputException


class Firing(FireDrafting, ConditionalFiring):
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
