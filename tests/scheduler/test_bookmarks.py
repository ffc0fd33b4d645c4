"""Job bookmarks in the scheduler: commits, the next run's state, resets and rewinds, the
history of versions, and job incarnations - on SQLite and PostgreSQL.

Commits are made as a settling run makes them (``bookmarks.commit`` inside a transaction on the
scheduler's database); the jobs are created through the catalog, as in production.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Index, Table, select

from glue.v1 import glue_pb2
from scheduler_service import bookmarks
from scheduler_service.bookmarks import BookmarkEntry
from scheduler_service.tables import job_bookmark_history, job_bookmarks, metadata
from servicekit.errors import EntityNotFoundException
from tests.conftest import Stack
from tests.helpers.bookmarks import commit, registered_incarnation
from tests.helpers.scripts import SUCCEED, write_script

R1, R2, R3, R4 = (f"jr_{n:064x}" for n in range(1, 5))


def state(offset: int) -> str:
    """A committed state, as a job's bookmark library writes it."""
    return json.dumps({"datasource0": {"jsonClass": "S3", "offset": offset}})


@pytest.fixture
async def job(stack: Stack, tmp_path: Path) -> str:
    """A job named ``etl``, registered with the scheduler."""
    await stack.create_job("etl", write_script(tmp_path, "ok.py", SUCCEED))
    await registered_incarnation(stack, "etl")
    return "etl"


async def _get(stack: Stack, job: str, run_id: str | None = None) -> BookmarkEntry:
    assert stack.scheduler is not None
    incarnation = await registered_incarnation(stack, job)
    async with stack.scheduler.db.read() as conn:
        return await bookmarks.get(conn, job, incarnation, run_id=run_id)


async def _reset(stack: Stack, job: str, run_id: str | None = None) -> BookmarkEntry:
    assert stack.scheduler is not None
    incarnation = await registered_incarnation(stack, job)
    async with stack.scheduler.db.transaction() as conn:
        return await bookmarks.reset(conn, job, incarnation, run_id=run_id, now=time.time())


async def _next(stack: Stack, job: str) -> str | None:
    assert stack.scheduler is not None
    return await bookmarks.state_for_next_run(stack.scheduler.db, job)


async def _history(stack: Stack, job: str) -> list[tuple[int, str, str, str | None, str | None]]:
    """(Version, change, RunId, JobBookmark, rewound run) of every version, oldest first."""
    assert stack.scheduler is not None
    h = job_bookmark_history.c
    async with stack.scheduler.db.read() as conn:
        rows = await conn.execute(
            select(h.version, h.change, h.run_id, h.job_bookmark, h.rewound_run_id)
            .where(h.job_name == job)
            .order_by(h.version)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


async def _rows(stack: Stack, job: str) -> tuple[int, int]:
    """How many entry rows and history rows the job has, of any incarnation."""
    assert stack.scheduler is not None
    async with stack.scheduler.db.read() as conn:
        entries = (
            await conn.execute(select(job_bookmarks).where(job_bookmarks.c.job_name == job))
        ).all()
        history = (
            await conn.execute(
                select(job_bookmark_history).where(job_bookmark_history.c.job_name == job)
            )
        ).all()
    return len(entries), len(history)


async def test_commits_advance_the_entry_and_feed_the_next_run(stack: Stack, job: str) -> None:
    assert await _next(stack, job) is None
    with pytest.raises(EntityNotFoundException, match=r"^Job etl has no job bookmark: none of"):
        await _get(stack, job)

    # The text is kept verbatim (spacing, key order, non-ASCII), not re-serialised.
    first = '{"b": 1,  "a": "é"}'
    await commit(stack, job, R1, first)
    await commit(stack, job, R2, state(2), attempt=1, previous_run_id=R1)

    assert await _get(stack, job) == BookmarkEntry(
        job_name="etl",
        version=2,
        run=2,
        attempt=1,
        run_id=R2,
        previous_run_id=R1,
        job_bookmark=state(2),
    )
    assert await _get(stack, job, R1) == BookmarkEntry(
        job_name="etl",
        version=1,
        run=1,
        attempt=0,
        run_id=R1,
        previous_run_id=None,
        job_bookmark=first,
    )
    assert await _next(stack, job) == state(2)
    assert await _history(stack, job) == [
        (1, "COMMIT", R1, first, None),
        (2, "COMMIT", R2, state(2), None),
    ]


async def test_reset_clears_the_bookmark_and_the_next_commit_carries_on(
    stack: Stack, job: str
) -> None:
    await commit(stack, job, R1, state(1))
    await commit(stack, job, R2, state(2))

    cleared = await _reset(stack, job)
    # Version counts the reset; Run, RunId ... still name the last commit; no bookmark at all.
    assert cleared == BookmarkEntry(
        job_name="etl",
        version=3,
        run=2,
        attempt=0,
        run_id=R2,
        previous_run_id=None,
        job_bookmark=None,
    )
    assert await _get(stack, job) == cleared
    assert await _next(stack, job) is None
    # Resetting again changes nothing but Version (a retried call is harmless).
    assert await _reset(stack, job) == BookmarkEntry(**{**_fields(cleared), "version": 4})

    await commit(stack, job, R3, state(3))
    after = await _get(stack, job)
    assert (after.version, after.run, after.run_id, after.job_bookmark) == (5, 3, R3, state(3))
    assert [(v, change) for v, change, *_ in await _history(stack, job)] == [
        (1, "COMMIT"),
        (2, "COMMIT"),
        (3, "RESET"),
        (4, "RESET"),
        (5, "COMMIT"),
    ]


async def test_reset_to_a_run_rewinds_to_the_state_before_its_commit(
    stack: Stack, job: str
) -> None:
    for run_id, offset in ((R1, 1), (R2, 2), (R3, 3)):
        await commit(stack, job, run_id, state(offset))

    rewound = await _reset(stack, job, R2)
    assert rewound == BookmarkEntry(
        job_name="etl",
        version=4,
        run=3,
        attempt=0,
        run_id=R3,
        previous_run_id=None,
        job_bookmark=state(1),
    )
    assert await _next(stack, job) == state(1)
    # Before the first commit there was nothing: the next run starts from the beginning.
    assert (await _reset(stack, job, R1)).job_bookmark is None
    assert await _next(stack, job) is None
    # Rewinds remove nothing: a later run's commit is still there to rewind to.
    assert (await _reset(stack, job, R3)).job_bookmark == state(2)
    assert (await _get(stack, job, R2)).job_bookmark == state(2)

    # Runs are ordered by their commits: R4 started from the rewound state, so rewinding to it
    # goes back there.
    await commit(stack, job, R4, state(4))
    assert (await _reset(stack, job, R4)).job_bookmark == state(2)
    assert [row[1:] for row in await _history(stack, job)][3:] == [
        ("REWIND", R3, state(1), R2),
        ("REWIND", R3, None, R1),
        ("REWIND", R3, state(2), R3),
        ("COMMIT", R4, state(4), None),
        ("REWIND", R4, state(2), R4),
    ]

    before = await _get(stack, job)
    message = r"^Job run jr_nope of job etl has committed no job bookmark\.$"
    with pytest.raises(EntityNotFoundException, match=message):
        await _reset(stack, job, "jr_nope")
    with pytest.raises(EntityNotFoundException, match=message):
        await _get(stack, job, "jr_nope")
    assert await _get(stack, job) == before


async def test_a_job_deleted_and_re_created_starts_without_a_bookmark(
    stack: Stack, job: str, tmp_path: Path
) -> None:
    assert stack.catalog is not None
    first = await registered_incarnation(stack, job)
    await commit(stack, job, R1, state(1))
    await stack.glue.DeleteJob(glue_pb2.DeleteJobRequest(job_name=job))
    await stack.catalog.jobs.wait_pushed([job])
    # The scheduler's DeleteJob dropped the entry and its history with the registration.
    assert await _rows(stack, job) == (0, 0)

    await stack.create_job(job, write_script(tmp_path, "again.py", SUCCEED))
    assert await registered_incarnation(stack, job) != first
    assert await _next(stack, job) is None
    with pytest.raises(EntityNotFoundException, match="has no job bookmark"):
        await _get(stack, job)
    await commit(stack, job, R2, state(2))
    entry = await _get(stack, job)
    assert (entry.version, entry.run, entry.run_id) == (1, 1, R2)


@pytest.mark.slow  # a scheduler restart, and registration pushes left to give up
async def test_an_earlier_incarnations_entry_is_never_the_new_jobs(
    stack: Stack, job: str, tmp_path: Path
) -> None:
    # The job is deleted and re-created while the scheduler is down: the reconciler then
    # registers the new job over the old one, and no DeleteJob ever reaches the scheduler.
    first = await registered_incarnation(stack, job)
    await commit(stack, job, R1, state(1))
    assert stack.catalog is not None
    await stack.stop_scheduler()
    await stack.glue.DeleteJob(glue_pb2.DeleteJobRequest(job_name=job))
    await stack.catalog.jobs.wait_pushed([job], timeout=10)  # given up: lost
    await stack.create_job(job, write_script(tmp_path, "again.py", SUCCEED))
    await stack.catalog.jobs.wait_pushed([job], timeout=10)
    await stack.start_scheduler()
    second = await _wait_registered(stack, job, other_than=first)

    assert await _rows(stack, job) == (1, 1)  # the old entry is still there ...
    assert await _next(stack, job) is None  # ... but it is not the new job's
    assert stack.scheduler is not None
    async with stack.scheduler.db.read() as conn:
        with pytest.raises(EntityNotFoundException, match="has no job bookmark"):
            await bookmarks.get(conn, job, second)
        # Nor is a run of the old job found through the new one.
        with pytest.raises(EntityNotFoundException, match="has no job bookmark"):
            await bookmarks.get(conn, job, second, run_id=R1)

    # The new job's first commit replaces it, history and all.
    await commit(stack, job, R2, state(2))
    assert (await _get(stack, job)).version == 1
    assert await _history(stack, job) == [(1, "COMMIT", R2, state(2), None)]


async def _wait_registered(stack: Stack, job: str, *, other_than: str) -> str:
    """The job's incarnation in the scheduler once it is not ``other_than`` (the reconciler)."""
    deadline = time.monotonic() + 15
    while True:
        incarnation = await registered_incarnation(stack, job)
        if incarnation != other_than:
            return incarnation
        assert time.monotonic() < deadline, "the re-created job was never registered"
        await asyncio.sleep(0.1)


async def test_a_run_of_a_deleted_job_commits_nothing(stack: Stack, tmp_path: Path) -> None:
    assert stack.catalog is not None
    await stack.create_job("etl", write_script(tmp_path, "ok.py", SUCCEED))
    old_run = await stack.start_run("etl")
    await stack.wait_run("etl", old_run)
    await stack.glue.DeleteJob(glue_pb2.DeleteJobRequest(job_name="etl"))
    await stack.catalog.jobs.wait_pushed(["etl"])

    # Deleted: the run's commit has no job to go to.
    assert stack.scheduler is not None
    async with stack.scheduler.db.transaction() as conn:
        await bookmarks.commit(
            conn,
            job_name="etl",
            run_id=old_run,
            previous_run_id=None,
            attempt=0,
            state=state(1),
            now=time.time(),
        )
    assert await _rows(stack, "etl") == (0, 0)

    # Re-created: the old run is not the new job's.
    await stack.create_job("etl", write_script(tmp_path, "again.py", SUCCEED))
    await commit(stack, "etl", old_run, state(1))
    assert await _rows(stack, "etl") == (0, 0)
    await commit(stack, "etl", R1, state(1))
    assert (await _get(stack, "etl")).run_id == R1


async def test_what_a_run_cannot_commit_is_logged_not_raised(
    stack: Stack, job: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="scheduler_service.bookmarks")
    await commit(stack, job, R1, "{not json")
    assert await _rows(stack, job) == (0, 0)
    await commit(stack, job, R1, state(1))
    await commit(stack, job, R1, state(9))  # the same run again
    assert await _history(stack, job) == [(1, "COMMIT", R1, state(1), None)]
    reasons = [getattr(r, "reason", None) for r in caplog.records]
    assert reasons == ["the committed state is not JSON text", "the run already committed"]


async def test_concurrent_first_commits_are_both_recorded(stack: Stack, job: str) -> None:
    # Runs of a job with MaxConcurrentRuns > 1 may settle at once; on PostgreSQL both first
    # commits find no entry, and the one that loses the insert goes again as the second.
    await asyncio.gather(commit(stack, job, R1, state(1)), commit(stack, job, R2, state(2)))
    entry = await _get(stack, job)
    assert (entry.version, entry.run) == (2, 2)
    assert sorted(run_id for _, _, run_id, _, _ in await _history(stack, job)) == [R1, R2]


async def test_the_migration_creates_the_tables_as_declared(stack: Stack) -> None:
    assert stack.scheduler is not None
    ours = {job_bookmarks.name, job_bookmark_history.name}
    async with stack.scheduler.db.engine.connect() as conn:
        diff = await conn.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
        )
    assert [d for d in diff if _table_of(d) in ours] == []


def _table_of(diff: Any) -> str:
    """The table a compare_metadata difference is about (modify_* ones come as lists)."""
    change = diff[0] if isinstance(diff, list) else diff
    for part in change[1:]:
        if isinstance(part, Table):
            return part.name
        if isinstance(part, Column | Index) and isinstance(part.table, Table):
            return part.table.name
        if isinstance(part, str):
            return part
    return ""


def _fields(entry: BookmarkEntry) -> dict[str, object]:
    return {name: getattr(entry, name) for name in entry.__dataclass_fields__}
