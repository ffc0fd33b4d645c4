"""A row the scheduler cannot read never stops start-up, recovery, promotion or the clock.

Rows are written straight into the scheduler's database while it is stopped - as an older
version, a hand edit or a caller before the internal API was checked could have left them -
and the scheduler is started on them: it skips each, logs and counts it, parks it where it
would be picked again (an ERROR run, a trigger with no due time), and serves everyone else.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from sqlalchemy import insert, select

from scheduler_service.bad_rows import TALLY
from scheduler_service.tables import jobs, runs, triggers
from servicekit.db import Database
from tests.conftest import Stack
from tests.helpers.scripts import write_script


def _run(run_id: str, state: str, record: str, job: str = "good") -> dict[str, Any]:
    now = time.time()
    return {
        "run_id": run_id,
        "job_name": job,
        "job_incarnation": "x",
        "state": state,
        "attempt": 0,
        "max_retries": 0,
        "timeout_minutes": 5,
        "created_at": now - 60,
        "updated_at": now - 60,
        "record": record,
    }


async def _write(url: str, table: Any, rows: list[dict[str, Any]]) -> None:
    db = Database(url)
    try:
        async with db.transaction() as conn:
            await conn.execute(insert(table), rows)
    finally:
        await db.dispose()


@pytest.mark.scheduler_settings(lease_seconds=2.0)
async def test_the_scheduler_starts_and_serves_over_unreadable_rows(
    stack: Stack, tmp_path: Any
) -> None:
    script = write_script(tmp_path, "ok.py", "print('ok')\n")
    await stack.create_job("good", script)
    first = await stack.start_run("good")
    await stack.wait_run("good", first)
    await stack.stop_scheduler()
    url = stack.scheduler_url
    await _write(
        url,
        runs,
        [
            # A run id that walks out of the runs directory, left RUNNING: recovery adopts it.
            _run("../../x", "RUNNING", '{"Arguments": {}}'),
            _run("jr_badjson", "STARTING", "{not json"),
            _run("jr_notobject", "RUNNING", "[1, 2]"),
            # Promotion reads WAITING runs and their jobs.
            _run("jr_waitbad", "WAITING", "{oops"),
            _run("jr_waitbrokenjob", "WAITING", '{"Arguments": {}}', job="brokenjob"),
        ],
    )
    await _write(
        url,
        jobs,
        [
            {
                "name": "brokenjob",
                "version": 1,
                "incarnation": "x",
                "deleted": False,
                "definition": "{oops",
                "updated_at": time.time(),
            }
        ],
    )
    await _write(
        url,
        triggers,
        [
            {
                "name": "brokentrigger",
                "version": 1,
                "deleted": False,
                "definition": "not json",
                "updated_at": time.time(),
                "type": "SCHEDULED",
                "state": "ACTIVATED",
                "next_fire_at": time.time() - 1,
                "activated_at": time.time() - 3600,
            }
        ],
    )
    TALLY.clear()

    await stack.start_scheduler()
    assert stack.scheduler is not None
    scheduler = stack.scheduler
    # Everyone else is served: a run through the catalog succeeds.
    second = await stack.start_run("good")
    assert (await stack.wait_run("good", second)).job_run_state == "SUCCEEDED"

    # The reaper and the clock run over the same rows without stopping either.
    await asyncio.sleep(3)
    assert not any(task.done() for task in scheduler._loops)
    third = await stack.start_run("good")
    assert (await stack.wait_run("good", third)).job_run_state == "SUCCEEDED"

    # Each bad row was counted once, by table.
    assert TALLY.by_table == {"scheduler_runs": 4, "scheduler_jobs": 1, "scheduler_triggers": 1}
    db = Database(url)
    try:
        async with db.read() as conn:
            rows = (
                await conn.execute(select(runs.c.run_id, runs.c.state, runs.c.error_message))
            ).all()
            states = {row.run_id: row.state for row in rows}
            errors = {row.run_id: row.error_message for row in rows}
            parked = (
                await conn.execute(
                    select(triggers.c.next_fire_at).where(triggers.c.name == "brokentrigger")
                )
            ).scalar_one()
    finally:
        await db.dispose()
    # Parked with the reason, never deleted.
    for run_id in ("../../x", "jr_badjson", "jr_notobject", "jr_waitbad"):
        assert states[run_id] == "ERROR", run_id
        assert "cannot read this run's row" in (errors[run_id] or "")
    # A run of a job whose registration cannot be read waited, not crashed promotion; the
    # catalog never had that job, so its reconciler left a tombstone and the run then ended.
    assert "cannot read this run's row" not in (errors["jr_waitbrokenjob"] or "")
    assert parked is None

    # And it starts again on the same database.
    await stack.stop_scheduler()
    await stack.start_scheduler()
    fourth = await stack.start_run("good")
    assert (await stack.wait_run("good", fourth)).job_run_state == "SUCCEEDED"
