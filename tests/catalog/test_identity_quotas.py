"""A per-identity quota is exact near its limit (``identity_quotas.IdentityQuota``): a call is
refused only on a count that nothing in flight or just finished can have skewed.

On the catalog's real database and jobs table; the interleavings that once refused a call with
room left are made deterministic by holding one count back until another call has written.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select

from catalog_service.identity_quotas import JobQuota
from catalog_service.tables import jobs
from servicekit.db import Database
from servicekit.errors import ResourceNumberLimitExceededException


class HeldBackCounts(JobQuota):
    """JobQuota whose counts after the first wait for ``release`` (the database still counts)."""

    def __init__(self, db: Database, limit: int) -> None:
        super().__init__(db, limit, jobs, jobs.c.created_by)
        self.release = asyncio.Event()
        self.counts = 0

    async def _owned(self, who: str | None) -> int:
        self.counts += 1
        if self.counts > 1:
            await self.release.wait()
        return await super()._owned(who)


@pytest.fixture
async def catalog_db(database_urls: tuple[str, str]) -> AsyncIterator[Database]:
    db = Database(database_urls[0])
    try:
        yield db
    finally:
        await db.dispose()


async def add_job(db: Database, name: str) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            jobs.insert().values(
                name=name, incarnation="i", version=1, definition=b"", tags="{}", created_on=0.0
            )
        )


async def job_count(db: Database) -> int:
    async with db.read() as conn:
        return int((await conn.execute(select(func.count()).select_from(jobs))).scalar_one())


async def test_a_count_that_sees_a_write_finished_during_it_refuses_nothing(
    catalog_db: Database,
) -> None:
    """F's count sees A's job, which A also added to the bound when it finished: counted
    twice, the bound read 2 of 2 with one job stored, and F was refused."""
    quota = HeldBackCounts(catalog_db, limit=2)
    a_written = asyncio.Event()

    async def create(name: str, written: asyncio.Event | None = None) -> None:
        async with quota.hold():
            await add_job(catalog_db, name)
        if written is not None:
            written.set()

    a = asyncio.create_task(create("a", a_written))
    f = asyncio.create_task(create("f"))
    await a_written.wait()
    quota.release.set()
    await asyncio.gather(a, f)
    assert await job_count(catalog_db) == 2
    # Full now, by an exact count.
    with pytest.raises(ResourceNumberLimitExceededException, match="already has 2 jobs"):
        async with quota.hold():
            await add_job(catalog_db, "third")
    assert await job_count(catalog_db) == 2


async def test_a_call_near_the_quota_waits_for_one_in_flight_rather_than_be_refused(
    catalog_db: Database,
) -> None:
    """One job stored, quota 2: a create in flight that ends up writing nothing (its name was
    taken, say) must not cost the next caller its place."""
    quota = JobQuota(catalog_db, 2, jobs, jobs.c.created_by)
    await add_job(catalog_db, "existing")
    in_flight = asyncio.Event()
    fail = asyncio.Event()

    async def failing_create() -> None:
        async with quota.hold():
            in_flight.set()
            await fail.wait()
            raise RuntimeError("name taken")

    failing = asyncio.create_task(failing_create())
    await in_flight.wait()

    async def create() -> None:
        async with quota.hold():
            await add_job(catalog_db, "next")

    waiting = asyncio.create_task(create())
    await asyncio.sleep(0.05)
    assert not waiting.done()  # the bound (1 stored + 1 in flight) leaves no room: it waits
    fail.set()
    with pytest.raises(RuntimeError):
        await failing
    async with asyncio.timeout(5):
        await waiting
    assert await job_count(catalog_db) == 2


async def test_an_identitys_turns_are_dropped_once_no_call_holds_or_waits_for_them(
    catalog_db: Database,
) -> None:
    quota = JobQuota(catalog_db, 1, jobs, jobs.c.created_by)
    in_flight = asyncio.Event()
    write = asyncio.Event()

    async def create(name: str, gate: asyncio.Event | None = None) -> None:
        async with quota.hold():
            if gate is not None:
                in_flight.set()
                await gate.wait()
            await add_job(catalog_db, name)

    first = asyncio.create_task(create("first", write))
    await in_flight.wait()
    assert quota._exact_turns == {}  # its check is over
    # Near the quota: these take turns behind the one in flight; one gives up waiting.
    waiting = [asyncio.create_task(create(f"w{i}")) for i in range(3)]
    await asyncio.sleep(0.05)
    assert [turns.users for turns in quota._exact_turns.values()] == [3]
    waiting[0].cancel()
    write.set()
    results = await asyncio.gather(first, *waiting, return_exceptions=True)
    assert results[0] is None
    assert isinstance(results[1], asyncio.CancelledError)
    assert all(isinstance(r, ResourceNumberLimitExceededException) for r in results[2:])
    assert quota._exact_turns == {}
    assert await job_count(catalog_db) == 1
