"""Triggers: Create/Update/Delete/Get/GetTriggers/ListTriggers/BatchGet/Start/Stop, FireTrigger.

The catalog records each trigger's settled state (CREATED, ACTIVATED, DEACTIVATED) and, while
a change is on its way to the scheduler, a pending transitional state (ACTIVATING,
DEACTIVATING, UPDATING, DELETING) that GetTrigger shows instead. Start, Stop, Update and
Delete wait for the scheduler to acknowledge the new version before returning, so "the old
schedule never fires after UpdateTrigger returns" holds; if the scheduler cannot be reached
the call fails (UNAVAILABLE), the row keeps its pending state, and the reconciler pushes it and
settles the row when the scheduler is back - nothing stays transitional forever. CreateTrigger
succeeds even then: the trigger shows CREATED (or ACTIVATING, with StartOnCreation) until the
reconciler has registered it.

Decisions where Glue leaves room (docs/glue-semantics.md §3c; the definition rules are in
``trigger_rules``):
- DependentJobName follows AWS's documentation: the triggers whose actions start that job, and
  when no trigger does, every trigger (moto returns none; AWS documents all).
- TriggerUpdate merges the members given; TriggerUpdate.Name may only repeat the current name
  (triggers cannot be renamed); Type and WorkflowName never change.
- StopTrigger on a DEACTIVATED trigger succeeds and changes nothing; on CREATED (any type,
  hence always for ON_DEMAND and EVENT) it is Glue's InvalidInputException "The operation is
  not allowed when trigger is in state: CREATED".
- A trigger that is DELETING (its DeleteTrigger has not reached the scheduler yet) cannot be
  started, stopped, updated or fired: the reconciler finishes the delete.
- FireTrigger (our extension) fires any trigger but an EVENT one, whatever its state.
- Trigger.Id is the trigger's name (names are unique and immutable). WorkflowName is stored
  and echoed, but there are no workflows here: it has no effect.

TriggerCatalog's reads are in ``trigger_reads``, its reconciliation with the scheduler in
``trigger_reconciliation``.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from catalog_service import identity, identity_quotas, limits
from catalog_service.jobs import JobCatalog
from catalog_service.limits import Limits
from catalog_service.registration_versions import next_version
from catalog_service.scheduler_link import SchedulerLink
from catalog_service.tables import jobs, triggers
from catalog_service.trigger_reads import _job_names
from catalog_service.trigger_reconciliation import TriggerReconciliation, _registration
from catalog_service.trigger_rules import FIRING_TYPES, check_trigger, normalized
from catalog_service.validation import validate_request
from glue.scheduler.v1 import scheduler_pb2
from glue.v1 import glue_pb2
from glue_vocabulary.shapes import GlueDict, from_glue, to_glue
from servicekit.db import Database
from servicekit.errors import (
    AlreadyExistsException,
    ConstraintViolation,
    EntityNotFoundException,
    GlueError,
    InvalidInputException,
)

log = logging.getLogger(__name__)

# A change to a stored trigger, made inside the transaction that records it.
Mutation = Callable[[AsyncConnection, glue_pb2.Trigger], Awaitable[None]]

DEFAULT_FIRES = 20
MAX_FIRES = 200


def _refuse_while_deleting(row: Any) -> None:
    """A trigger whose delete has not reached the scheduler yet takes no other change.

    Starting or updating it would re-register what the caller asked to delete, and the
    reconciler could no longer tell that the delete is unfinished.
    """
    if row.pending == "DELETING":
        raise InvalidInputException(
            "The operation is not allowed when trigger is in state: DELETING", field="Name"
        )


class TriggerCatalog(TriggerReconciliation):
    """The trigger operations."""

    def __init__(
        self,
        db: Database,
        link: SchedulerLink,
        job_catalog: JobCatalog,
        *,
        caps: Limits | None = None,
    ) -> None:
        self._db = db
        self._link = link
        self._jobs = job_catalog
        self.caps = caps or Limits()

    # -- helpers -----------------------------------------------------------------------------

    async def _require_jobs(self, conn: AsyncConnection, names: set[str]) -> None:
        found = {
            r.name for r in await conn.execute(select(jobs.c.name).where(jobs.c.name.in_(names)))
        }
        for name in sorted(names - found):
            raise EntityNotFoundException.job(name)

    async def _check_runs_fit(
        self, conn: AsyncConnection, trigger: glue_pb2.Trigger, prefix: str
    ) -> None:
        """Each action's run would get arguments within the cap, merged with its job's.

        On PostgreSQL the jobs' rows are read under a share lock: an UpdateJob of one of them
        (which checks the triggers naming it) then waits for this transaction, or this one for
        it, so neither checks against the other's old version.
        """
        names = _job_names(trigger)
        if not names:
            return
        query = select(jobs.c.name, jobs.c.definition).where(jobs.c.name.in_(names))
        if not self._db.is_sqlite:
            query = query.with_for_update(read=True)
        found = {r.name: glue_pb2.Job.FromString(r.definition) for r in await conn.execute(query)}
        for index, action in enumerate(trigger.actions):
            job = found.get(action.job_name)
            if job is not None:
                limits.check_merged(
                    job.name,
                    job.default_arguments,
                    action.arguments,
                    job.non_overridable_arguments,
                    f"{prefix}Actions[{index}].Arguments",
                    self.caps,
                )

    async def _change(self, name: str, pending: str, mutate: Mutation) -> glue_pb2.Trigger:
        """Apply ``mutate`` to the stored trigger, mark it pending, push it, settle it.

        ``mutate`` runs inside the transaction, on the row as locked (PostgreSQL) or under the
        write lock (SQLite), so concurrent changes of one trigger apply one after the other
        instead of overwriting each other; if it raises, nothing changes.
        """
        async with self._db.transaction() as conn:
            row = await self._row(conn, name, lock=True)
            if row is None:
                raise EntityNotFoundException.trigger(name)
            _refuse_while_deleting(row)
            trigger = glue_pb2.Trigger.FromString(row.definition)
            await mutate(conn, trigger)
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
        return trigger

    # -- writes ------------------------------------------------------------------------------

    async def create(self, params: GlueDict) -> str:
        """CreateTrigger.

        Raises:
            InvalidInputException: the definition breaks a rule.
            EntityNotFoundException: an action names a job that does not exist.
            AlreadyExistsException: a trigger of that name exists.
            ResourceNumberLimitExceededException: too many actions, or the caller is at its
                quota of triggers.
        """
        validate_request("CreateTrigger", params)
        limits.check_trigger(params, "", self.caps)
        name: str = params["Name"]
        start = bool(params.get("StartOnCreation"))
        definition = normalized(
            {
                k: v
                for k, v in params.items()
                if k not in ("Tags", "StartOnCreation") and v is not None
            }
        )
        check_trigger(definition, start_on_creation=start, schedule_fires_after=datetime.now(UTC))
        activated = start and definition["Type"] in FIRING_TYPES
        definition["Id"] = name
        definition["State"] = "ACTIVATED" if activated else "CREATED"
        trigger = from_glue(definition, glue_pb2.Trigger)
        creator = identity.caller_name()
        if creator is not None:
            trigger.created_by = creator
        try:
            async with self._db.transaction() as conn:
                if await self._row(conn, name) is not None:
                    raise AlreadyExistsException(f"Trigger {name} already exists.")
                await self._require_jobs(conn, _job_names(trigger))
                await self._check_runs_fit(conn, trigger, "")
                await identity_quotas.check_quota(
                    conn,
                    triggers.c.created_by,
                    self.caps.max_triggers_per_identity,
                    "triggers",
                    "max-triggers-per-identity",
                )
                version = await next_version(conn)
                await conn.execute(
                    insert(triggers).values(
                        name=name,
                        version=version,
                        definition=trigger.SerializeToString(),
                        pending="ACTIVATING" if activated else None,
                        tags=json.dumps(params.get("Tags") or {}),
                        created_on=time.time(),
                        created_by=creator,
                    )
                )
        except ConstraintViolation:
            # Lost a race with a concurrent CreateTrigger of the same name.
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
        """UpdateTrigger: merges the members given; returns the whole trigger.

        The state is kept; an ACTIVATED trigger is rescheduled by the scheduler when it stores
        the new version, and this returns only after it has.

        Raises:
            InvalidInputException: a rename, or the merged definition breaks a rule.
            EntityNotFoundException: no such trigger, or an action names a missing job.
            ServiceUnavailableException: the scheduler did not acknowledge (the reconciler
                finishes the update; GetTrigger shows UPDATING until then).
        """
        validate_request("UpdateTrigger", params)
        limits.check_trigger(params["TriggerUpdate"], "TriggerUpdate.", self.caps)
        name: str = params["Name"]
        changes: GlueDict = normalized(dict(params["TriggerUpdate"]))
        if changes.get("Name", name) != name:
            raise InvalidInputException(
                "TriggerUpdate.Name: triggers cannot be renamed (delete and create instead)",
                field="TriggerUpdate.Name",
            )
        changes.pop("Name", None)
        # Only a schedule supplied now must still have a fire ahead of it: an unrelated update
        # of a trigger whose schedule has run out is not refused for it.
        fires_after = datetime.now(UTC) if "Schedule" in changes else None

        async def merge(conn: AsyncConnection, trigger: glue_pb2.Trigger) -> None:
            # Type, WorkflowName, Id and State are not TriggerUpdate members: they carry over.
            merged = {**to_glue(trigger), **changes}
            merged.pop("CreatedBy", None)  # not Glue's: carried over below
            check_trigger(merged, schedule_fires_after=fires_after)
            new = from_glue(merged, glue_pb2.Trigger)
            if trigger.HasField("created_by"):
                new.created_by = trigger.created_by
            await self._require_jobs(conn, _job_names(new))
            await self._check_runs_fit(conn, new, "TriggerUpdate.")
            trigger.CopyFrom(new)

        return await self._change(name, "UPDATING", merge)

    async def delete(self, params: GlueDict) -> str:
        """DeleteTrigger: unschedules and removes; no error if absent; runs in flight finish.

        Raises:
            ServiceUnavailableException: the scheduler did not acknowledge (GetTrigger shows
                DELETING until the reconciler has finished the delete).
        """
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
        _refuse_while_deleting(row)
        trigger = glue_pb2.Trigger.FromString(row.definition)
        if trigger.type == "EVENT":
            raise InvalidInputException("Trigger Type EVENT cannot be started", field="Name")
        if trigger.type == "ON_DEMAND":
            await self._fire(row, "on demand")
            return name
        if trigger.state == "ACTIVATED" and not row.pending:
            return name

        async def activate(conn: AsyncConnection, t: glue_pb2.Trigger) -> None:
            t.state = "ACTIVATED"

        await self._change(name, "ACTIVATING", activate)
        return name

    async def stop(self, params: GlueDict) -> str:
        """StopTrigger: ACTIVATED -> DEACTIVATED; runs already started keep running.

        Glue refuses it by state, not by type: ON_DEMAND and EVENT triggers are always
        CREATED, so they get the CREATED message (as AWS answers for EVENT triggers).
        """
        validate_request("StopTrigger", params)
        name: str = params["Name"]
        row = await self._load(name)
        _refuse_while_deleting(row)
        trigger = glue_pb2.Trigger.FromString(row.definition)
        if trigger.state == "CREATED":
            raise InvalidInputException(
                "The operation is not allowed when trigger is in state: CREATED", field="Name"
            )
        if trigger.state == "DEACTIVATED" and not row.pending:
            return name

        async def deactivate(conn: AsyncConnection, t: glue_pb2.Trigger) -> None:
            t.state = "DEACTIVATED"

        await self._change(name, "DEACTIVATING", deactivate)
        return name

    async def fire(self, params: GlueDict) -> glue_pb2.TriggerFire:
        """FireTrigger (extension): fire the trigger's actions once, now, in any state.

        Raises:
            EntityNotFoundException: no such trigger.
            InvalidInputException: an EVENT trigger (nothing here fires those), or DELETING.
            ServiceUnavailableException: the scheduler is unreachable (nothing fired).
        """
        name = params.get("Name") or ""
        validate_request("StartTrigger", {"Name": name})
        row = await self._load(name)
        _refuse_while_deleting(row)
        if glue_pb2.Trigger.FromString(row.definition).type == "EVENT":
            raise InvalidInputException("Trigger Type EVENT cannot be fired here", field="Name")
        return await self._fire(row, "manual fire")

    async def _fire(self, row: Any, reason: str) -> glue_pb2.TriggerFire:
        registration = _registration(row.definition, row.version)
        # Checked when the trigger and its jobs were written; again here in case the cap was
        # lowered since, so a fire this catalog sends never carries oversized runs.
        async with self._db.read() as conn:
            await self._check_runs_fit(conn, registration.trigger, "")
        await self._jobs.wait_pushed(_job_names(registration.trigger))
        # A new id per request; the link's retries resend the same one, so a retried call
        # fires once.
        fire = await self._link.fire_trigger(registration, uuid.uuid4().hex, reason)
        if row.pending:
            # The fire carried this version's registration, which the scheduler stored first.
            await self._settle(row.name, row.version)
        return fire

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
