"""Registered jobs and triggers: idempotent upserts guarded by the catalog's version."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, bindparam, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from glue.scheduler.v1 import scheduler_pb2
from glue_vocabulary.cron import parse_schedule
from glue_vocabulary.shapes import GlueDict, to_glue
from scheduler_service.bad_rows import TALLY, UnreadableRowError
from scheduler_service.tables import jobs, trigger_fires, trigger_observations, triggers


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


# A registration's row, as ``upsert_job`` writes it.
_JOB_COLUMNS = ("name", "version", "incarnation", "deleted", "definition", "updated_at")


def _upsert_jobs_statement(dialect: Any) -> Any:
    """``upsert_job`` for rows given at execution (executemany), returning those stored.

    Built once per dialect: composing and compiling a multi-row INSERT afresh for each batch
    (its shape changes with the row count) cost more than running it. SQLAlchemy sends an
    executemany with RETURNING as multi-row statements of its own ("insertmanyvalues").
    """
    stmt = dialect.insert(jobs)
    return stmt.on_conflict_do_update(
        index_elements=[jobs.c.name],
        set_={k: stmt.excluded[k] for k in _JOB_COLUMNS if k != "name"},
        where=jobs.c.version < stmt.excluded.version,
    ).returning(jobs.c.name, jobs.c.version)


_UPSERT_JOBS = {
    "postgresql": _upsert_jobs_statement(postgresql),
    "sqlite": _upsert_jobs_statement(sqlite),
}


async def upsert_jobs(
    conn: AsyncConnection, registrations: Sequence[scheduler_pb2.JobRegistration]
) -> list[bool]:
    """``upsert_job`` for each registration, in one executemany; for each, whether it was
    stored.

    A name given twice is stored once, at its highest version. Rows are written in name
    order, the order every transaction that locks job rows takes them, so a batch cannot
    deadlock with an admission or a fire.
    """
    newest: dict[str, scheduler_pb2.JobRegistration] = {}
    for registration in registrations:
        held = newest.get(registration.job.name)
        if held is None or registration.version > held.version:
            newest[registration.job.name] = registration
    if not newest:
        return []
    now = time.time()
    rows = [
        {
            "name": registration.job.name,
            "version": registration.version,
            "incarnation": registration.incarnation,
            "deleted": False,
            "definition": json.dumps(to_glue(registration.job), default=str),
            "updated_at": now,
        }
        for registration in (newest[name] for name in sorted(newest))
    ]
    result = await conn.execute(_UPSERT_JOBS[conn.dialect.name], rows)
    stored = {(row.name, row.version) for row in result}
    return [(r.job.name, r.version) in stored for r in registrations]


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


# Built once: every admission reads its job (composing the statement costs more than running it).
_GET_JOB = select(jobs).where(jobs.c.name == bindparam("name"))
_GET_JOB_LOCKED = _GET_JOB.with_for_update()
_GET_JOBS = (
    select(jobs).where(jobs.c.name.in_(bindparam("names", expanding=True))).order_by(jobs.c.name)
)
_GET_JOBS_LOCKED = _GET_JOBS.with_for_update()


async def get_jobs(
    conn: AsyncConnection, names: Sequence[str], *, lock: bool = False
) -> dict[str, RegisteredJob]:
    """The registered jobs among ``names`` (tombstones included); ``lock`` takes their row
    locks, in name order (the order every transaction that locks several jobs takes them)."""
    if not names:
        return {}
    locked = lock and conn.dialect.name == "postgresql"
    query = _GET_JOBS_LOCKED if locked else _GET_JOBS
    rows = await conn.execute(query, {"names": sorted(names)})
    # A job whose row cannot be read counts as not registered (logged and counted once).
    return {job.name: job for job in TALLY.decode(rows, registered_job)}


async def get_job(conn: AsyncConnection, name: str, *, lock: bool = False) -> RegisteredJob | None:
    """The registered job ``name`` (tombstones included); ``lock`` takes its row lock."""
    locked = lock and conn.dialect.name == "postgresql"
    row = (await conn.execute(_GET_JOB_LOCKED if locked else _GET_JOB, {"name": name})).first()
    return registered_job(row) if row is not None else None


def _definition(table: str, row: Row[Any]) -> GlueDict:
    """A registration row's definition.

    Raises:
        UnreadableRowError: it is not a JSON object.
    """
    try:
        definition = json.loads(row.definition)
    except (ValueError, TypeError) as exc:
        raise UnreadableRowError(table, str(row.name), f"its definition: {exc}") from None
    if not isinstance(definition, dict):
        raise UnreadableRowError(table, str(row.name), "its definition is not a JSON object")
    return definition


def registered_job(row: Row[Any]) -> RegisteredJob:
    """Decode a job row.

    Raises:
        UnreadableRowError: its definition is not a JSON object.
    """
    return RegisteredJob(
        name=row.name,
        version=row.version,
        incarnation=row.incarnation,
        deleted=row.deleted,
        definition=_definition("scheduler_jobs", row),
    )


@dataclass(frozen=True, slots=True)
class RegisteredTrigger:
    """A trigger as the scheduler holds it."""

    name: str
    version: int
    deleted: bool
    type: str
    state: str
    next_fire_at: float | None
    activated_at: float | None
    definition: GlueDict

    @property
    def active(self) -> bool:
        """Whether it fires by itself (an ACTIVATED SCHEDULED or CONDITIONAL trigger)."""
        return (
            not self.deleted
            and self.state == "ACTIVATED"
            and self.type in ("SCHEDULED", "CONDITIONAL")
        )

    @classmethod
    def from_row(cls, row: Row[Any]) -> RegisteredTrigger:
        """Decode a database row.

        Raises:
            UnreadableRowError: its definition is not a JSON object.
        """
        return cls(
            name=row.name,
            version=row.version,
            deleted=row.deleted,
            type=row.type,
            state=row.state,
            next_fire_at=row.next_fire_at,
            activated_at=row.activated_at,
            definition=_definition("scheduler_triggers", row),
        )


def next_fire_time(schedule: str, after: float) -> float | None:
    """The first due time of a Glue cron ``schedule`` strictly after ``after`` (epoch seconds)."""
    following = parse_schedule(schedule).next_fire_after(datetime.fromtimestamp(after, UTC))
    return following.timestamp() if following is not None else None


async def get_trigger(
    conn: AsyncConnection, name: str, *, lock: bool = False
) -> RegisteredTrigger | None:
    """The registered trigger ``name`` (tombstones included); ``lock`` takes its row lock."""
    query = select(triggers).where(triggers.c.name == name)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    return RegisteredTrigger.from_row(row) if row is not None else None


async def _replaceable_trigger(conn: AsyncConnection, name: str) -> RegisteredTrigger | None:
    """The trigger a registration would replace, locked; one whose row cannot be read counts
    as absent, so a newer registration repairs it (the upsert still compares versions)."""
    try:
        return await get_trigger(conn, name, lock=True)
    except UnreadableRowError as exc:
        TALLY.note(exc)
        return None


async def _record_superseded(
    conn: AsyncConnection, existing: RegisteredTrigger | None, now: float, why: str
) -> None:
    """A due time that passed but was not fired before a change is a SKIPPED ledger row."""
    if existing is None or existing.next_fire_at is None or existing.next_fire_at > now:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    await conn.execute(
        dialect.insert(trigger_fires)
        .values(
            trigger_name=existing.name,
            fire_key=fire_key_for_instant(existing.next_fire_at),
            scheduled_at=existing.next_fire_at,
            recorded_at=now,
            outcome="SKIPPED",
            reason=why,
            run_ids="[]",
            due_times=1,
        )
        .on_conflict_do_nothing()
    )


def fire_key_for_instant(instant: float) -> str:
    """The ledger key of a schedule's due time: the instant in UTC, ISO 8601."""
    return datetime.fromtimestamp(instant, UTC).isoformat()


async def upsert_trigger(
    conn: AsyncConnection, registration: scheduler_pb2.TriggerRegistration
) -> bool:
    """Store a trigger registration unless a newer or equal version is held.

    An ACTIVATED SCHEDULED trigger gets its next due time from now; a changed or deactivated
    one loses its pending due time (recorded as SKIPPED if it had already passed unfired), so
    the old schedule never fires once the new version is stored. A conditional trigger's
    observations start afresh with each version.
    """
    trigger = registration.trigger
    now = time.time()
    existing = await _replaceable_trigger(conn, trigger.name)
    if existing is not None and existing.version >= registration.version:
        return False
    definition = to_glue(trigger)
    state = trigger.state or "CREATED"
    active = state == "ACTIVATED" and trigger.type in ("SCHEDULED", "CONDITIONAL")
    next_fire_at = None
    if active and trigger.type == "SCHEDULED" and trigger.schedule:
        next_fire_at = next_fire_time(trigger.schedule, now)
    was_active = existing is not None and existing.active
    activated_at = (existing.activated_at if was_active and existing else now) if active else None
    await _record_superseded(conn, existing, now, "superseded: the trigger was changed first")
    await conn.execute(
        delete(trigger_observations).where(trigger_observations.c.trigger_name == trigger.name)
    )
    return await _upsert(
        conn,
        triggers,
        {
            "name": trigger.name,
            "version": registration.version,
            "deleted": False,
            "definition": json.dumps(definition, default=str),
            "updated_at": now,
            "type": trigger.type,
            "state": state,
            "next_fire_at": next_fire_at,
            "activated_at": activated_at,
        },
    )


async def unschedule_trigger(
    conn: AsyncConnection, name: str, version: int, *, delete_it: bool
) -> bool:
    """Stop scheduling a trigger (DEACTIVATED), or with ``delete_it`` leave a tombstone."""
    now = time.time()
    existing = await _replaceable_trigger(conn, name)
    if existing is not None and existing.version >= version:
        return False
    definition = dict(existing.definition) if existing is not None else {"Name": name}
    definition["State"] = "DEACTIVATED"
    await _record_superseded(conn, existing, now, "superseded: the trigger was stopped first")
    await conn.execute(
        delete(trigger_observations).where(trigger_observations.c.trigger_name == name)
    )
    return await _upsert(
        conn,
        triggers,
        {
            "name": name,
            "version": version,
            "deleted": delete_it,
            "definition": "{}" if delete_it else json.dumps(definition, default=str),
            "updated_at": now,
            "type": existing.type if existing is not None else "",
            "state": "DEACTIVATED",
            "next_fire_at": None,
            "activated_at": None,
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
