"""One run event the scheduler cannot deliver never holds back the catalog's event stream.

A run whose record is larger than a gRPC message (its arguments add up to 17 MiB), or an event
row that does not decode, used to break the stream at that event on every reconnect: the
catalog received no run event at all any more, for anyone, restarts included. Now such an
event is quarantined (kept, marked, replaced by a small one), the stream goes on, and the run
still reaches its state in the catalog with a message saying its record could not be shown.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path

from sqlalchemy import insert, select

from glue.v1 import glue_pb2
from scheduler_service import outbox
from scheduler_service.tables import jobs, runs
from servicekit.db import Database
from tests.conftest import Stack
from tests.helpers.scripts import write_script

HUGE = 17 * 1024 * 1024


async def _incarnation(db: Database, job: str) -> str:
    async with db.read() as conn:
        return str(
            (await conn.execute(select(jobs.c.incarnation).where(jobs.c.name == job))).scalar_one()
        )


async def _write_run_and_events(
    db: Database, job: str, state: str, payloads: list[bytes], run_id: str
) -> None:
    """A run row and its events, as a scheduler that let them through would have left them."""
    incarnation = await _incarnation(db, job)
    now = time.time()
    async with db.transaction() as conn:
        await conn.execute(
            insert(runs).values(
                run_id=run_id,
                job_name=job,
                job_incarnation=incarnation,
                state=state,
                attempt=0,
                max_retries=0,
                timeout_minutes=5,
                created_at=now,
                updated_at=now,
                completed_at=now,
                record='{"Arguments": {}}',
            )
        )
        await outbox.append_many(conn, [(run_id, p, incarnation) for p in payloads])


def _huge_run(run_id: str, job: str, state: str) -> bytes:
    run = glue_pb2.JobRun(id=run_id, job_name=job, job_run_state=state, attempt=0)
    run.started_on.GetCurrentTime()
    run.arguments["--blob"] = "x" * HUGE
    return run.SerializeToString()


async def _wait_for_job(db: Database, job: str) -> None:
    for _ in range(200):
        async with db.read() as conn:
            if (await conn.execute(select(jobs.c.name).where(jobs.c.name == job))).first():
                return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the scheduler never got job {job}")


async def test_an_undeliverable_event_is_quarantined_and_the_stream_goes_on(
    stack: Stack, tmp_path: Path
) -> None:
    script = write_script(tmp_path, "ok.py", "print('ok')\n")
    await stack.create_job("big", script)
    await stack.create_job("small", script)
    db = Database(stack.scheduler_url)
    try:
        await _wait_for_job(db, "big")
        huge_id = "jr_" + secrets.token_hex(32)
        broken_id = "jr_" + secrets.token_hex(32)
        await _write_run_and_events(
            db,
            "big",
            "SUCCEEDED",
            [_huge_run(huge_id, "big", "RUNNING"), _huge_run(huge_id, "big", "SUCCEEDED")],
            huge_id,
        )
        await _write_run_and_events(db, "big", "FAILED", [b"\xff\xff\xff not a JobRun"], broken_id)

        # Other runs' events still reach the catalog.
        run_id = await stack.start_run("small")
        assert (await stack.wait_run("small", run_id)).job_run_state == "SUCCEEDED"

        # The run whose record is too large reaches its final state, without its arguments.
        huge = await stack.wait_run("big", huge_id, {"SUCCEEDED"})
        assert not huge.arguments
        assert "could not deliver this run's full record" in huge.error_message
        broken = await stack.wait_run("big", broken_id, {"FAILED"})
        assert "not a decodable JobRun" in broken.error_message

        # Kept and marked in the scheduler, and counted.
        assert stack.scheduler is not None
        assert stack.scheduler.feed.quarantined >= 3
        async with db.read() as conn:
            marked = (
                await conn.execute(
                    select(outbox.outbox.c.run_id, outbox.outbox.c.original_payload).where(
                        outbox.outbox.c.quarantined.is_not(None)
                    )
                )
            ).all()
        assert sorted(r.run_id for r in marked) == sorted([huge_id, huge_id, broken_id])
        assert max(len(r.original_payload) for r in marked) > HUGE

        # After both services restart - and with another such event written while they were
        # down - events still flow.
        await stack.stop_catalog()
        await stack.stop_scheduler()
        later_id = "jr_" + secrets.token_hex(32)
        await _write_run_and_events(
            db, "big", "SUCCEEDED", [_huge_run(later_id, "big", "SUCCEEDED")], later_id
        )
        await stack.start_scheduler()
        await stack.start_catalog()
        run_id = await stack.start_run("small")
        assert (await stack.wait_run("small", run_id)).job_run_state == "SUCCEEDED"
        later = await stack.wait_run("big", later_id, {"SUCCEEDED"})
        assert "could not deliver" in later.error_message
    finally:
        await db.dispose()
