"""Glue's run states through a real scheduler and real processes: a run started with capacity
is STARTING, then RUNNING once its process runs, then ended; a queued run is WAITING first."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from glue.v1 import glue_pb2
from scheduler_service.tables import outbox
from servicekit.db import Database
from tests.conftest import Stack
from tests.helpers.scripts import SUCCEED, write_script


async def run_events(url: str, run_id: str) -> list[str]:
    """The states of a run's events in the scheduler's outbox, in sequence order."""
    db = Database(url)
    try:
        async with db.read() as conn:
            rows = await conn.execute(
                select(outbox.c.payload).where(outbox.c.run_id == run_id).order_by(outbox.c.seq)
            )
            return [glue_pb2.JobRun.FromString(row.payload).job_run_state for row in rows]
    finally:
        await db.dispose()


@pytest.mark.scheduler_settings(max_processes=1)
async def test_runs_go_starting_running_end_and_a_queued_run_waits_first(
    stack: Stack, tmp_path: Path
) -> None:
    await stack.create_job(
        "trivial",
        write_script(tmp_path, "ok.py", SUCCEED),
        execution_property=glue_pb2.ExecutionProperty(max_concurrent_runs=5),
    )
    # One process slot: the first run takes it, the second queues for it.
    first = await stack.start_run("trivial")
    queued = await stack.start_run("trivial")
    for run_id in (first, queued):
        run = await stack.wait_run("trivial", run_id)
        assert run.job_run_state == "SUCCEEDED", run
    # Whether RUNNING was written by the batch or with the end (a trivial run may end first),
    # the history is Glue's.
    assert await run_events(stack.scheduler_url, first) == ["STARTING", "RUNNING", "SUCCEEDED"]
    assert await run_events(stack.scheduler_url, queued) == [
        "WAITING",
        "STARTING",
        "RUNNING",
        "SUCCEEDED",
    ]
