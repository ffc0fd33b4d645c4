"""The storage boundary's one translation of database errors (servicekit.db)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from servicekit.db import Database
from servicekit.errors import ConstraintViolation, to_rpc_status
from tests.helpers.databases import (
    create_postgres_database,
    drop_postgres_database,
    sqlite_url,
)


@pytest.fixture(params=["sqlite", "postgres"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        url = sqlite_url(tmp_path, "errors.db")
    else:
        url = await create_postgres_database()
    database = Database(url)
    try:
        yield database
    finally:
        await database.dispose()
        if request.param == "postgres":
            await drop_postgres_database(url)


async def test_a_broken_unique_key_leaves_as_a_constraint_violation_naming_no_table(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    async with db.transaction() as conn:
        await conn.execute(text("CREATE TABLE secret_things (name TEXT PRIMARY KEY)"))
    async with db.transaction() as conn:
        await conn.execute(text("INSERT INTO secret_things VALUES ('a')"))

    with pytest.raises(ConstraintViolation) as raised:
        async with db.transaction() as conn:
            await conn.execute(text("INSERT INTO secret_things VALUES ('a')"))
    with pytest.raises(ConstraintViolation):
        async with db.statement() as conn:
            await conn.execute(text("INSERT INTO secret_things VALUES ('a')"))

    # What a client would read names nothing of the schema; the log keeps the driver's words.
    status = to_rpc_status(raised.value)
    assert "secret_things" not in str(raised.value)
    assert "secret_things" not in status.details
    assert "concurrent change" in status.details
    assert any("secret_things" in r.getMessage() for r in caplog.records)
    async with db.transaction() as conn:
        count = (await conn.execute(text("SELECT COUNT(*) FROM secret_things"))).scalar_one()
    assert count == 1
