"""Applies the scheduler's run events to the catalog's run history, each exactly once.

An event carries the run's whole record after a change. It is applied only if it is newer
than the snapshot held (``event_seq``), so replays and duplicates change nothing. An event
whose job incarnation no longer exists (the job was deleted, perhaps re-created) is kept with
``job_deleted`` set: GetJobRun(s) never show it - it is not the current job's run - but
GetRecentJobRuns does, so a run that ended after its job was deleted, or that a trigger
started for a deleted job, is not invisible. The event consumer stores its cursor in the same
transaction (see ``event_consumer``).
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

from sqlalchemy import Text, bindparam, exists, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from catalog_service.tables import job_runs, jobs
from glue.scheduler.v1 import scheduler_pb2


def _upsert(dialect: ModuleType) -> Any:
    """Insert a run's snapshot, or replace the one held if it is older; marked
    ``job_deleted`` when the job incarnation the event belongs to is gone (values bound at
    execution)."""
    incarnation_exists = exists().where(
        jobs.c.name == bindparam("job_name", type_=Text),
        jobs.c.incarnation == bindparam("job_incarnation", type_=Text),
    )
    # Typed: PostgreSQL cannot infer a parameter's type from a select list.
    row = select(
        *(bindparam(name, type_=job_runs.c[name].type) for name in _SNAPSHOT_COLUMNS),
        ~incarnation_exists,
    )
    stmt = dialect.insert(job_runs).from_select([*_SNAPSHOT_COLUMNS, "job_deleted"], row)
    return stmt.on_conflict_do_update(
        index_elements=[job_runs.c.run_id],
        set_={
            "state": stmt.excluded.state,
            "snapshot": stmt.excluded.snapshot,
            "event_seq": stmt.excluded.event_seq,
        },
        where=job_runs.c.event_seq < stmt.excluded.event_seq,
    )


_SNAPSHOT_COLUMNS = (
    "run_id",
    "job_name",
    "started_on",
    "state",
    "snapshot",
    "event_seq",
    "trigger_name",
)
# Built once per dialect: every StartJobRun and every event applies it, and composing it costs
# more Python than executing it. One statement per event, the incarnation check included.
_UPSERT = {"postgresql": _upsert(postgresql), "sqlite": _upsert(sqlite)}


async def apply_events(conn: AsyncConnection, events: Sequence[scheduler_pb2.RunEvent]) -> int:
    """Upsert each event's run snapshot unless a newer one is held; returns how many applied.

    Rows are written in run id order (a run's events in sequence order): two transactions
    applying events of the same runs - the event consumer and a BatchStopJobRun - then lock
    them in one order and cannot deadlock on PostgreSQL. Only a run's own events are ordered
    by meaning, and ``event_seq`` keeps the newest.
    """
    upsert = _UPSERT[conn.dialect.name]
    applied = 0
    for event in sorted(events, key=lambda e: (e.run.id, e.sequence)):
        run = event.run
        values = {
            "run_id": run.id,
            "job_name": run.job_name,
            "started_on": run.started_on.ToMicroseconds() / 1e6,
            "state": run.job_run_state,
            "snapshot": run.SerializeToString(),
            "event_seq": event.sequence,
            "trigger_name": run.trigger_name or None,
            "job_incarnation": event.job_incarnation,
        }
        applied += (await conn.execute(upsert, values)).rowcount
    return applied
