"""The catalog's migrations: a database made by an earlier release upgrades in place, and the
result is the schema ``catalog_service/tables.py`` declares. Both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from catalog_service.app import MIGRATIONS
from catalog_service.tables import job_runs, metadata
from glue.v1 import glue_pb2
from servicekit.db import Database
from servicekit.migrations import _config, upgrade_to_head
from tests.helpers.databases import create_postgres_database, drop_postgres_database, sqlite_url

VERSION_TABLE = "catalog_alembic_version"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    url = (
        sqlite_url(tmp_path, "catalog.db")
        if request.param == "sqlite"
        else await create_postgres_database()
    )
    database = Database(url)
    yield database
    await database.dispose()
    if request.param == "postgres":
        await drop_postgres_database(url)


async def _upgrade_to(db: Database, revision: str) -> None:
    async with db.transaction() as conn:
        await conn.run_sync(
            lambda sync: command.upgrade(_config(MIGRATIONS, VERSION_TABLE, sync), revision)
        )


def _old_run(run_id: str, trigger: str | None) -> dict[str, object]:
    run = glue_pb2.JobRun(id=run_id, job_name="etl", job_run_state="SUCCEEDED")
    if trigger is not None:
        run.trigger_name = trigger
    return {
        "run_id": run_id,
        "job_name": "etl",
        "started_on": 1.0,
        "state": "SUCCEEDED",
        "snapshot": run.SerializeToString(),
        "event_seq": 1,
    }


async def test_0006_fills_in_trigger_names_of_existing_runs(db: Database) -> None:
    await _upgrade_to(db, "0005")
    old_runs = sa.table(
        job_runs.name,
        *(sa.column(name) for name in ("run_id", "job_name", "started_on", "state")),
        sa.column("snapshot", sa.LargeBinary),
        sa.column("event_seq"),
    )
    async with db.transaction() as conn:
        await conn.execute(old_runs.insert(), [_old_run("jr_1", "nightly"), _old_run("jr_2", None)])
    await upgrade_to_head(db, MIGRATIONS, VERSION_TABLE)
    async with db.read() as conn:
        rows = (
            await conn.execute(
                sa.select(
                    job_runs.c.run_id, job_runs.c.trigger_name, job_runs.c.job_deleted
                ).order_by(job_runs.c.run_id)
            )
        ).all()
    assert [tuple(row) for row in rows] == [("jr_1", "nightly", False), ("jr_2", None, False)]


async def test_migrations_create_the_declared_schema(db: Database) -> None:
    await upgrade_to_head(db, MIGRATIONS, VERSION_TABLE)
    async with db.engine.connect() as conn:
        diff = await conn.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), metadata)
        )
    # The version table is alembic's own.
    assert [d for d in diff if VERSION_TABLE not in str(d)] == []
