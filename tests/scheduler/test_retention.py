"""History retention: old ledger rows, finished runs, run directories and spent events go;
anything still needed stays."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import grpc
import pytest
from sqlalchemy import func, select

from glue.v1 import glue_pb2
from scheduler_service.retention import Retention, acknowledge
from scheduler_service.tables import outbox, runs, trigger_fires
from tests.conftest import Stack
from tests.helpers.scripts import SLEEP, SUCCEED, write_script


async def _history(stack: Stack) -> tuple[int, set[str], dict[str, list[int]]]:
    """(ledger rows, run ids, each run's event sequences) in the scheduler's tables."""
    assert stack.scheduler is not None
    async with stack.scheduler.db.read() as conn:
        fires = (await conn.execute(select(func.count()).select_from(trigger_fires))).scalar_one()
        run_ids = set((await conn.execute(select(runs.c.run_id))).scalars())
        events: dict[str, list[int]] = {}
        for row in await conn.execute(select(outbox.c.run_id, outbox.c.seq).order_by(outbox.c.seq)):
            events.setdefault(row.run_id, []).append(row.seq)
    return int(fires), run_ids, events


async def test_prunes_old_history_and_keeps_what_is_needed(stack: Stack, tmp_path: Path) -> None:
    assert stack.scheduler is not None and stack.catalog is not None
    await stack.create_job(
        "quick",
        write_script(tmp_path, "quick.py", SUCCEED),
        execution_property=glue_pb2.ExecutionProperty(max_concurrent_runs=10),
    )
    await stack.create_job("slow", write_script(tmp_path, "slow.py", SLEEP))
    await stack.glue.CreateTrigger(
        glue_pb2.CreateTriggerRequest(
            name="kick", type="ON_DEMAND", actions=[glue_pb2.Action(job_name="quick")]
        )
    )
    finished = [await stack.start_run("quick") for _ in range(3)]
    await stack.glue.StartTrigger(glue_pb2.StartTriggerRequest(name="kick"))
    for run_id in finished:
        await stack.wait_run("quick", run_id)
    running = await stack.start_run("slow")
    await stack.wait_run("slow", running, {"RUNNING"})
    (fired,) = (await _history(stack))[1] - {*finished, running}  # the trigger's run
    await stack.wait_run("quick", fired)
    fires, run_ids, events = await _history(stack)
    assert fires == 1 and len(run_ids) == 5
    runs_dir = stack.scheduler_settings.runs_dir
    assert all((runs_dir / run_id).is_dir() for run_id in run_ids)
    retention = stack.scheduler.retention

    # Nothing is older than an hour ago: nothing goes.
    assert not await retention.prune(time.time() - 3600)
    assert await _history(stack) == (fires, run_ids, events)

    # Everything is older than now: finished runs, their directories, the ledger and every
    # superseded event go; the running run and each run's latest event stay (the catalog has
    # not acknowledged them).
    pruned = await retention.prune(time.time() + 1)
    assert (pruned.fires, pruned.runs, pruned.run_dirs) == (1, 4, 4)
    left_fires, left_runs, left_events = await _history(stack)
    assert (left_fires, left_runs) == (0, {running})
    assert left_events == {run_id: [seqs[-1]] for run_id, seqs in events.items()}
    assert pruned.events == sum(len(seqs) - 1 for seqs in events.values())
    assert sorted(p.name for p in runs_dir.iterdir() if p.is_dir() and p.name[0] != ".") == [
        running
    ]

    # Once the catalog acknowledged them, the old latest events of finished runs go too.
    async with stack.scheduler.db.transaction() as conn:
        await acknowledge(conn, max(seq for seqs in left_events.values() for seq in seqs))
    pruned = await retention.prune(time.time() + 1)
    assert pruned.events == len(left_events)
    assert (await _history(stack))[2] == {}

    # The catalog keeps the run history users read; a pruned run's log says why it is gone;
    # the running run still ends normally.
    for run_id in finished:
        assert (await stack.get_run("quick", run_id)).job_run_state == "SUCCEEDED"
    log_call = stack.glue.GetJobRunLog(
        glue_pb2.GetJobRunLogRequest(job_name="quick", run_id=finished[0])
    )
    with pytest.raises(grpc.aio.AioRpcError) as gone:
        async for _chunk in log_call:
            pass
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND
    assert "no longer kept" in str(gone.value.details())
    await stack.glue.BatchStopJobRun(
        glue_pb2.BatchStopJobRunRequest(job_name="slow", job_run_ids=[running])
    )
    assert (await stack.wait_run("slow", running)).job_run_state == "STOPPED"


async def test_acknowledge_never_moves_back(stack: Stack) -> None:
    assert stack.scheduler is not None
    db = stack.scheduler.db
    async with db.transaction() as conn:
        await acknowledge(conn, 7)
        await acknowledge(conn, 3)
    retention: Retention = stack.scheduler.retention
    assert await retention.acknowledged() == 7


async def test_catalog_acknowledges_what_it_applied(stack: Stack, tmp_path: Path) -> None:
    """The catalog acknowledges its applied position on connecting (and periodically)."""
    assert stack.scheduler is not None and stack.catalog is not None
    await stack.create_job("quick", write_script(tmp_path, "quick.py", SUCCEED))
    await stack.wait_run("quick", await stack.start_run("quick"))
    applied = await stack.catalog.consumer.cursor()
    assert applied > 0
    await stack.stop_catalog()
    await stack.start_catalog()
    retention = stack.scheduler.retention
    deadline = time.monotonic() + 10
    while await retention.acknowledged() < applied:
        assert time.monotonic() < deadline, "the catalog never acknowledged its position"
        await asyncio.sleep(0.05)
    assert await retention.acknowledged() == applied
