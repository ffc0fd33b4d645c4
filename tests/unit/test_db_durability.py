"""Commits that do not wait for the disk (``Database.transaction(durable=False)``, PostgreSQL).

The catalog's event consumer commits its batches so and flushes them (``flush_applied``) before
it acknowledges their position to the scheduler, which may then prune the events it would need
to send again after a crash of the database server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from catalog_service.event_consumer import flush_applied
from servicekit.db import Database
from tests.helpers.databases import postgres_database

pytestmark = pytest.mark.postgres


@pytest.fixture
async def catalog_db(postgres_template: str) -> AsyncIterator[Database]:
    """A migrated catalog database of the test's own."""
    async with postgres_database(postgres_template, pool_size=2) as database:
        yield database


async def synchronous_commit(db: Database, *, durable: bool) -> str:
    async with db.transaction(durable=durable) as conn:
        return str((await conn.execute(text("SHOW synchronous_commit"))).scalar_one())


async def test_only_that_transaction_skips_the_wait(catalog_db: Database) -> None:
    assert await synchronous_commit(catalog_db, durable=False) == "off"
    # SET LOCAL: the pooled connection goes back as it was.
    assert await synchronous_commit(catalog_db, durable=True) == "on"
    async with catalog_db.statement() as conn:
        assert (await conn.execute(text("SHOW synchronous_commit"))).scalar_one() == "on"


async def test_flush_applied_flushes_what_was_committed_before(catalog_db: Database) -> None:
    for _ in range(5):
        async with catalog_db.transaction(durable=False) as conn:
            await conn.execute(text("UPDATE catalog_event_cursor SET last_seq = last_seq + 1"))
        async with catalog_db.statement() as conn:
            committed = (
                await conn.execute(text("SELECT pg_current_wal_insert_lsn()"))
            ).scalar_one()
        await flush_applied(catalog_db)
        async with catalog_db.statement() as conn:
            flushed = (
                await conn.execute(
                    text("SELECT pg_current_wal_flush_lsn() >= CAST(:lsn AS pg_lsn)"),
                    {"lsn": committed},
                )
            ).scalar_one()
        assert flushed
