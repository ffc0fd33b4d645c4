"""A SQLite write cancelled mid-statement leaves no lock behind (servicekit.db).

A scheduler stopped right after it started cancelled its retention loop while a SELECT of its
write transaction ran on aiosqlite's worker thread; SQLAlchemy took the cancel for a disconnect
and closed the connection without a rollback while the CancelledError's traceback still
referenced the statement's cursor, so SQLite kept the closed connection's transaction and
write lock, and the next scheduler on the file failed its migration with "database is
locked". The test cancels a write at that point, keeps the error as a log record would,
disposes the Database and then needs the file's write lock within a short time.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from sqlalchemy import text

from servicekit.db import Database, sqlite_url

# A write lock left behind waits out this timeout and fails; a free one is taken at once.
PROBE_TIMEOUT_SECONDS = 2.0
# A statement that runs for a while on the worker thread (seconds), so it is in flight
# when its task is cancelled.
SLOW_COUNT = text(
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) "
    "SELECT count(*) FROM c"
)


def _write_lock_free(path: Path) -> bool:
    """Whether another connection gets SQLite's write lock within PROBE_TIMEOUT_SECONDS."""
    conn = sqlite3.connect(path, timeout=PROBE_TIMEOUT_SECONDS, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError as exc:
        assert "locked" in str(exc), exc
        return False
    finally:
        conn.close()


async def test_a_write_cancelled_mid_statement_holds_no_lock_after_dispose(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    db = Database(sqlite_url(path))
    async with db.transaction() as conn:
        await conn.execute(text("CREATE TABLE t (x INTEGER)"))
    started = asyncio.Event()
    # Kept as a log record with exc_info keeps it: the error's traceback references the
    # statement's cursor.
    kept: list[BaseException] = []

    async def write() -> None:
        try:
            async with db.transaction() as conn:
                await conn.execute(text("INSERT INTO t VALUES (1)"))
                started.set()
                await conn.execute(SLOW_COUNT)
        except asyncio.CancelledError as exc:
            kept.append(exc)
            raise

    task = asyncio.create_task(write())
    await started.wait()
    await asyncio.sleep(0.05)  # the slow statement is running on the worker thread
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled() and kept
    await db.dispose()

    assert await asyncio.to_thread(_write_lock_free, path), "the cancelled write kept the lock"
    # A new Database on the file writes at once, and the cancelled write was rolled back.
    again = Database(sqlite_url(path))
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_SECONDS), again.transaction() as conn:
            await conn.execute(text("INSERT INTO t VALUES (2)"))
        async with again.read() as conn:
            assert (await conn.execute(text("SELECT x FROM t"))).scalars().all() == [2]
    finally:
        await again.dispose()
