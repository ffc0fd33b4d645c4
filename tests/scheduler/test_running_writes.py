"""STARTING -> RUNNING writes (``running.RunningWrites``): a run is written RUNNING only once its
process has run for the linger, so a run that ends sooner costs no write of its own; runs that
start close together share one write. On a real database; no process is started."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import select

from glue.v1 import glue_pb2
from glue_vocabulary.run_states import JobRunState
from scheduler_service.running import RunningWrites
from scheduler_service.runs import RunStore
from scheduler_service.tables import outbox
from servicekit.db import Database
from tests.helpers.scheduler_store import add_job, admit, run_store

LINGER = 0.3


async def running_events(db: Database) -> list[tuple[str, float]]:
    """(run id, when written) of every RUNNING event, in sequence order."""
    async with db.read() as conn:
        rows = await conn.execute(
            select(outbox.c.run_id, outbox.c.payload, outbox.c.created_at).order_by(outbox.c.seq)
        )
        return [
            (r.run_id, r.created_at)
            for r in rows
            if glue_pb2.JobRun.FromString(r.payload).job_run_state == "RUNNING"
        ]


@asynccontextmanager
async def started(
    db: Database, tmp_path: Path, *run_ids: str
) -> AsyncIterator[tuple[RunStore, RunningWrites]]:
    """Runs admitted into process slots (STARTING, owned here) and a writer for them."""
    store = run_store(db, tmp_path, "mine")
    await add_job(db, "job")
    for run_id in run_ids:
        assert (await admit(store, "job", run_id, slot=True)).run.state is JobRunState.STARTING
    writes = RunningWrites(store, linger=LINGER)
    try:
        yield store, writes
    finally:
        await writes.close()


async def wait_until(predicate: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_a_run_that_ends_within_the_linger_gets_no_running_write(
    scheduler_db: Database, tmp_path: Path
) -> None:
    async with started(scheduler_db, tmp_path, "jr_short", "jr_long") as (store, writes):
        writes.started("jr_long")
        await asyncio.sleep(LINGER / 2)
        # A writer is already waiting (for jr_long) when jr_short starts: jr_short must still
        # get its own full linger, not ride along with jr_long's write.
        writes.started("jr_short")
        await asyncio.sleep(LINGER * 0.6)
        writes.ended("jr_short")
        await wait_until(lambda: _has_running(scheduler_db, "jr_long"))
        await asyncio.sleep(LINGER * 1.5)
        assert [run_id for run_id, _ in await running_events(scheduler_db)] == ["jr_long"]
        short = await store.get("jr_short")
        assert short is not None and short.state is JobRunState.STARTING


async def test_a_run_is_written_running_once_its_linger_has_passed(
    scheduler_db: Database, tmp_path: Path
) -> None:
    async with started(scheduler_db, tmp_path, "jr_1") as (store, writes):
        reported = time.time()
        writes.started("jr_1")
        await wait_until(lambda: _has_running(scheduler_db, "jr_1"))
        [(_, written)] = await running_events(scheduler_db)
        assert written - reported >= LINGER * 0.95
        run = await store.get("jr_1")
        assert run is not None and run.state is JobRunState.RUNNING


async def test_runs_that_start_close_together_share_one_write(
    scheduler_db: Database, tmp_path: Path
) -> None:
    run_ids = [f"jr_{k}" for k in range(5)]
    async with started(scheduler_db, tmp_path, *run_ids) as (_, writes):
        for run_id in run_ids:
            writes.started(run_id)
            await asyncio.sleep(LINGER / 40)
        await wait_until(lambda: _count_running(scheduler_db, len(run_ids)))
        times = {written for _, written in await running_events(scheduler_db)}
        # At most two transactions (a write is at least half a linger after the one before);
        # one per run would be five.
        assert len(times) <= 2, times


async def _has_running(db: Database, run_id: str) -> bool:
    return any(r == run_id for r, _ in await running_events(db))


async def _count_running(db: Database, count: int) -> bool:
    return len(await running_events(db)) >= count
