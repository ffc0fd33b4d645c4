"""Conditional triggers (AND / ANY over job states), evaluated as runs end.

Only runs that a trigger started count, as in Glue. For each ACTIVATED conditional trigger the
scheduler keeps, per watched job, the latest terminal run since the trigger was activated,
updated, or last fired. A predicate is evaluated in the transaction that ends a run: AND fires
when every condition's job's latest run is in the condition's state, ANY when the run that just
ended satisfies one. The fire is keyed by that run, records the satisfying runs as the new runs'
PredecessorRuns, and clears the observations, so each satisfying set fires exactly once.
"""

from __future__ import annotations

import time

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from glue_vocabulary.shapes import GlueDict
from scheduler_service import registry
from scheduler_service.bad_rows import TALLY
from scheduler_service.fire_runs import FireRuns
from scheduler_service.run_record import RunRecord
from scheduler_service.tables import trigger_observations, triggers


class ConditionalFiring(FireRuns):
    """Observes ended runs and fires the conditional triggers they satisfy (part of
    ``firing.Firing``)."""

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
