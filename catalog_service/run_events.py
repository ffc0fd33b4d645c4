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

import asyncio
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from sqlalchemy import Text, bindparam, case, exists, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from catalog_service.tables import job_runs, jobs
from glue.scheduler.v1 import scheduler_pb2


def _insert(dialect: ModuleType, columns: tuple[str, ...]) -> Any:
    """Insert a run's snapshot (``columns``), marked ``job_deleted`` when the job incarnation
    the event belongs to is gone (values bound at execution)."""
    incarnation_exists = exists().where(
        jobs.c.name == bindparam("job_name", type_=Text),
        jobs.c.incarnation == bindparam("job_incarnation", type_=Text),
    )
    # Typed: PostgreSQL cannot infer a parameter's type from a select list.
    row = select(
        *(bindparam(name, type_=job_runs.c[name].type) for name in columns),
        ~incarnation_exists,
    )
    return dialect.insert(job_runs).from_select([*columns, "job_deleted"], row)


def _upsert(dialect: ModuleType, columns: tuple[str, ...]) -> Any:
    """``_insert``, or replace the snapshot held if it is older."""
    stmt = _insert(dialect, columns)
    return stmt.on_conflict_do_update(
        index_elements=[job_runs.c.run_id],
        set_={
            "state": stmt.excluded.state,
            "snapshot": stmt.excluded.snapshot,
            "event_seq": stmt.excluded.event_seq,
        },
        where=job_runs.c.event_seq < stmt.excluded.event_seq,
    )


def _upsert_admission(dialect: ModuleType, columns: tuple[str, ...]) -> Any:
    """``_upsert`` with who started the run (``started_by``), which is also added to a run the
    event consumer wrote first (it waited for StartJobRun's write past its patience) without
    touching the newer snapshot it may hold: one statement either way, so a batch of them is
    one executemany."""
    stmt = _insert(dialect, (*columns, "started_by"))
    newer = job_runs.c.event_seq < stmt.excluded.event_seq
    return stmt.on_conflict_do_update(
        index_elements=[job_runs.c.run_id],
        set_={
            **{
                name: case((newer, stmt.excluded[name]), else_=job_runs.c[name])
                for name in ("state", "snapshot", "event_seq")
            },
            "started_by": func.coalesce(job_runs.c.started_by, stmt.excluded.started_by),
        },
        where=or_(newer, job_runs.c.started_by.is_(None)),
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
_UPSERT = {
    "postgresql": _upsert(postgresql, _SNAPSHOT_COLUMNS),
    "sqlite": _upsert(sqlite, _SNAPSHOT_COLUMNS),
}
# StartJobRun's: the same, with who started the run (kept beside the snapshot).
_UPSERT_ADMISSION = {
    "postgresql": _upsert_admission(postgresql, _SNAPSHOT_COLUMNS),
    "sqlite": _upsert_admission(sqlite, _SNAPSHOT_COLUMNS),
}


def _values(event: scheduler_pb2.RunEvent) -> dict[str, Any]:
    run = event.run
    return {
        "run_id": run.id,
        "job_name": run.job_name,
        "started_on": run.started_on.ToMicroseconds() / 1e6,
        "state": run.job_run_state,
        "snapshot": run.SerializeToString(),
        "event_seq": event.sequence,
        "trigger_name": run.trigger_name or None,
        "job_incarnation": event.job_incarnation,
    }


async def apply_admissions(
    conn: AsyncConnection, admissions: Sequence[tuple[scheduler_pb2.RunEvent, str | None]]
) -> None:
    """Apply StartJobRun's admission events, each with who started its run (one statement,
    executed for each: ``_upsert_admission``)."""
    await conn.execute(
        _UPSERT_ADMISSION[conn.dialect.name],
        [{**_values(event), "started_by": started_by} for event, started_by in admissions],
    )


class AppliedElsewhere:
    """Events the catalog applied outside the event consumer (StartJobRun's admission,
    BatchStopJobRun's stop), so the consumer drops them without a transaction when the stream
    delivers them.

    Only events beyond the consumer's position are noted, and each is forgotten once the
    consumer reaches it, so this holds about the events in flight between the two paths.

    The scheduler sends StartRun's answer and the stream's copy of the same event together, and
    the stream's usually arrives first. So that the run is not written twice (the consumer's
    transaction, then StartJobRun's upsert finding it done), StartJobRun marks its run
    ``admitting`` until its write is over, and the consumer waits for that (``settled``)
    before deciding what it must apply.
    """

    def __init__(self, size: int = 100_000) -> None:
        self._size = size
        # Run id -> (the newest event sequence applied, the run's job).
        self._runs: OrderedDict[str, tuple[int, str]] = OrderedDict()
        # Run id -> done when StartJobRun's admission write for it is over (noted or not).
        self._admitting: dict[str, asyncio.Future[None]] = {}
        self.through = 0
        """The consumer's applied position (it sets it)."""

    @contextmanager
    def admitting(self, run_id: str) -> Iterator[None]:
        """While StartJobRun admits ``run_id`` and writes its admission (``note`` inside)."""
        done = asyncio.get_running_loop().create_future()
        self._admitting[run_id] = done
        try:
            yield
        finally:
            del self._admitting[run_id]
            done.set_result(None)

    async def settled(self, events: Sequence[scheduler_pb2.RunEvent], timeout: float) -> None:
        """Wait, at most ``timeout`` seconds, until no StartJobRun is still writing the
        admission of a run of ``events``. After the timeout the consumer applies the event
        itself: a second write of it changes nothing."""
        writing = [self._admitting[e.run.id] for e in events if e.run.id in self._admitting]
        if writing:
            await asyncio.wait(writing, timeout=timeout)

    def note(self, events: Sequence[scheduler_pb2.RunEvent]) -> None:
        """These events' effects are committed."""
        for event in events:
            if event.sequence <= self.through:
                continue
            held = self._runs.get(event.run.id)
            if held is None or held[0] < event.sequence:
                self._runs[event.run.id] = (event.sequence, event.run.job_name)
            if len(self._runs) > self._size:
                self._runs.popitem(last=False)

    def take(self, event: scheduler_pb2.RunEvent) -> bool:
        """Whether ``event``'s effect is already held (the consumer reached it: forgotten)."""
        held = self._runs.get(event.run.id)
        if held is None or held[0] > event.sequence:
            return held is not None
        del self._runs[event.run.id]
        return held[0] == event.sequence

    def forget_job(self, job_name: str) -> None:
        """DeleteJob removed the job's runs: the consumer must apply their events again (a
        run of a deleted job is kept, marked ``job_deleted``)."""
        for run_id in [r for r, (_, job) in self._runs.items() if job == job_name]:
            del self._runs[run_id]


async def apply_events(conn: AsyncConnection, events: Sequence[scheduler_pb2.RunEvent]) -> int:
    """Upsert each run's snapshot from its newest event unless a newer one is held; returns
    how many rows were written.

    An event carries the run's whole record, so of a run's events in one batch only the newest
    is written (under load a short run's STARTING, RUNNING and end often come together: one
    statement, not three). Rows are written in run id order: two transactions applying events
    of the same runs - the event consumer and a BatchStopJobRun - then lock them in one order
    and cannot deadlock on PostgreSQL.
    """
    upsert = _UPSERT[conn.dialect.name]
    newest: dict[str, scheduler_pb2.RunEvent] = {}
    for event in events:
        held = newest.get(event.run.id)
        if held is None or held.sequence < event.sequence:
            newest[event.run.id] = event
    applied = 0
    for run_id in sorted(newest):
        applied += (await conn.execute(upsert, _values(newest[run_id]))).rowcount
    return applied
