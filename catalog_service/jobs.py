"""Jobs: CreateJob, UpdateJob, DeleteJob, GetJob, GetJobs, ListJobs, BatchGetJobs.

Operations take and return Glue-form dicts or glue.v1 messages; every rule lives here (or in
``validation``), so the gRPC servicer and any other front end share them. After each commit
the job's registration is pushed to the scheduler in the background - registrations queued
while a push is in flight go together in the next AddJobs call, one scheduler transaction for
all of them: a failed push is repaired by the reconciler, and StartJobRun carries the
registration itself, so no call waits on it (a trigger fire waits for its jobs' pushes:
``wait_pushed``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Callable, Coroutine, Iterable
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

from sqlalchemy import bindparam, delete, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from catalog_service import glue_defaults, identity, limits
from catalog_service.limits import Limits
from catalog_service.pagination import decode_token, encode_token, page_size
from catalog_service.scheduler_link import SchedulerLink
from catalog_service.tables import counters, job_runs, jobs, triggers
from catalog_service.validation import validate_request
from glue.scheduler.v1 import scheduler_pb2
from glue.v1 import glue_pb2
from glue_vocabulary.shapes import GlueDict, from_glue
from servicekit.db import Database
from servicekit.errors import (
    AlreadyExistsException,
    EntityNotFoundException,
    GlueError,
    ResourceNumberLimitExceededException,
)

log = logging.getLogger(__name__)

DEFAULT_PAGE = 100
BATCH = 500
# Registrations StartJobRun reads, kept in memory (each is a job's definition: a few KB).
REGISTRATION_CACHE_SIZE = 10_000
# The serialized registrations one AddJobs call carries at most (a CodeGenConfigurationNodes
# job can be megabytes; the internal API's messages are capped at 16 MiB).
PUSH_BATCH_BYTES = 4 * 1024 * 1024

# Glue's defaults for the members a job leaves out, filled in when it is stored.
with_defaults = glue_defaults.job_defaults


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


def registration(
    job: glue_pb2.Job, version: int, incarnation: str
) -> scheduler_pb2.JobRegistration:
    """The scheduler's registration of a job."""
    return scheduler_pb2.JobRegistration(job=job, version=version, incarnation=incarnation)


class JobCatalog:
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
        # StartJobRun's registrations by job name. A read fills it only if no write of the job
        # committed meanwhile (``_writes``, bumped after each write's commit), so it never
        # keeps an older registration than the table's (one catalog process owns the table).
        self._registrations: dict[str, scheduler_pb2.JobRegistration] = {}
        self._writes: dict[str, int] = {}
        # --max-jobs-per-identity, counted in memory while far from it.
        self.quota = limits.JobQuota(db, self.caps.max_jobs_per_identity, jobs, jobs.c.created_by)

    async def close(self) -> None:
        """Let registration pushes in flight finish (briefly); the reconciler covers the rest."""
        tasks = set(self._pushes)
        if self._pusher is not None:
            tasks.add(self._pusher)
        if tasks:
            await asyncio.wait(tasks, timeout=2)
        for task in tasks:
            task.cancel()

    def _written(self, name: str, current: scheduler_pb2.JobRegistration | None) -> None:
        """After a write of job ``name`` committed: its registration now (None: deleted)."""
        self._writes[name] = self._writes.get(name, 0) + 1
        self._registrations.pop(name, None)
        if current is not None:
            self._remember(current)

    def _remember(self, current: scheduler_pb2.JobRegistration) -> None:
        if len(self._registrations) >= REGISTRATION_CACHE_SIZE:
            # Oldest first (dicts keep insertion order).
            del self._registrations[next(iter(self._registrations))]
        self._registrations[current.job.name] = current

    def _push_registration(self, current: scheduler_pb2.JobRegistration) -> None:
        """Queue a job's registration for the next AddJobs call (the newest version wins)."""
        name = current.job.name
        queued = self._queued.get(name)
        if queued is None or current.version > queued.version:
            self._queued[name] = current
        done = self._queued_done.get(name)
        if done is None:
            done = self._queued_done[name] = asyncio.get_running_loop().create_future()
            self._track(name, done)
        if self._pusher is None:
            self._pusher = asyncio.get_running_loop().create_task(self._push_queued())

    async def _push_queued(self) -> None:
        """Send what is queued, one AddJobs call at a time, until nothing is."""
        try:
            while self._queued:
                batch: list[scheduler_pb2.JobRegistration] = []
                size = 0
                for name in list(self._queued):
                    item = self._queued[name]
                    size += item.ByteSize()
                    if batch and size > PUSH_BATCH_BYTES:
                        break
                    batch.append(self._queued.pop(name))
                done = [self._queued_done.pop(r.job.name) for r in batch]
                try:
                    self.push_calls += 1
                    await self._link.add_jobs(batch)
                except GlueError as exc:
                    log.warning(
                        "could not update the scheduler; the reconciler will",
                        extra={"change": f"AddJobs ({len(batch)} jobs)", "error": exc.message},
                    )
                except Exception:
                    # Not a reason to stop pushing the jobs queued after these.
                    log.exception("AddJobs failed; the reconciler will push these jobs")
                finally:
                    for future in done:
                        if not future.done():
                            future.set_result(None)
        finally:
            self._pusher = None
            for future in self._queued_done.values():
                # Cancelled (closing): whoever waits is not held up; the reconciler pushes.
                if not future.done():
                    future.set_result(None)
            self._queued.clear()
            self._queued_done.clear()

    def _track(self, name: str, push: asyncio.Future[None]) -> None:
        """``push`` is job ``name``'s latest push (what ``wait_pushed`` waits for)."""
        self._latest_push[name] = push

        def forget(done: asyncio.Future[None]) -> None:
            if self._latest_push.get(name) is done:
                del self._latest_push[name]

        push.add_done_callback(forget)

    async def wait_pushed(self, names: Iterable[str], timeout: float = 5.0) -> None:
        """Wait (briefly) for in-flight registration pushes of these jobs to finish.

        A trigger fired right after CreateJob must find the job in the scheduler; a push that
        fails is the reconciler's to repair, and the fire then records an ERROR run.
        """
        pending = [
            task for name in names if (task := self._latest_push.get(name)) and not task.done()
        ]
        if pending:
            await asyncio.wait(pending, timeout=timeout)

    def _push(self, what: str, call: Coroutine[Any, Any, bool], name: str) -> None:
        async def push() -> None:
            try:
                await call
            except GlueError as exc:
                log.warning(
                    "could not update the scheduler; the reconciler will",
                    extra={"change": what, "error": exc.message},
                )

        task = asyncio.get_running_loop().create_task(push())
        self._pushes.add(task)
        task.add_done_callback(self._pushes.discard)
        self._track(name, task)

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
        stmt = _INSERT_JOB["postgresql"]
        if not job.default_arguments and not job.non_overridable_arguments:
            # No trigger check to share a transaction with (``_check_trigger_runs``).
            async with self._db.statement() as conn:
                inserted = (await conn.execute(stmt, row)).first()
        else:
            async with self._db.transaction() as conn:
                await self._check_trigger_runs(conn, job, "")
                inserted = (await conn.execute(stmt, row)).first()
        return None if inserted is None else int(inserted.version)

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

    # -- reads -------------------------------------------------------------------------------

    def _select_for_update(self, name: str) -> Any:
        query = select(jobs).where(jobs.c.name == name)
        return query.with_for_update() if not self._db.is_sqlite else query

    async def _exists(self, conn: AsyncConnection, name: str) -> bool:
        return (
            await conn.execute(select(jobs.c.name).where(jobs.c.name == name))
        ).first() is not None

    async def get(self, params: GlueDict) -> glue_pb2.Job:
        """GetJob.

        Raises:
            EntityNotFoundException: no such job.
        """
        validate_request("GetJob", params)
        name: str = params["JobName"]
        async with self._db.read() as conn:
            row = (await conn.execute(select(jobs.c.definition).where(jobs.c.name == name))).first()
        if row is None:
            raise EntityNotFoundException.job(name)
        return glue_pb2.Job.FromString(row.definition)

    async def get_registration(self, name: str) -> scheduler_pb2.JobRegistration:
        """The job's current registration (for StartJobRun).

        Raises:
            EntityNotFoundException: no such job.
        """
        cached = self._registrations.get(name)
        if cached is not None:
            return cached
        writes = self._writes.get(name, 0)
        async with self._db.read() as conn:
            row = (await conn.execute(select(jobs).where(jobs.c.name == name))).first()
        if row is None:
            raise EntityNotFoundException.job(name)
        current = registration(
            glue_pb2.Job.FromString(row.definition), row.version, row.incarnation
        )
        if self._writes.get(name, 0) == writes:
            self._remember(current)
        return current

    async def incarnation(self, name: str) -> str:
        """The job's incarnation: what the scheduler keeps its per-job state under.

        Raises:
            EntityNotFoundException: no such job.
        """
        async with self._db.read() as conn:
            value = (
                await conn.execute(select(jobs.c.incarnation).where(jobs.c.name == name))
            ).scalar_one_or_none()
        if value is None:
            raise EntityNotFoundException.job(name)
        return str(value)

    async def renew_version(
        self, stale: scheduler_pb2.JobRegistration, past: int
    ) -> scheduler_pb2.JobRegistration | None:
        """Give a job a version beyond ``past`` unless it changed since ``stale`` was read;
        its registration under the new version (None: it changed, and that change pushes)."""
        async with self._db.transaction() as conn:
            version = await version_after(conn, past)
            result = await conn.execute(
                update(jobs)
                .where(jobs.c.name == stale.job.name)
                .where(jobs.c.version == stale.version)
                .values(version=version)
            )
        if not result.rowcount:
            return None
        renewed = registration(stale.job, version, stale.incarnation)
        self._written(stale.job.name, renewed)
        return renewed

    async def all_registrations(self) -> list[scheduler_pb2.JobRegistration]:
        """Every job's registration (for the reconciler)."""
        async with self._db.read() as conn:
            rows = (await conn.execute(select(jobs))).all()
        return [
            registration(glue_pb2.Job.FromString(r.definition), r.version, r.incarnation)
            for r in rows
        ]

    async def get_jobs(self, params: GlueDict) -> tuple[list[glue_pb2.Job], str | None]:
        """GetJobs: one page of jobs in name order."""
        validate_request("GetJobs", params)
        after = decode_token(params.get("NextToken"), "jobs", (str,))
        limit = page_size(params.get("MaxResults"), DEFAULT_PAGE)
        query = select(jobs.c.name, jobs.c.definition).order_by(jobs.c.name).limit(limit + 1)
        if after is not None:
            query = query.where(jobs.c.name > str(after[0]))
        async with self._db.read() as conn:
            rows = (await conn.execute(query)).all()
        page = rows[:limit]
        page = page[: limits.fit_page([len(r.definition) for r in page], self.caps)]
        token = encode_token("jobs", [page[-1].name]) if len(rows) > len(page) else None
        return [glue_pb2.Job.FromString(r.definition) for r in page], token

    async def list_jobs(self, params: GlueDict) -> tuple[list[str], str | None]:
        """ListJobs: one page of names in name order, filtered by Tags before paging.

        A job matches the Tags filter when it has every given key with the given value.
        """
        validate_request("ListJobs", params)
        after = decode_token(params.get("NextToken"), "jobs", (str,))
        limit = page_size(params.get("MaxResults"), DEFAULT_PAGE)
        wanted: dict[str, str] = params.get("Tags") or {}
        cursor = str(after[0]) if after is not None else None
        names: list[str] = []
        more = False
        async with self._db.read() as conn:
            while True:
                query = select(jobs.c.name, jobs.c.tags).order_by(jobs.c.name).limit(BATCH)
                if cursor is not None:
                    query = query.where(jobs.c.name > cursor)
                rows = (await conn.execute(query)).all()
                for row in rows:
                    if wanted:
                        tags = json.loads(row.tags)
                        if any(tags.get(k) != v for k, v in wanted.items()):
                            continue
                    if len(names) == limit:
                        more = True
                        break
                    names.append(row.name)
                if more or len(rows) < BATCH:
                    break
                cursor = rows[-1].name
        return names, encode_token("jobs", [names[-1]]) if more else None

    async def batch_get(self, params: GlueDict) -> tuple[list[glue_pb2.Job], list[str]]:
        """BatchGetJobs: the jobs found, and the names not found, in the order asked."""
        validate_request("BatchGetJobs", params)
        limits.check_batch(params["JobNames"], "JobNames", self.caps)
        names = list(dict.fromkeys(params["JobNames"]))
        found: dict[str, bytes] = {}
        async with self._db.read() as conn:
            for start in range(0, len(names), BATCH):
                chunk = names[start : start + BATCH]
                rows = await conn.execute(
                    select(jobs.c.name, jobs.c.definition).where(jobs.c.name.in_(chunk))
                )
                found.update({r.name: r.definition for r in rows})
        return (
            [glue_pb2.Job.FromString(found[n]) for n in names if n in found],
            [n for n in names if n not in found],
        )

    async def count(self) -> int:
        """How many jobs exist."""
        async with self._db.read() as conn:
            return int((await conn.execute(select(func.count()).select_from(jobs))).scalar_one())


def epoch_now() -> float:
    """Now, as epoch seconds."""
    return time.time()
