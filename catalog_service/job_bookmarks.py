"""Job bookmarks: GetJobBookmark and ResetJobBookmark.

The scheduler keeps the bookmarks, since runs commit them (``scheduler_service.bookmarks`` says
what an entry means). The catalog validates the request, answers for the job's existence, and
names the job incarnation it holds, so that a bookmark left by a deleted job of the same name is
never this job's.
"""

from __future__ import annotations

from catalog_service.jobs import JobCatalog
from catalog_service.scheduler_link import SchedulerLink
from catalog_service.validation import validate_request
from glue.v1 import glue_pb2
from glue_vocabulary.shapes import GlueDict


class JobBookmarkCatalog:
    """The job-bookmark operations."""

    def __init__(self, link: SchedulerLink, job_catalog: JobCatalog) -> None:
        self._link = link
        self._jobs = job_catalog

    async def get(self, params: GlueDict) -> glue_pb2.JobBookmarkEntry:
        """GetJobBookmark: the job's current entry, or (RunId) the one that run's commit left.

        Raises:
            InvalidInputException: the request breaks a rule.
            EntityNotFoundException: no such job; none of its runs committed a bookmark; or
                RunId committed none.
            ServiceUnavailableException: the scheduler is unreachable.
        """
        validate_request("GetJobBookmark", params)
        name: str = params["JobName"]
        incarnation = await self._jobs.incarnation(name)
        return await self._link.get_job_bookmark(name, incarnation, params.get("RunId"))

    async def reset(self, params: GlueDict) -> glue_pb2.JobBookmarkEntry:
        """ResetJobBookmark: clear the bookmark, or (RunId) rewind it to before that run's
        commit; returns the entry after the reset.

        Raises:
            InvalidInputException: the request breaks a rule.
            EntityNotFoundException: no such job; none of its runs committed a bookmark; or
                RunId committed none.
            ServiceUnavailableException: the scheduler is unreachable; nothing changed.
        """
        validate_request("ResetJobBookmark", params)
        name: str = params["JobName"]
        incarnation = await self._jobs.incarnation(name)
        return await self._link.reset_job_bookmark(name, incarnation, params.get("RunId"))
