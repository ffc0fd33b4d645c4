"""Registered jobs and triggers: idempotent upserts guarded by the catalog's version."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from glue.scheduler.v1 import scheduler_pb2
from scheduler_service.tables import jobs, triggers
from servicekit.glue_shapes import GlueDict, to_glue


@dataclass(frozen=True, slots=True)
class RegisteredJob:
    """A job as the scheduler holds it."""

    name: str
    version: int
    incarnation: str
    deleted: bool
    definition: GlueDict


async def _upsert(conn: AsyncConnection, table: Table, values: dict[str, Any]) -> bool:
    """Insert, or replace the row if ``values['version']`` is newer; True if anything changed."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).values(**values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.name],
        set_={k: stmt.excluded[k] for k in values if k != "name"},
        where=table.c.version < stmt.excluded.version,
    )
    result = await conn.execute(stmt)
    return bool(result.rowcount)


async def upsert_job(conn: AsyncConnection, registration: scheduler_pb2.JobRegistration) -> bool:
    """Store a job registration unless a newer or equal version is held."""
    return await _upsert(
        conn,
        jobs,
        {
            "name": registration.job.name,
            "version": registration.version,
            "incarnation": registration.incarnation,
            "deleted": False,
            "definition": json.dumps(to_glue(registration.job), default=str),
            "updated_at": time.time(),
        },
    )


async def delete_job(conn: AsyncConnection, name: str, version: int) -> bool:
    """Leave a versioned tombstone for ``name`` unless a newer version is held."""
    return await _upsert(
        conn,
        jobs,
        {
            "name": name,
            "version": version,
            "incarnation": "",
            "deleted": True,
            "definition": "{}",
            "updated_at": time.time(),
        },
    )


async def get_job(conn: AsyncConnection, name: str, *, lock: bool = False) -> RegisteredJob | None:
    """The registered job ``name`` (tombstones included); ``lock`` takes its row lock."""
    query = select(jobs).where(jobs.c.name == name)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    if row is None:
        return None
    return RegisteredJob(
        name=row.name,
        version=row.version,
        incarnation=row.incarnation,
        deleted=row.deleted,
        definition=json.loads(row.definition),
    )


async def upsert_trigger(
    conn: AsyncConnection, registration: scheduler_pb2.TriggerRegistration
) -> bool:
    """Store a trigger registration unless a newer or equal version is held."""
    return await _upsert(
        conn,
        triggers,
        {
            "name": registration.trigger.name,
            "version": registration.version,
            "deleted": False,
            "definition": json.dumps(to_glue(registration.trigger), default=str),
            "updated_at": time.time(),
        },
    )


async def unschedule_trigger(
    conn: AsyncConnection, name: str, version: int, *, delete: bool
) -> bool:
    """Stop scheduling a trigger (marking it deactivated), or tombstone it with ``delete``."""
    row = (await conn.execute(select(triggers).where(triggers.c.name == name))).first()
    definition = json.loads(row.definition) if row is not None else {"Name": name}
    definition["State"] = "DEACTIVATED"
    return await _upsert(
        conn,
        triggers,
        {
            "name": name,
            "version": version,
            "deleted": delete,
            "definition": "{}" if delete else json.dumps(definition),
            "updated_at": time.time(),
        },
    )


async def list_registrations(
    conn: AsyncConnection,
) -> tuple[list[scheduler_pb2.RegistrationVersion], list[scheduler_pb2.RegistrationVersion]]:
    """Every job and trigger registration's name, version and tombstone flag."""
    result = []
    for table in (jobs, triggers):
        rows = await conn.execute(select(table.c.name, table.c.version, table.c.deleted))
        result.append(
            [
                scheduler_pb2.RegistrationVersion(name=r.name, version=r.version, deleted=r.deleted)
                for r in rows
            ]
        )
    return result[0], result[1]
