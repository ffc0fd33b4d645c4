"""A minutely schedule's missed due times, as if the scheduler had been down for a while."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time

from sqlalchemy import update

from scheduler_service.tables import triggers as scheduler_triggers
from servicekit.db import Database
from tests.conftest import Stack

MISSED = 4
"""Due times the rewind makes the trigger miss: the latest one and the three before it."""


async def clear_of_a_minute_boundary(seconds: float) -> None:
    """Return at once if ``seconds`` of the current minute are left, otherwise just after the
    next minute boundary: a minutely trigger activated now cannot fire within ``seconds``."""
    into = time.time() % 60
    if into > 60 - seconds:
        await asyncio.sleep(61 - into)


async def restart_after_missed_fires(stack: Stack, trigger: str, *, grace: float) -> float:
    """With the stack's scheduler stopped, rewind the minutely (``cron(* * * * ? *)``) trigger
    ``trigger`` to before its last four due times, then start the scheduler with
    ``misfire_grace_seconds=grace``. Returns the latest due time (epoch seconds).

    Late in a minute it first waits for the next one: a boundary passing before the scheduler
    is back would add a fifth due time, and the latest would fall out of a 60 s grace.
    """
    assert stack.scheduler is None, "stop the scheduler first"
    await clear_of_a_minute_boundary(10)
    last_due = math.floor(time.time() / 60) * 60
    db = Database(stack.scheduler_url)
    try:
        async with db.transaction() as conn:
            await conn.execute(
                update(scheduler_triggers)
                .where(scheduler_triggers.c.name == trigger)
                .values(next_fire_at=last_due - 60 * (MISSED - 1))
            )
    finally:
        await db.dispose()
    stack.scheduler_settings = dataclasses.replace(
        stack.scheduler_settings, misfire_grace_seconds=grace
    )
    await stack.start_scheduler()
    return last_due
