"""JobCatalog's reads: GetJob, GetJobs, ListJobs, BatchGetJobs, and the registrations that
StartJobRun and the reconciler read (StartJobRun's from a cache that writes keep current).
"""

from __future__ import annotations

import json

from sqlalchemy import func, select, update

from catalog_service import limits
from catalog_service.limits import Limits
from catalog_service.named_rows import rows_named
from catalog_service.pagination import decode_token, encode_token, page_size
from catalog_service.registration_versions import version_after
from catalog_service.tables import jobs
from catalog_service.validation import validate_request
from glue.scheduler.v1 import scheduler_pb2
from glue.v1 import glue_pb2
from glue_vocabulary.shapes import GlueDict
from servicekit.db import Database
from servicekit.errors import EntityNotFoundException

DEFAULT_PAGE = 100
BATCH = 500
# Registrations StartJobRun reads, kept in memory (each is a job's definition: a few KB).
REGISTRATION_CACHE_SIZE = 10_000


def registration(
    job: glue_pb2.Job, version: int, incarnation: str
) -> scheduler_pb2.JobRegistration:
    """The scheduler's registration of a job."""
    return scheduler_pb2.JobRegistration(job=job, version=version, incarnation=incarnation)


class JobReads:
    """JobCatalog's reads; its __init__ sets the state declared here."""

    _db: Database
    caps: Limits
    _registrations: dict[str, scheduler_pb2.JobRegistration]
    _writes: dict[str, int]

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
        async with self._db.read() as conn:
            found = await rows_named(conn, jobs, names, jobs.c.name, jobs.c.definition)
        return (
            [glue_pb2.Job.FromString(found[n].definition) for n in names if n in found],
            [n for n in names if n not in found],
        )

    async def count(self) -> int:
        """How many jobs exist."""
        async with self._db.read() as conn:
            return int((await conn.execute(select(func.count()).select_from(jobs))).scalar_one())
