"""Alembic migrations applied at start-up, one migration tree and version table per service."""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.engine import Connection

from servicekit.db import Database


def _config(script_location: Path, version_table: str, connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.attributes["connection"] = connection
    config.attributes["version_table"] = version_table
    return config


async def upgrade_to_head(db: Database, script_location: Path, version_table: str) -> None:
    """Apply every pending migration of one service.

    On PostgreSQL a transaction-scoped advisory lock keyed by the version table serialises
    replicas that start together, so a migration never runs twice at once.
    """
    async with db.transaction() as conn:
        if not db.is_sqlite:
            key = zlib.crc32(version_table.encode())
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})

        def run(sync_conn: Connection) -> None:
            command.upgrade(_config(script_location, version_table, sync_conn), "head")

        await conn.run_sync(run)


def run_migrations_online(context: Any, target_metadata: MetaData) -> None:
    """The body of each service's ``env.py``: migrate on the connection handed over."""
    config = context.config
    connection = config.attributes["connection"]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=config.attributes["version_table"],
        render_as_batch=connection.dialect.name == "sqlite",
        transaction_per_migration=False,
    )
    context.run_migrations()
