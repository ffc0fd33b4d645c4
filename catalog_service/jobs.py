"""Jobs: CreateJob, UpdateJob, DeleteJob, GetJob, GetJobs, ListJobs, BatchGetJobs.

Operations take and return Glue-form dicts or glue.v1 messages; every rule lives here (or in
``validation``), so the gRPC servicer and any other front end share them. After each commit
the job's registration is pushed to the scheduler in the background - registrations queued
while a push is in flight go together in the next AddJobs call, one scheduler transaction for
all of them: a failed push is repaired by the reconciler, and StartJobRun carries the
registration itself, so no call waits on it (a trigger fire waits for its jobs' pushes:
``wait_pushed``).

JobCatalog's reads are in ``job_reads``, its pushes in ``job_registration_pushes``, and the
registration version counter it shares with triggers in ``registration_versions``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from types import ModuleType
from typing import Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from catalog_service import glue_defaults, identity, identity_quotas, limits
from catalog_service.job_reads import JobReads, registration
from catalog_service.job_registration_pushes import JobRegistrationPushes
from catalog_service.limits import Limits
from catalog_service.registration_versions import next_version
from catalog_service.scheduler_link import SchedulerLink
from catalog_service.tables import job_runs, jobs, triggers
from catalog_service.validation import validate_request
from glue.scheduler.v1 import scheduler_pb2
from glue.v1 import glue_pb2
from glue_vocabulary.shapes import GlueDict, from_glue
from servicekit.batches import Batches
from servicekit.db import Database
from servicekit.errors import (
    AlreadyExistsException,
    EntityNotFoundException,
    ResourceNumberLimitExceededException,
    ServiceUnavailableException,
)

log = logging.getLogger(__name__)

# Glue's defaults for the members a job leaves out, filled in when it is stored.
with_defaults = glue_defaults.job_defaults


class _NameTaken(Exception):
    """Rolls back a SQLite create whose name was taken (and the version it drew)."""


def _insert_job(dialect: ModuleType, version: Any) -> Any:
    """A dialect's insert of a new job's row (values bound at execution; ``version`` an
    expression or a parameter) doing nothing on a taken name, returning the version of a row
    it inserted. Built once: composing a statement costs more Python than executing it."""
    columns = ("name", "incarnation", "definition", "tags", "created_on", "created_by")
    stmt = dialect.insert(jobs).values(
        {**{name: bindparam(name, type_=jobs.c[name].type) for name in columns}, "version": version}
    )
    return stmt.on_conflict_do_nothing(index_elements=[jobs.c.name]).returning(jobs.c.version)


# PostgreSQL draws the version in the same statement; SQLite's comes from its counter row.
_INSERT_JOB = {
    "postgresql": _insert_job(postgresql, func.nextval("catalog_registration_version")),
    "sqlite": _insert_job(sqlite, bindparam("version", type_=jobs.c.version.type)),
}
# Creates made together on PostgreSQL: the same insert for many rows (SQLAlchemy's
# insertmanyvalues), returning the name of each row it inserted with its version.
_INSERT_JOBS_PG = _INSERT_JOB["postgresql"].returning(jobs.c.name)


class JobCatalog(JobReads, JobRegistrationPushes):
    """The job operations."""

    def __init__(self, db: Database, link: SchedulerLink, *, caps: Limits | None = None) -> None:
        self._db = db
        self._link = link
        self.caps = caps or Limits()
        self._pushes: set[asyncio.Task[None]] = set()
        # Called with a job's name after DeleteJob committed (caches hang off this).
        self.on_deleted: list[Callable[[str], None]] = []
        # The latest push of each job, so a trigger fire can wait for its jobs to be known.
        self._latest_push: dict[str, asyncio.Future[None]] = {}
        # Registrations waiting for the next AddJobs call, and that call's futures.
        self._queued: dict[str, scheduler_pb2.JobRegistration] = {}
        self._queued_done: dict[str, asyncio.Future[None]] = {}
        self._pusher: asyncio.Task[None] | None = None
        self.push_calls = 0
        """AddJobs calls made (for tests: pushes are coalesced)."""
        # PostgreSQL creates without arguments made while one is being written go together.
        self._creates: Batches[dict[str, Any], int | None] = Batches(
            self._insert_rows,
            stopping=partial(ServiceUnavailableException.stopping, "catalog service"),
            writers=2,
        )
        # StartJobRun's registrations by job name. A read fills it only if no write of the job
        # committed meanwhile (``_writes``, bumped after each write's commit), so it never
        # keeps an older registration than the table's (one catalog process owns the table).
        self._registrations: dict[str, scheduler_pb2.JobRegistration] = {}
        self._writes: dict[str, int] = {}
        # --max-jobs-per-identity, counted in memory while far from it.
        self.quota = identity_quotas.JobQuota(
            db, self.caps.max_jobs_per_identity, jobs, jobs.c.created_by
        )

    async def close(self) -> None:
        """Finish the creates being written (briefly), then the registration pushes."""
        await self._creates.close(grace=2.0)
        await super().close()

    # -- writes ------------------------------------------------------------------------------

    async def create(self, params: GlueDict) -> str:
        """CreateJob.

        Raises:
            InvalidInputException: the request breaks a rule or a size cap, or a trigger
                that names the job would start runs with too many arguments.
            AlreadyExistsException: a job of that name exists.
            ResourceNumberLimitExceededException: the caller is at its quota of jobs.
        """
        validate_request("CreateJob", params)
        params = dict(params)
        tags = params.pop("Tags", {})
        name: str = params["Name"]
        limits.check_job(params, name, "", self.caps)
        now = datetime.now(UTC)
        definition = with_defaults(params)
        job = from_glue({**definition, "CreatedOn": now, "LastModifiedOn": now}, glue_pb2.Job)
        creator = identity.caller_name()
        if creator is not None:
            job.created_by = creator
        incarnation = secrets.token_hex(8)
        row = {
            "name": name,
            "incarnation": incarnation,
            "definition": job.SerializeToString(),
            "tags": json.dumps(tags),
            "created_on": now.timestamp(),
            "created_by": creator,
        }
        try:
            async with self.quota.hold():
                version = await self._insert(job, row)
        except ResourceNumberLimitExceededException:
            # A name that exists is the first thing wrong with the request.
            async with self._db.read() as conn:
                if await self._exists(conn, name):
                    raise AlreadyExistsException(f"Job {name} already exists.") from None
            raise
        if version is None:
            raise AlreadyExistsException(f"Job {name} already exists.")
        current = registration(job, version, incarnation)
        self._written(name, current)
        self._push_registration(current)
        return name

    async def _insert(self, job: glue_pb2.Job, row: dict[str, Any]) -> int | None:
        """Insert a new job's row with the next version; None if the name is taken.

        The name check is the insert itself (ON CONFLICT DO NOTHING), and on PostgreSQL the
        version is drawn by the same statement, so a job without arguments is one round trip.
        """
        # Triggers outlive a deleted job, so a re-created one may already be named: the
        # trigger check shares the insert's transaction.
        if self._db.is_sqlite:
            try:
                async with self._db.transaction() as conn:
                    await self._check_trigger_runs(conn, job, "")
                    version = await next_version(conn)
                    values = {**row, "version": version}
                    if (await conn.execute(_INSERT_JOB["sqlite"], values)).first() is None:
                        raise _NameTaken  # and leave the version counter as it was
            except _NameTaken:
                return None
            return version
        if not job.default_arguments and not job.non_overridable_arguments:
            # No trigger check to share a transaction with (``_check_trigger_runs``).
            created: int | None = await self._creates.submit(row)
            return created
        async with self._db.transaction() as conn:
            await self._check_trigger_runs(conn, job, "")
            inserted = (await conn.execute(_INSERT_JOB["postgresql"], row)).first()
        return None if inserted is None else int(inserted.version)

    async def _insert_rows(self, rows: list[dict[str, Any]]) -> list[int | None]:
        """Insert new jobs' rows in one statement (PostgreSQL); each one's version, or None if
        its name is taken - also by an earlier row of the same batch, which went first."""
        async with self._db.statement() as conn:
            inserted = await conn.execute(_INSERT_JOBS_PG, rows)
            versions = {row.name: int(row.version) for row in inserted}
        return [versions.pop(row["name"], None) for row in rows]

    async def update(self, params: GlueDict) -> str:
        """UpdateJob: JobUpdate replaces the whole definition (the name is immutable).

        Raises:
            InvalidInputException: the request breaks a rule or a size cap, or a trigger
                that names the job would start runs with too many arguments.
            EntityNotFoundException: no such job.
        """
        validate_request("UpdateJob", params)
        name: str = params["JobName"]
        limits.check_job(params["JobUpdate"], name, "JobUpdate.", self.caps)
        now = datetime.now(UTC)
        async with self._db.transaction() as conn:
            row = (await conn.execute(self._select_for_update(name))).first()
            if row is None:
                raise EntityNotFoundException.job(name)
            old = glue_pb2.Job.FromString(row.definition)
            definition = with_defaults({**params["JobUpdate"], "Name": name})
            job = from_glue(definition, glue_pb2.Job)
            job.created_on.CopyFrom(old.created_on)
            if old.HasField("created_by"):
                job.created_by = old.created_by
            job.last_modified_on.FromDatetime(now)
            await self._check_trigger_runs(conn, job, "JobUpdate.")
            version = await next_version(conn)
            await conn.execute(
                update(jobs)
                .where(jobs.c.name == name)
                .values(definition=job.SerializeToString(), version=version)
            )
        current = registration(job, version, row.incarnation)
        self._written(name, current)
        self._push_registration(current)
        return name

    async def delete(self, params: GlueDict) -> str:
        """DeleteJob: removes the job and its run history; no error if it does not exist.

        Triggers naming the job are left as they are (Glue does the same). Runs in flight
        finish in the scheduler; their events no longer attach to anything.
        """
        validate_request("DeleteJob", params)
        name: str = params["JobName"]
        async with self._db.transaction() as conn:
            deleted = (await conn.execute(delete(jobs).where(jobs.c.name == name))).rowcount
            if not deleted:
                return name
            await conn.execute(delete(job_runs).where(job_runs.c.job_name == name))
            version = await next_version(conn)
        self._written(name, None)
        for forget in self.on_deleted:
            forget(name)
        self._push(f"DeleteJob {name}", self._link.delete_job(name, version), name)
        return name

    async def _check_trigger_runs(
        self, conn: AsyncConnection, job: glue_pb2.Job, prefix: str
    ) -> None:
        """Every run a trigger would start of ``job`` gets arguments within the cap.

        Runs in the transaction that writes the job, which holds the job's row (PostgreSQL) or
        the write lock (SQLite); trigger writes read the job's row under a share lock, so
        neither side can check against the other's old version. A job without arguments of
        its own adds nothing to an action's (already capped) arguments: no trigger is read.
        """
        if not job.default_arguments and not job.non_overridable_arguments:
            return
        rows = await conn.execute(select(triggers.c.name, triggers.c.definition))
        for row in rows:
            trigger = glue_pb2.Trigger.FromString(row.definition)
            for index, action in enumerate(trigger.actions):
                if action.job_name == job.name:
                    limits.check_merged(
                        job.name,
                        job.default_arguments,
                        action.arguments,
                        job.non_overridable_arguments,
                        f"{prefix}DefaultArguments",
                        self.caps,
                        started_by=f"trigger {row.name} (Actions[{index}])",
                    )

    def _select_for_update(self, name: str) -> Any:
        query = select(jobs).where(jobs.c.name == name)
        return query.with_for_update() if not self._db.is_sqlite else query

    async def _exists(self, conn: AsyncConnection, name: str) -> bool:
        return (
            await conn.execute(select(jobs.c.name).where(jobs.c.name == name))
        ).first() is not None


def epoch_now() -> float:
    """Now, as epoch seconds."""
    return time.time()
