"""Applies the scheduler's run events to the catalog's run history, each exactly once.

An event carries the run's whole record after a change. It is applied only if it is newer
than the snapshot held (``event_seq``), and only while the job incarnation it belongs to still
exists, so replays, duplicates and events of deleted jobs change nothing. The event consumer
stores its cursor in the same transaction (see ``event_consumer``).
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from catalog_service.tables import job_runs, jobs
from glue.scheduler.v1 import scheduler_pb2


def _upsert(dialect: ModuleType) -> Any:
    """Insert a run's snapshot, or replace the one held if it is older (values bound later)."""
    stmt = dialect.insert(job_runs)
    return stmt.on_conflict_do_update(
        index_elements=[job_runs.c.run_id],
        set_={
            "state": stmt.excluded.state,
            "snapshot": stmt.excluded.snapshot,
            "event_seq": stmt.excluded.event_seq,
        },
        where=job_runs.c.event_seq < stmt.excluded.event_seq,
    )


# Built once per dialect: every StartJobRun and every event applies these, and composing an
# upsert costs more Python than executing it.
_UPSERT = {"postgresql": _upsert(postgresql), "sqlite": _upsert(sqlite)}
_INCARNATIONS = select(jobs.c.name, jobs.c.incarnation).where(
    jobs.c.name.in_(bindparam("names", expanding=True))
)


async def apply_events(conn: AsyncConnection, events: Sequence[scheduler_pb2.RunEvent]) -> int:
    """Upsert each event's run snapshot unless a newer one is held; returns how many applied."""
    if not events:
        return 0
    names = sorted({event.run.job_name for event in events})
    rows = await conn.execute(_INCARNATIONS, {"names": names})
    incarnations = {row.name: row.incarnation for row in rows}
    upsert = _UPSERT[conn.dialect.name]
    applied = 0
    for event in events:
        run = event.run
        if incarnations.get(run.job_name) != event.job_incarnation:
            continue
        values = {
            "run_id": run.id,
            "job_name": run.job_name,
            "started_on": run.started_on.ToMicroseconds() / 1e6,
            "state": run.job_run_state,
            "snapshot": run.SerializeToString(),
            "event_seq": event.sequence,
        }
        applied += (await conn.execute(upsert, values)).rowcount
    return applied
