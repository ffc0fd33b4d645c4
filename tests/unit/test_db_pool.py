"""The PostgreSQL connection pool keeps its connections through bursts (servicekit.db).

A burst of calls larger than the pool (a batch of admissions answered at once) must wait for
pooled connections rather than open extra ones that are closed on return: each would be a new
server process, opened and torn down again at every burst."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from servicekit.db import Database
from tests.helpers.databases import postgres_database

pytestmark = pytest.mark.postgres


@pytest.fixture
async def db() -> AsyncIterator[Database]:
    async with postgres_database(pool_size=4) as database:
        yield database


async def test_bursts_larger_than_the_pool_reuse_its_connections(db: Database) -> None:
    async def backend_pid() -> int:
        async with db.statement() as conn:
            # Long enough that the whole burst wants a connection at once.
            await conn.execute(text("SELECT pg_sleep(0.05)"))
            return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())

    pids: set[int] = set()
    for _ in range(3):
        pids.update(await asyncio.gather(*(backend_pid() for _ in range(12))))
    assert len(pids) <= 4, f"{len(pids)} server processes for a pool of 4"
