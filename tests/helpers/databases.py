"""Fresh databases for tests: a SQLite file, or a new PostgreSQL database per test."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

# The server tests create their databases on; CI has PostgreSQL 15 here with trust auth.
ADMIN_URL = os.environ.get(
    "TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)


def _dsn(url: str) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    return parsed.render_as_string(hide_password=False)


async def create_postgres_database() -> str:
    """Create an empty database; returns its SQLAlchemy URL."""
    name = "gluetest_" + secrets.token_hex(6)
    conn = await asyncpg.connect(_dsn(ADMIN_URL))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
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


def sqlite_url(directory: Path, name: str) -> str:
    """A SQLite URL for a file in ``directory``."""
    return f"sqlite+aiosqlite:///{directory / name}"
