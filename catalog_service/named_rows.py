"""Reading catalog rows by name in bounded chunks (BatchGetJobs, BatchGetTriggers)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

# Names per IN (...) list: far below SQLite's parameter limit, and a bounded statement.
CHUNK = 500


async def rows_named(
    conn: AsyncConnection, table: Table, names: Sequence[str], *columns: Any
) -> dict[str, Row[Any]]:
    """The rows of ``table`` whose ``name`` is among ``names`` (``columns``, or all), by name."""
    found: dict[str, Row[Any]] = {}
    for start in range(0, len(names), CHUNK):
        chunk = names[start : start + CHUNK]
        query = select(*columns) if columns else select(table)
        for row in await conn.execute(query.where(table.c.name.in_(chunk))):
            found[row.name] = row
    return found
