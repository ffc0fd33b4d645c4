"""Writers take their locks in one order (run rows, job rows, outbox counter) on PostgreSQL.

A run that ends fires the conditional triggers watching its job in the same transaction, and
that fire locks its actions' job rows - the rows StartRun locks before it takes the outbox
counter. When the ending run took the counter first, the two deadlocked and PostgreSQL rolled
one back: a StartJobRun or StartTrigger failed, or a run's end waited for a reaper.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from sqlalchemy import func, select

from glue.v1 import glue_pb2
from scheduler_service.tables import runs
from tests.conftest import Stack
from tests.helpers.scripts import SUCCEED, write_script

KICKS = 20
WATCHED_PER_KICK = 5
STARTERS = 4
STARTS_EACH = 60


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_runs_ending_into_a_fire_and_start_job_run_do_not_deadlock(
    stack: Stack, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert stack.scheduler is not None
    caplog.set_level(logging.WARNING)
    script = write_script(tmp_path, "ok.py", SUCCEED)
    many = glue_pb2.ExecutionProperty(max_concurrent_runs=1000)
    await stack.create_job("watched", script, execution_property=many)
    await stack.create_job("action", script, execution_property=many)
    await stack.glue.CreateTrigger(
        glue_pb2.CreateTriggerRequest(
            name="kick",
            type="ON_DEMAND",
            actions=[glue_pb2.Action(job_name="watched")] * WATCHED_PER_KICK,
        )
    )
    await stack.glue.CreateTrigger(
        glue_pb2.CreateTriggerRequest(
            name="then-action",
            type="CONDITIONAL",
            start_on_creation=True,
            predicate=glue_pb2.Predicate(
                logical="ANY",
                conditions=[
                    glue_pb2.Condition(
                        logical_operator="EQUALS", job_name="watched", state="SUCCEEDED"
                    )
                ],
            ),
            actions=[glue_pb2.Action(job_name="action")],
        )
    )

    async def kick() -> None:
        for _ in range(KICKS):
            await stack.glue.StartTrigger(glue_pb2.StartTriggerRequest(name="kick"))
            await asyncio.sleep(0.2)

    async def start_action() -> None:
        for _ in range(STARTS_EACH):
            await stack.start_run("action")

    # Any deadlock fails one of these calls (or shows in the log below).
    await asyncio.gather(kick(), *(start_action() for _ in range(STARTERS)))
    expected = {
        "watched": KICKS * WATCHED_PER_KICK,
        "action": STARTERS * STARTS_EACH + KICKS * WATCHED_PER_KICK,
    }
    async with asyncio.timeout(90):
        while True:
            async with stack.scheduler.db.read() as conn:
                counts = dict(
                    (
                        await conn.execute(
                            select(runs.c.job_name, func.count())
                            .where(runs.c.state == "SUCCEEDED")
                            .group_by(runs.c.job_name)
                        )
                    ).all()
                )
            if counts == expected:
                break
            await asyncio.sleep(0.5)
    assert "deadlock" not in caplog.text.lower()
