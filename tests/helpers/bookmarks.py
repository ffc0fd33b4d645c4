"""Job bookmarks committed as a settling run would: ``bookmarks.commit`` in a transaction on the
in-process scheduler's database (no API lets a run commit one yet)."""

from __future__ import annotations

import time

from scheduler_service import bookmarks, registry
from tests.conftest import Stack


async def registered_incarnation(stack: Stack, job: str) -> str:
    """The job's incarnation in the scheduler, once the catalog's registration push landed."""
    assert stack.catalog is not None and stack.scheduler is not None
    await stack.catalog.jobs.wait_pushed([job])
    async with stack.scheduler.db.read() as conn:
        registered = await registry.get_job(conn, job)
    assert registered is not None and not registered.deleted, f"job {job} is not registered"
    return registered.incarnation


async def commit(
    stack: Stack,
    job: str,
    run_id: str,
    state: str,
    *,
    attempt: int = 0,
    previous_run_id: str | None = None,
) -> None:
    """Commit ``state`` for ``run_id`` of ``job`` (registered first, as a run's job always is)."""
    assert stack.scheduler is not None
    await registered_incarnation(stack, job)
    async with stack.scheduler.db.transaction() as conn:
        await bookmarks.commit(
            conn,
            job_name=job,
            run_id=run_id,
            previous_run_id=previous_run_id,
            attempt=attempt,
            state=state,
            now=time.time(),
        )
