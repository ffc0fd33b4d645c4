"""Registration versions: one counter, monotonic across creates, updates and deletes of jobs and
triggers, that the scheduler compares to keep only the newest registration of each.
"""

from __future__ import annotations

from sqlalchemy import func, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from catalog_service.tables import counters


async def next_version(conn: AsyncConnection) -> int:
    """The next registration version (monotonic across creates, updates and deletes)."""
    if conn.dialect.name == "postgresql":
        value = (
            await conn.execute(text("SELECT nextval('catalog_registration_version')"))
        ).scalar_one()
        return int(value)
    value = (
        await conn.execute(
            update(counters)
            .where(counters.c.name == "registration")
            .values(value=counters.c.value + 1)
            .returning(counters.c.value)
        )
    ).scalar_one()
    return int(value)


async def version_after(conn: AsyncConnection, held: int) -> int:
    """A registration version greater than ``held`` (and than every one handed out so far):
    the counter jumps past a version the scheduler holds but the catalog never gave out."""
    if conn.dialect.name == "postgresql":
        await conn.execute(
            text(
                "SELECT setval('catalog_registration_version', GREATEST(:held, "
                "(SELECT last_value FROM catalog_registration_version)))"
            ),
            {"held": held},
        )
        return await next_version(conn)
    value = (
        await conn.execute(
            update(counters)
            .where(counters.c.name == "registration")
            .values(value=func.max(counters.c.value, held) + 1)
            .returning(counters.c.value)
        )
    ).scalar_one()
    return int(value)
