"""Triggers: Create/Update/Delete/Get/GetTriggers/ListTriggers/BatchGet/Start/Stop, FireTrigger.

The catalog records each trigger's settled state (CREATED, ACTIVATED, DEACTIVATED) and, while
a change is on its way to the scheduler, a pending transitional state (ACTIVATING,
DEACTIVATING, UPDATING, DELETING) that GetTrigger shows instead. Start, Stop, Update and
Delete wait for the scheduler to acknowledge the new version before returning, so "the old
schedule never fires after UpdateTrigger returns" holds; if the scheduler cannot be reached
the call fails (UNAVAILABLE), the row keeps its pending state, and the reconciler pushes it and
settles the row when the scheduler is back - nothing stays transitional forever.

Decisions where Glue leaves room (README "Triggers"):
- DependentJobName follows AWS's documentation: the triggers whose actions start that job, and
  when no trigger does, every trigger (moto returns none; AWS documents all).
- TriggerUpdate merges the members given; TriggerUpdate.Name may only repeat the current name
  (triggers cannot be renamed); Type and WorkflowName never change.
- StopTrigger on a DEACTIVATED trigger succeeds and changes nothing; on CREATED (any type,
  hence always for ON_DEMAND) it is Glue's InvalidInputException.
- FireTrigger (our extension) fires any trigger but an EVENT one, whatever its state.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from catalog_service.jobs import JobCatalog, next_version
from catalog_service.pagination import decode_token, encode_token, page_size
from catalog_service.scheduler_link import SchedulerLink
from catalog_service.tables import jobs, triggers
from catalog_service.trigger_rules import FIRING_TYPES, check_trigger
from catalog_service.validation import validate_request
from glue.scheduler.v1 import scheduler_pb2
from glue.v1 import glue_pb2
from servicekit.db import Database
from servicekit.errors import (
    AlreadyExistsException,
    EntityNotFoundException,
    GlueError,
    InvalidInputException,
)
from servicekit.glue_shapes import GlueDict, from_glue, to_glue

log = logging.getLogger(__name__)

DEFAULT_PAGE = 100
BATCH = 500
DEFAULT_FIRES = 20
MAX_FIRES = 200


def _shown(row: Any) -> glue_pb2.Trigger:
    """The trigger as GetTrigger shows it: the pending transitional state, if any."""
    trigger = glue_pb2.Trigger.FromString(row.definition)
    if row.pending:
        trigger.state = row.pending
    return trigger


def _registration(row_definition: bytes, version: int) -> scheduler_pb2.TriggerRegistration:
    return scheduler_pb2.TriggerRegistration(
        trigger=glue_pb2.Trigger.FromString(row_definition), version=version
    )


def _job_names(trigger: glue_pb2.Trigger) -> set[str]:
    return {a.job_name for a in trigger.actions if a.job_name}


class TriggerCatalog:
    """The trigger operations."""

    def __init__(self, db: Database, link: SchedulerLink, job_catalog: JobCatalog) -> None:
        self._db = db
        self._link = link
        self._jobs = job_catalog

    # -- helpers -----------------------------------------------------------------------------

    async def _require_jobs(self, conn: AsyncConnection, names: set[str]) -> None:
        found = {
            r.name for r in await conn.execute(select(jobs.c.name).where(jobs.c.name.in_(names)))
        }
        for name in sorted(names - found):
            raise EntityNotFoundException(f"Job {name} not found.")

    async def _row(self, conn: AsyncConnection, name: str, *, lock: bool = False) -> Any:
        query = select(triggers).where(triggers.c.name == name)
        if lock and not self._db.is_sqlite:
            query = query.with_for_update()
        return (await conn.execute(query)).first()

    async def _load(self, name: str) -> Any:
        async with self._db.read() as conn:
            row = await self._row(conn, name)
        if row is None:
            raise EntityNotFoundException(f"Trigger {name} not found.")
        return row

    async def _settle(self, name: str, version: int) -> None:
        """Clear the pending state once the scheduler holds ``version``."""
        async with self._db.transaction() as conn:
            await conn.execute(
                update(triggers)
                .where(triggers.c.name == name)
                .where(triggers.c.version == version)
                .values(pending=None)
            )

    async def _change(self, name: str, pending: str, mutate: Any) -> tuple[glue_pb2.Trigger, int]:
        """Apply ``mutate`` to the stored trigger, mark it pending, push it, settle it."""
        async with self._db.transaction() as conn:
            row = await self._row(conn, name, lock=True)
            if row is None:
                raise EntityNotFoundException(f"Trigger {name} not found.")
            trigger = glue_pb2.Trigger.FromString(row.definition)
            mutate(trigger)
            version = await next_version(conn)
            await conn.execute(
                update(triggers)
                .where(triggers.c.name == name)
                .values(definition=trigger.SerializeToString(), version=version, pending=pending)
            )
        await self._jobs.wait_pushed(_job_names(trigger))
        await self._link.add_trigger(
            scheduler_pb2.TriggerRegistration(trigger=trigger, version=version)
        )
        await self._settle(name, version)
        return trigger, version

    # -- writes ------------------------------------------------------------------------------

    async def create(self, params: GlueDict) -> str:
        """CreateTrigger.

        Raises:
            InvalidInputException: the definition breaks a rule.
            EntityNotFoundException: an action names a job that does not exist.
            AlreadyExistsException: a trigger of that name exists.
        """
        validate_request("CreateTrigger", params)
        name: str = params["Name"]
        start = bool(params.get("StartOnCreation"))
        definition = {
            k: v
            for k, v in params.items()
            if k not in ("Tags", "StartOnCreation") and v is not None
        }
        check_trigger(definition, start_on_creation=start)
        activated = start and definition["Type"] in FIRING_TYPES
        definition["Id"] = name
        definition["State"] = "ACTIVATED" if activated else "CREATED"
        trigger = from_glue(definition, glue_pb2.Trigger)
        try:
            async with self._db.transaction() as conn:
                if await self._row(conn, name) is not None:
                    raise AlreadyExistsException(f"Trigger {name} already exists.")
                await self._require_jobs(conn, _job_names(trigger))
                version = await next_version(conn)
                await conn.execute(
                    insert(triggers).values(
                        name=name,
                        version=version,
                        definition=trigger.SerializeToString(),
                        pending="ACTIVATING" if activated else None,
                        tags=json.dumps(params.get("Tags") or {}),
                        created_on=time.time(),
                    )
                )
        except IntegrityError:
            raise AlreadyExistsException(f"Trigger {name} already exists.") from None
        try:
            await self._jobs.wait_pushed(_job_names(trigger))
            await self._link.add_trigger(
                scheduler_pb2.TriggerRegistration(trigger=trigger, version=version)
            )
            await self._settle(name, version)
        except GlueError as exc:
            # Created all the same: the reconciler registers it when the scheduler is back.
            log.warning(
                "trigger created but not yet registered",
                extra={"trigger": name, "error": exc.message},
            )
        return name

    async def update(self, params: GlueDict) -> glue_pb2.Trigger:
        """UpdateTrigger: merges the members given; returns the whole trigger."""
        validate_request("UpdateTrigger", params)
        name: str = params["Name"]
        changes: GlueDict = dict(params["TriggerUpdate"])
        if changes.get("Name", name) != name:
            raise InvalidInputException(
                "TriggerUpdate.Name: triggers cannot be renamed (delete and create instead)",
                field="TriggerUpdate.Name",
            )
        changes.pop("Name", None)
        row = await self._load(name)
        merged = {**to_glue(glue_pb2.Trigger.FromString(row.definition)), **changes}
        check_trigger(merged)
        new = from_glue(merged, glue_pb2.Trigger)
        async with self._db.read() as conn:
            await self._require_jobs(conn, _job_names(new))

        def apply(trigger: glue_pb2.Trigger) -> None:
            state = trigger.state
            trigger.CopyFrom(new)
            trigger.state = state

        trigger, _ = await self._change(name, "UPDATING", apply)
        return trigger

    async def delete(self, params: GlueDict) -> str:
        """DeleteTrigger: unschedules and removes; no error if absent; runs in flight finish."""
        validate_request("DeleteTrigger", params)
        name: str = params["Name"]
        async with self._db.transaction() as conn:
            row = await self._row(conn, name, lock=True)
            if row is None:
                return name
            version = await next_version(conn)
            await conn.execute(
                update(triggers)
                .where(triggers.c.name == name)
                .values(version=version, pending="DELETING")
            )
        await self._link.unschedule(name, version, delete=True)
        async with self._db.transaction() as conn:
            await conn.execute(
                delete(triggers).where(triggers.c.name == name).where(triggers.c.version == version)
            )
        return name

    async def start(self, params: GlueDict) -> str:
        """StartTrigger: activates a SCHEDULED/CONDITIONAL trigger; fires an ON_DEMAND one once."""
        validate_request("StartTrigger", params)
        name: str = params["Name"]
        row = await self._load(name)
        trigger = glue_pb2.Trigger.FromString(row.definition)
        if trigger.type == "EVENT":
            raise InvalidInputException("Trigger Type EVENT cannot be started", field="Name")
        if trigger.type == "ON_DEMAND":
            await self._fire(row, "on demand")
            return name
        if trigger.state == "ACTIVATED" and not row.pending:
            return name

        def activate(t: glue_pb2.Trigger) -> None:
            t.state = "ACTIVATED"

        await self._change(name, "ACTIVATING", activate)
        return name

    async def stop(self, params: GlueDict) -> str:
        """StopTrigger: ACTIVATED -> DEACTIVATED; runs already started keep running."""
        validate_request("StopTrigger", params)
        name: str = params["Name"]
        row = await self._load(name)
        trigger = glue_pb2.Trigger.FromString(row.definition)
        if trigger.type == "EVENT":
            raise InvalidInputException("Trigger Type EVENT cannot be stopped", field="Name")
        if trigger.state == "CREATED":
            raise InvalidInputException(
                "The operation is not allowed when trigger is in state: CREATED", field="Name"
            )
        if trigger.state == "DEACTIVATED" and not row.pending:
            return name

        def deactivate(t: glue_pb2.Trigger) -> None:
            t.state = "DEACTIVATED"

        await self._change(name, "DEACTIVATING", deactivate)
        return name

    async def fire(self, params: GlueDict) -> glue_pb2.TriggerFire:
        """FireTrigger (extension): fire the trigger's actions once, now."""
        name = params.get("Name") or ""
        validate_request("StartTrigger", {"Name": name})
        row = await self._load(name)
        if glue_pb2.Trigger.FromString(row.definition).type == "EVENT":
            raise InvalidInputException("Trigger Type EVENT cannot be fired here", field="Name")
        return await self._fire(row, "manual fire")

    async def _fire(self, row: Any, reason: str) -> glue_pb2.TriggerFire:
        registration = _registration(row.definition, row.version)
        await self._jobs.wait_pushed(_job_names(registration.trigger))
        return await self._link.fire_trigger(registration, uuid.uuid4().hex, reason)

    async def fires(self, params: GlueDict) -> list[glue_pb2.TriggerFire]:
        """GetTriggerFires (extension): the fire ledger, newest first."""
        name = params.get("Name") or ""
        validate_request("StartTrigger", {"Name": name})
        limit = params.get("MaxResults")
        if limit is not None and not 1 <= limit <= MAX_FIRES:
            raise InvalidInputException(
                f"MaxResults: must be between 1 and {MAX_FIRES} (got {limit})", field="MaxResults"
            )
        await self._load(name)
        return await self._link.list_trigger_fires(name, limit or DEFAULT_FIRES)

    # -- reads -------------------------------------------------------------------------------

    async def get(self, params: GlueDict) -> glue_pb2.Trigger:
        """GetTrigger."""
        validate_request("GetTrigger", params)
        return _shown(await self._load(params["Name"]))

    async def _scan(
        self, after: str | None, limit: int, dependent: str | None, tags: dict[str, str]
    ) -> tuple[list[Any], bool]:
        """Rows in name order after ``after`` that pass the filters; and whether more exist."""
        picked: list[Any] = []
        cursor = after
        async with self._db.read() as conn:
            if dependent is not None:
                # AWS documents that with no trigger able to start the job, all are returned.
                every = await conn.execute(select(triggers.c.definition))
                if not any(
                    dependent in _job_names(glue_pb2.Trigger.FromString(r.definition))
                    for r in every
                ):
                    dependent = None
            while True:
                query = select(triggers).order_by(triggers.c.name).limit(BATCH)
                if cursor is not None:
                    query = query.where(triggers.c.name > cursor)
                rows = (await conn.execute(query)).all()
                for row in rows:
                    if dependent is not None and dependent not in _job_names(
                        glue_pb2.Trigger.FromString(row.definition)
                    ):
                        continue
                    if tags:
                        held = json.loads(row.tags)
                        if any(held.get(k) != v for k, v in tags.items()):
                            continue
                    if len(picked) == limit:
                        return picked, True
                    picked.append(row)
                if len(rows) < BATCH:
                    return picked, False
                cursor = rows[-1].name

    async def get_triggers(self, params: GlueDict) -> tuple[list[glue_pb2.Trigger], str | None]:
        """GetTriggers: a page of triggers in name order (DependentJobName: see module doc)."""
        validate_request("GetTriggers", params)
        after = decode_token(params.get("NextToken"), "triggers")
        limit = page_size(params.get("MaxResults"), DEFAULT_PAGE)
        rows, more = await self._scan(
            str(after[0]) if after else None, limit, params.get("DependentJobName"), {}
        )
        token = encode_token("triggers", [rows[-1].name]) if more else None
        return [_shown(r) for r in rows], token

    async def list_triggers(self, params: GlueDict) -> tuple[list[str], str | None]:
        """ListTriggers: names; Tags must all match (applied before paging)."""
        validate_request("ListTriggers", params)
        after = decode_token(params.get("NextToken"), "triggers")
        limit = page_size(params.get("MaxResults"), DEFAULT_PAGE)
        rows, more = await self._scan(
            str(after[0]) if after else None,
            limit,
            params.get("DependentJobName"),
            params.get("Tags") or {},
        )
        token = encode_token("triggers", [rows[-1].name]) if more else None
        return [r.name for r in rows], token

    async def batch_get(self, params: GlueDict) -> tuple[list[glue_pb2.Trigger], list[str]]:
        """BatchGetTriggers: found triggers and the names not found, in the order asked."""
        validate_request("BatchGetTriggers", params)
        names = list(dict.fromkeys(params["TriggerNames"]))
        found: dict[str, Any] = {}
        async with self._db.read() as conn:
            for start in range(0, len(names), BATCH):
                chunk = names[start : start + BATCH]
                for row in await conn.execute(select(triggers).where(triggers.c.name.in_(chunk))):
                    found[row.name] = row
        return [_shown(found[n]) for n in names if n in found], [n for n in names if n not in found]

    # -- reconciliation ----------------------------------------------------------------------

    async def reconcile(self, held: list[scheduler_pb2.RegistrationVersion]) -> int:
        """Push what the scheduler lacks, finish pending changes; returns how many pushes."""
        held_by_name = {r.name: r for r in held}
        async with self._db.read() as conn:
            rows = (await conn.execute(select(triggers))).all()
        pushed = 0
        for row in rows:
            current = held_by_name.get(row.name)
            if row.pending == "DELETING":
                await self._link.unschedule(row.name, row.version, delete=True)
                async with self._db.transaction() as conn:
                    await conn.execute(
                        delete(triggers)
                        .where(triggers.c.name == row.name)
                        .where(triggers.c.version == row.version)
                    )
                pushed += 1
                continue
            if current is None or current.version < row.version or current.deleted:
                await self._link.add_trigger(_registration(row.definition, row.version))
                pushed += 1
            if row.pending:
                await self._settle(row.name, row.version)
        names = {r.name for r in rows}
        for extra in held:
            if not extra.deleted and extra.name not in names:
                async with self._db.transaction() as conn:
                    version = await next_version(conn)
                await self._link.unschedule(extra.name, version, delete=True)
                pushed += 1
        return pushed
