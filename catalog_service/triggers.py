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

from catalog_service import identity, limits
from catalog_service.jobs import JobCatalog
from catalog_service.limits import Limits
from catalog_service.pagination import decode_token, encode_token, page_size
from catalog_service.registration_versions import next_version, version_after
from catalog_service.scheduler_link import SchedulerLink
from catalog_service.tables import jobs, triggers
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
    ServiceUnavailableException,
)

log = logging.getLogger(__name__)

# A change to a stored trigger, made inside the transaction that records it.
Mutation = Callable[[AsyncConnection, glue_pb2.Trigger], Awaitable[None]]

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


def _refuse_while_deleting(row: Any) -> None:
    """A trigger whose delete has not reached the scheduler yet takes no other change.

    Starting or updating it would re-register what the caller asked to delete, and the
    reconciler could no longer tell that the delete is unfinished.
    """
    if row.pending == "DELETING":
        raise InvalidInputException(
            "The operation is not allowed when trigger is in state: DELETING", field="Name"
        )


class TriggerCatalog:
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

    async def _row(self, conn: AsyncConnection, name: str, *, lock: bool = False) -> Any:
        query = select(triggers).where(triggers.c.name == name)
        if lock and not self._db.is_sqlite:
            query = query.with_for_update()
        return (await conn.execute(query)).first()

    async def _load(self, name: str) -> Any:
        async with self._db.read() as conn:
            row = await self._row(conn, name)
        if row is None:
            raise EntityNotFoundException.trigger(name)
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
                await limits.check_quota(
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
        after = decode_token(params.get("NextToken"), "triggers", (str,))
        limit = page_size(params.get("MaxResults"), DEFAULT_PAGE)
        rows, more = await self._scan(
            str(after[0]) if after else None, limit, params.get("DependentJobName"), {}
        )
        fitting = limits.fit_page([len(r.definition) for r in rows], self.caps)
        rows, more = rows[:fitting], more or fitting < len(rows)
        token = encode_token("triggers", [rows[-1].name]) if more else None
        return [_shown(r) for r in rows], token

    async def list_triggers(self, params: GlueDict) -> tuple[list[str], str | None]:
        """ListTriggers: names; Tags must all match (applied before paging)."""
        validate_request("ListTriggers", params)
        after = decode_token(params.get("NextToken"), "triggers", (str,))
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
        limits.check_batch(params["TriggerNames"], "TriggerNames", self.caps)
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
        """Make the scheduler's trigger registrations equal the catalog's; returns the pushes.

        ``held`` is what ListRegistrations answered *before* this reads the catalog, so every
        registration in it belongs to a row committed before that read. Per row: finish a
        DELETING row (unschedule, then remove it); push a registration the scheduler lacks or
        holds an older version of; then clear the row's pending state. Registrations of
        triggers the catalog does not have are unscheduled and deleted.

        One row the scheduler refuses does not stop the others (it is logged and retried next
        pass); an unreachable scheduler ends the pass.

        Raises:
            ServiceUnavailableException: the scheduler went away during the pass.
        """
        held_by_name = {r.name: r for r in held}
        async with self._db.read() as conn:
            rows = (await conn.execute(select(triggers))).all()
        pushed = 0
        for row in rows:
            try:
                pushed += await self._reconcile_row(row, held_by_name.get(row.name))
            except ServiceUnavailableException:
                raise
            except GlueError as exc:
                log.warning(
                    "could not reconcile a trigger; will retry",
                    extra={"trigger": row.name, "error": exc.message},
                )
        names = {r.name for r in rows}
        for extra in held:
            if extra.deleted or extra.name in names:
                continue
            async with self._db.transaction() as conn:
                # Created since the read above: its own push (or the next pass) covers it.
                if await self._row(conn, extra.name) is not None:
                    continue
                version = await next_version(conn)
            await self._link.unschedule(extra.name, version, delete=True)
            pushed += 1
        return pushed

    async def _reconcile_row(
        self, row: Any, current: scheduler_pb2.RegistrationVersion | None
    ) -> int:
        """Bring one trigger's registration up to date; returns 1 if something was pushed."""
        if row.pending == "DELETING":
            await self._link.unschedule(row.name, row.version, delete=True)
            async with self._db.transaction() as conn:
                await conn.execute(
                    delete(triggers)
                    .where(triggers.c.name == row.name)
                    .where(triggers.c.version == row.version)
                )
            return 1
        version = row.version
        pushed = 0
        if current is not None and current.version > version:
            # The scheduler holds a newer version than the catalog ever gave this row: the
            # clean-up of an "extra" raced a CreateTrigger of the same name (on PostgreSQL a
            # sequence value is taken before the row commits), or the catalog's database was
            # restored from a backup. Re-version the row so that its push wins.
            renewed = await self._renew_version(row, current.version)
            if renewed is None:
                return 0  # changed meanwhile; that change pushes itself
            version = renewed
        if current is None or current.version < version or current.deleted:
            await self._link.add_trigger(_registration(row.definition, version))
            pushed = 1
        if row.pending:
            await self._settle(row.name, version)
        return pushed

    async def _renew_version(self, row: Any, past: int) -> int | None:
        """Give ``row`` a version beyond ``past`` (what the scheduler holds) unless it changed
        since it was read."""
        async with self._db.transaction() as conn:
            version = await version_after(conn, past)
            result = await conn.execute(
                update(triggers)
                .where(triggers.c.name == row.name)
                .where(triggers.c.version == row.version)
                .values(version=version)
            )
        return version if result.rowcount else None
