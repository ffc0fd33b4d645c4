"""Bulk inserts for trigger bursts: thousands of rows in one statement.

On PostgreSQL rows are written with COPY (asyncpg's binary ``copy_records_to_table``, on the
transaction's own connection): about three times cheaper for the server than an INSERT of the
same rows, and no per-row SQL parameters on the Python side. A multi-row ``VALUES`` list
(SQLAlchemy's executemany) costs Python work per row and per column and pages at 1,000 rows;
at a burst of 10,000 fires that was most of the time spent firing. COPY cannot skip rows
already there, so ``insert_new`` falls back, when a COPY meets one, to an ``INSERT ... SELECT
... FROM unnest(...) ON CONFLICT DO NOTHING`` (one array per column: one statement whatever the
row count). SQLite is in-process, with no round trips to save: it gets a plain executemany.

Rows are tuples of values in the order of the ``columns`` given with them.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Table, bindparam, column, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

# PostgreSQL's SQLSTATE for a duplicate key.
UNIQUE_VIOLATION = "23505"

Values = tuple[Any, ...]


async def insert_rows(
    conn: AsyncConnection, table: Table, columns: Sequence[str], rows: Sequence[Values]
) -> None:
    """Insert ``rows``, all new."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        await _copy(conn, table, columns, rows)
    else:
        await conn.execute(table.insert(), [dict(zip(columns, row, strict=True)) for row in rows])


async def insert_new(
    conn: AsyncConnection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Values],
    key: Sequence[str],
) -> set[Values]:
    """Insert those of ``rows`` whose ``key`` (the table's unique key, some of ``columns``) is
    not taken yet; returns the keys of the rows inserted."""
    if not rows:
        return set()
    if conn.dialect.name != "postgresql":
        insert = sqlite.insert(table).on_conflict_do_nothing().returning(*_key(table, key))
        values = [dict(zip(columns, row, strict=True)) for row in rows]
        return {tuple(new) for new in await conn.execute(insert, values)}
    try:
        # Mostly every row is new: one COPY, under a savepoint so that a row already there
        # leaves the transaction usable for the fallback.
        async with conn.begin_nested():
            await _copy(conn, table, columns, rows)
    except Exception as exc:  # asyncpg's own error: COPY bypasses SQLAlchemy
        if getattr(exc, "sqlstate", None) != UNIQUE_VIOLATION:
            raise
    else:
        key_of = _picker([columns.index(name) for name in key])
        return {key_of(row) for row in rows}
    fallback = _insert_from_arrays(table, columns, rows).on_conflict_do_nothing()
    return {tuple(new) for new in await conn.execute(fallback.returning(*_key(table, key)))}


def _key(table: Table, key: Sequence[str]) -> list[Any]:
    return [table.c[name] for name in key]


def _picker(positions: Sequence[int]) -> Callable[[Values], Values]:
    """A function of a row: its values at ``positions``, as a tuple."""
    if len(positions) == 1:
        position = positions[0]
        return lambda row: (row[position],)
    return operator.itemgetter(*positions)


def _insert_from_arrays(
    table: Table, columns: Sequence[str], rows: Sequence[Values]
) -> postgresql.Insert:
    """``INSERT INTO table (columns) SELECT * FROM unnest(<one array per column>)``."""
    arrays = (
        func.unnest(
            *(
                bindparam(
                    f"{name}_values", list(values), type_=postgresql.ARRAY(table.c[name].type)
                )
                for name, values in zip(columns, zip(*rows, strict=True), strict=True)
            )
        )
        .table_valued(*(column(name, table.c[name].type) for name in columns))
        .render_derived(name="new_rows")
    )
    return postgresql.insert(table).from_select(
        list(columns), select(*(arrays.c[name] for name in columns))
    )


async def _copy(
    conn: AsyncConnection, table: Table, columns: Sequence[str], rows: Sequence[Values]
) -> None:
    """PostgreSQL's COPY, through asyncpg, on the connection's open transaction."""
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    assert driver is not None
    assert driver.is_in_transaction(), "COPY must be part of the caller's transaction"
    await driver.copy_records_to_table(table.name, columns=list(columns), records=rows)
