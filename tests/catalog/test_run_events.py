"""Applying the scheduler's run events to the catalog's run history (``run_events``), on a
real database: a run's events of one batch write its newest snapshot once, and an older event
never overwrites a newer snapshot."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from catalog_service.run_events import apply_events
from catalog_service.tables import job_runs
from glue.scheduler.v1 import scheduler_pb2
from glue.v1 import glue_pb2
from servicekit.db import Database
from tests.helpers.catalog_rows import add_catalog_job


@pytest.fixture
async def db(database_urls: tuple[str, str]) -> AsyncIterator[Database]:
    database = Database(database_urls[0])
    await add_catalog_job(database, "job", "inc-1")
    try:
        yield database
    finally:
        await database.dispose()


def event(run_id: str, sequence: int, state: str) -> scheduler_pb2.RunEvent:
    run = glue_pb2.JobRun(id=run_id, job_name="job", job_run_state=state)
    run.started_on.FromSeconds(1_700_000_000)
    return scheduler_pb2.RunEvent(sequence=sequence, run=run, job_incarnation="inc-1")


async def held(db: Database) -> dict[str, tuple[str, int, str]]:
    async with db.read() as conn:
        rows = await conn.execute(
            select(job_runs.c.run_id, job_runs.c.state, job_runs.c.event_seq, job_runs.c.snapshot)
        )
        return {
            r.run_id: (r.state, r.event_seq, glue_pb2.JobRun.FromString(r.snapshot).job_run_state)
            for r in rows
        }


async def test_a_batch_writes_each_runs_newest_snapshot_once(db: Database) -> None:
    batch = [
        event("jr_b", 1, "STARTING"),
        event("jr_a", 2, "STARTING"),
        event("jr_b", 4, "SUCCEEDED"),  # out of order within the batch: the newest still wins
        event("jr_b", 3, "RUNNING"),
        event("jr_a", 5, "RUNNING"),
    ]
    async with db.transaction() as conn:
        assert await apply_events(conn, batch) == 2
    assert await held(db) == {
        "jr_a": ("RUNNING", 5, "RUNNING"),
        "jr_b": ("SUCCEEDED", 4, "SUCCEEDED"),
    }


async def test_an_older_event_changes_nothing_and_a_newer_one_replaces(db: Database) -> None:
    async with db.transaction() as conn:
        await apply_events(conn, [event("jr_a", 7, "SUCCEEDED")])
    async with db.transaction() as conn:
        assert await apply_events(conn, [event("jr_a", 6, "RUNNING")]) == 0
    assert await held(db) == {"jr_a": ("SUCCEEDED", 7, "SUCCEEDED")}
    async with db.transaction() as conn:
        assert await apply_events(conn, [event("jr_a", 9, "FAILED")]) == 1
    assert await held(db) == {"jr_a": ("FAILED", 9, "FAILED")}
