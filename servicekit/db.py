"""Database engines for both services: SQLite (embedded, WAL) or PostgreSQL (asyncpg).

Everything above this module uses SQLAlchemy Core on an ``AsyncConnection`` obtained from
``Database.transaction()`` (or ``read()``, ``statement()``). Database errors are translated
here, once: a broken integrity rule (IntegrityError) leaves as ``errors.ConstraintViolation``,
so nothing above this module sees ``sqlalchemy.exc``.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event, text
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from servicekit.errors import ConstraintViolation
from servicekit.file_modes import create_private_file, private_file

T = TypeVar("T")

# How long a SQLite writer waits for the write lock before failing ("database is locked").
SQLITE_BUSY_TIMEOUT_MS = 30_000
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")

# ``Database.transaction(durable=False)`` on PostgreSQL: this transaction's commit does not wait
# for the WAL flush.
_NOT_DURABLE = text("SET LOCAL synchronous_commit TO OFF")

log = logging.getLogger(__name__)


def sqlite_url(path: Path) -> str:
    """The SQLAlchemy URL of a SQLite file."""
    return f"sqlite+aiosqlite:///{path}"


async def uncancellable(awaitable: Awaitable[T]) -> T:
    """Await ``awaitable`` to the end even if the caller is cancelled meanwhile.

    A commit or rollback abandoned half-way leaves the connection in an unknown state; the
    caller still sees its CancelledError, but only after the database call finished.
    """
    task = asyncio.ensure_future(awaitable)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await task
        raise


class Database:
    """One engine and the transaction discipline every query goes through."""

    def __init__(self, url: str, *, pool_size: int = 30) -> None:
        parsed = make_url(url)
        self.url = url
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                # SQLite gives its -wal and -shm files the database file's mode: creating it
                # 0600 keeps all three from other users (jobs may run as one).
                path = Path(parsed.database)
                path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                create_private_file(path)
                for suffix in SQLITE_SIDE_FILES:
                    private_file(Path(f"{path}{suffix}"))
            self.engine: AsyncEngine = create_async_engine(
                url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
            )
            _configure_sqlite(self.engine)
            # SQLite has one writer per file, and this process is the only one using it (see
            # SingleProcessLock). Writers queue here, in arrival order, rather than in SQLite's
            # busy handler, which polls with sleeps of up to 100 ms: under load that left the
            # lock idle between writers and made some wait seconds while later ones went first.
            self._sqlite_writer: asyncio.Lock | None = asyncio.Lock()
        elif self.dialect == "postgresql":
            self._sqlite_writer = None
            # No pre-ping: it costs a round trip per checkout; a dropped connection fails
            # one call (the pool then replaces it) and clients retry UNAVAILABLE.
            # No overflow: an overflow connection is closed when it is given back, so bursts
            # (a batch of admissions answered at once) opened and closed ~40 connections a
            # second, each a new server process; callers past the pool wait for a connection.
            self.engine = create_async_engine(url, pool_size=pool_size, max_overflow=0)
        else:
            raise ValueError(
                f"unsupported database URL {parsed.render_as_string(hide_password=True)}: "
                "use sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER@HOST/DB"
            )

    @property
    def is_sqlite(self) -> bool:
        """True for the embedded SQLite store (single process per file)."""
        return self.dialect == "sqlite"

    @asynccontextmanager
    async def transaction(self, *, durable: bool = True) -> AsyncIterator[AsyncConnection]:
        """A short transaction: committed on success, rolled back on any error.

        On SQLite it begins IMMEDIATE (takes the write lock up front), so a read-then-write
        transaction cannot fail half-way on a lock upgrade; SQLite has one writer anyway, and
        this process's writers take turns first (first come, first served).

        ``durable=False``: on PostgreSQL its commit does not wait for the write-ahead log to
        reach the disk (``synchronous_commit`` off for this transaction; about 2 ms per commit
        on the machines measured). A crash of the database server may then lose it, together
        with every later commit (never an earlier one, never half of it): only for writes that
        are made again from elsewhere when lost. A later durable commit that writes anything
        flushes them with it. (SQLite's commits here never wait for the disk: WAL mode with
        ``synchronous=NORMAL``.)
        """
        if self._sqlite_writer is None:
            async with self._transaction() as conn:
                if not durable:
                    await conn.execute(_NOT_DURABLE)
                yield conn
            return
        writer = self._sqlite_writer
        try:
            # asyncio.timeout, not wait_for: wait_for runs acquire() as a separate task, and a
            # caller cancelled just as that task took the lock would leave the lock held for
            # good. Lock.acquire itself either returns holding it or raises holding nothing.
            async with asyncio.timeout(SQLITE_BUSY_TIMEOUT_MS / 1000):
                await writer.acquire()
        except TimeoutError:
            # What SQLite itself raises when its busy timeout runs out.
            raise OperationalError(
                "BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked")
            ) from None
        try:
            async with self._transaction() as conn:
                yield conn
        finally:
            writer.release()

    @asynccontextmanager
    async def statement(self) -> AsyncIterator[AsyncConnection]:
        """A connection for ONE writing statement, which is atomic by itself.

        On PostgreSQL it runs in autocommit: no BEGIN and COMMIT round trips around it (each
        is a send that wakes a backend, the largest cost of a short write). On SQLite it is
        ``transaction()``, which takes this process's writer turn. Two statements in one block
        would not be one transaction on PostgreSQL: use ``transaction()`` for that.
        """
        if self.is_sqlite:
            async with self.transaction() as conn:
                yield conn
            return
        async with self.engine.connect() as conn:
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            with _translated():
                yield conn

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncConnection]:
        conn = await self.engine.connect()
        try:
            await conn.begin()
            with _translated():
                try:
                    yield conn
                except BaseException:
                    await uncancellable(conn.rollback())
                    raise
                # PostgreSQL checks deferred constraints at the commit.
                await uncancellable(conn.commit())
        finally:
            await uncancellable(conn.close())

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads only: a plain (deferred) transaction, rolled back at the end.

        On SQLite this takes no write lock, so reads run beside a writer under WAL.
        """
        async with self.engine.connect() as conn:
            if self.is_sqlite:
                conn = await conn.execution_options(read_only=True)
            else:
                # A lone SELECT needs no BEGIN/ROLLBACK round trips around it.
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            yield conn

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


@contextmanager
def _translated() -> Iterator[None]:
    """The storage boundary's one translation of database errors into domain errors."""
    try:
        yield
    except IntegrityError as exc:
        # The driver's text names tables and constraints: it goes to the log, not the client.
        log.warning("the database refused a write: %s", exc.orig)
        raise ConstraintViolation(
            "The request conflicted with a concurrent change; try again."
        ) from exc


def _configure_sqlite(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (pysqlite's own
        # implicit BEGIN would defeat BEGIN IMMEDIATE below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        read_only = conn.get_execution_options().get("read_only", False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    @event.listens_for(sync_engine, "handle_error")
    def _on_error(context: ExceptionContext) -> None:
        # A cancelled statement still runs to its end on aiosqlite's worker thread, and the
        # rollback sent next runs after it: the connection is still good. Taken for a
        # disconnect, it was closed without a rollback, and while the statement's cursor was
        # still referenced (from the CancelledError's traceback) SQLite kept the closed
        # connection's transaction and write lock. Kept, it is rolled back and pooled again.
        if isinstance(context.original_exception, asyncio.CancelledError):
            context.is_disconnect = False


class SingleProcessLock:
    """An exclusive lock on a file beside a SQLite database: one service process per file.

    SQLite mode is single-replica; a second process on the same file would fire and run
    everything twice, so it refuses to start instead.
    """

    def __init__(self, database_url: str) -> None:
        parsed = make_url(database_url)
        self.path = Path(f"{parsed.database}.lock") if parsed.database else None
        self._fd: int | None = None

    def acquire(self, service: str) -> None:
        """Take the lock or raise RuntimeError naming the file."""
        import fcntl
        import os

        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RuntimeError(
                f"another {service} is already using {self.path.with_suffix('')}; "
                "SQLite mode runs one process per database file (use PostgreSQL for replicas)"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        """Drop the lock."""
        import os

        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
