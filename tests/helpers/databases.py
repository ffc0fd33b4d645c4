"""Fresh databases for tests: a SQLite file, or a new PostgreSQL database per test.

Every service migrates its database at start-up; a stack's databases are copies of ones that
both services' migrations already brought to head (once per test process), so a test's
services find nothing to do there instead of running every migration again. Each test still
gets databases of its own; tests/catalog/test_migrations.py runs the migrations on empty ones.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from catalog_service.app import MIGRATIONS as CATALOG_MIGRATIONS
from scheduler_service.app import MIGRATIONS as SCHEDULER_MIGRATIONS
from servicekit.db import SQLITE_SIDE_FILES, Database
from servicekit.migrations import upgrade_to_head

# The server tests create their databases on; CI has PostgreSQL 15 here with trust auth.
ADMIN_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
# Each service's migration tree and version table, as its app applies them at start-up.
CATALOG = (CATALOG_MIGRATIONS, "catalog_alembic_version")
SCHEDULER = (SCHEDULER_MIGRATIONS, "scheduler_alembic_version")


def _dsn(url: str) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


async def create_postgres_database(template: str | None = None) -> str:
    """Create a database, empty or a copy of the database at URL ``template`` (which nothing
    may be connected to); returns its SQLAlchemy URL."""
    name = "gluetest_" + secrets.token_hex(6)
    copy = f' TEMPLATE "{make_url(template).database}"' if template else ""
    conn = await asyncpg.connect(_dsn(ADMIN_URL))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"{copy}')
    finally:
        await conn.close()
    return make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)


async def drop_postgres_database(url: str) -> None:
    """Drop a database made by ``create_postgres_database`` (disconnecting its users)."""
    name = make_url(url).database
    conn = await asyncpg.connect(_dsn(ADMIN_URL))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@asynccontextmanager
async def postgres_database(
    template: str | None = None, *, pool_size: int
) -> AsyncIterator[Database]:
    """A ``Database`` on a new PostgreSQL database (empty, or a copy of ``template`` as in
    ``create_postgres_database``), disposed and dropped at the end."""
    url = await create_postgres_database(template)
    database = Database(url, pool_size=pool_size)
    try:
        yield database
    finally:
        await database.dispose()
        await drop_postgres_database(url)


def sqlite_url(directory: Path, name: str) -> str:
    """A SQLite URL for a file in ``directory``."""
    return f"sqlite+aiosqlite:///{directory / name}"


async def migrate(url: str, *services: tuple[Path, str]) -> None:
    """Bring the database at ``url`` to head for each of ``services`` (CATALOG, SCHEDULER)."""
    db = Database(url)
    try:
        for script_location, version_table in services:
            await upgrade_to_head(db, script_location, version_table)
    finally:
        await db.dispose()


def copy_sqlite(template: Path, directory: Path) -> str:
    """Copy a migrated, closed SQLite file (its mode too: 0600) into ``directory``; returns
    the copy's URL."""
    leftovers = [s for s in SQLITE_SIDE_FILES if Path(f"{template}{s}").exists()]
    assert not leftovers, f"{template} was not closed cleanly: {leftovers}"
    shutil.copy(template, directory / template.name)
    return sqlite_url(directory, template.name)
