"""GlueClient's job operations: CreateJob, UpdateJob, DeleteJob, GetJob(s), ListJobs,
BatchGetJobs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from clients.glue_client.channel import ClientChannel
from clients.glue_client.requests import _follow_pages, build_request
from glue.v1 import glue_pb2
from glue_vocabulary.shapes import from_glue, message_members, to_glue


def job_update_from_job(job: glue_pb2.Job) -> glue_pb2.JobUpdate:
    """The JobUpdate that leaves ``job`` as it is: the base for a read-modify-UpdateJob."""
    # Job and JobUpdate name their shared members alike; Name, the timestamps and ProfileName
    # are the only Job members a JobUpdate lacks, and those are dropped here.
    wanted = set(message_members(glue_pb2.JobUpdate))
    return from_glue({k: v for k, v in to_glue(job).items() if k in wanted}, glue_pb2.JobUpdate)


class JobOperations(ClientChannel):
    """GlueClient's job operations."""

    async def create_job(
        self, request: glue_pb2.CreateJobRequest | Mapping[str, Any] | None = None, /, **fields: Any
    ) -> glue_pb2.CreateJobResponse:
        """CreateJob: ``fields`` are Glue members (``Name=``, ``Command={...}``) over ``request``.

        Raises:
            InvalidInputException: the definition breaks a rule.
            AlreadyExistsException: a job of that name exists.
        """
        message = build_request(glue_pb2.CreateJobRequest, request, fields)
        return await self._call(
            lambda: self._stub.CreateJob(message, timeout=self.timeout), read_only=False
        )

    async def update_job(
        self,
        job_name: str,
        job_update: glue_pb2.JobUpdate | Mapping[str, Any] | None = None,
        /,
        **fields: Any,
    ) -> glue_pb2.UpdateJobResponse:
        """UpdateJob: replaces the whole definition; members left out return to their defaults.

        ``fields`` are JobUpdate members in Glue form, laid over ``job_update``.

        Raises:
            InvalidInputException: the definition breaks a rule.
            EntityNotFoundException: no such job.
        """
        update = build_request(glue_pb2.JobUpdate, job_update, fields)
        message = glue_pb2.UpdateJobRequest(job_name=job_name, job_update=update)
        return await self._call(
            lambda: self._stub.UpdateJob(message, timeout=self.timeout), read_only=False
        )

    async def delete_job(self, job_name: str) -> glue_pb2.DeleteJobResponse:
        """DeleteJob (succeeds if the job does not exist, as in Glue)."""
        message = glue_pb2.DeleteJobRequest(job_name=job_name)
        return await self._call(
            lambda: self._stub.DeleteJob(message, timeout=self.timeout), read_only=False
        )

    async def get_job(self, job_name: str) -> glue_pb2.GetJobResponse:
        """GetJob.

        Raises:
            EntityNotFoundException: no such job.
        """
        message = glue_pb2.GetJobRequest(job_name=job_name)
        return await self._call(
            lambda: self._stub.GetJob(message, timeout=self.timeout), read_only=True
        )

    async def get_jobs(
        self, *, next_token: str | None = None, max_results: int | None = None
    ) -> glue_pb2.GetJobsResponse:
        """GetJobs: one page of job definitions in name order."""
        message = glue_pb2.GetJobsRequest(next_token=next_token, max_results=max_results)
        return await self._call(
            lambda: self._stub.GetJobs(message, timeout=self.timeout), read_only=True
        )

    async def list_jobs(
        self,
        *,
        tags: Mapping[str, str] | None = None,
        next_token: str | None = None,
        max_results: int | None = None,
    ) -> glue_pb2.ListJobsResponse:
        """ListJobs: one page of job names, only jobs having every tag in ``tags``."""
        message = glue_pb2.ListJobsRequest(
            tags=dict(tags or {}), next_token=next_token, max_results=max_results
        )
        return await self._call(
            lambda: self._stub.ListJobs(message, timeout=self.timeout), read_only=True
        )

    async def batch_get_jobs(self, job_names: Sequence[str]) -> glue_pb2.BatchGetJobsResponse:
        """BatchGetJobs: the jobs found and the names not found."""
        message = glue_pb2.BatchGetJobsRequest(job_names=list(job_names))
        return await self._call(
            lambda: self._stub.BatchGetJobs(message, timeout=self.timeout), read_only=True
        )

    async def iter_jobs(self, *, page_size: int | None = None) -> AsyncIterator[glue_pb2.Job]:
        """Every job definition, following GetJobs' NextToken."""
        async for job in _follow_pages(
            lambda token: self.get_jobs(next_token=token, max_results=page_size),
            lambda page: page.jobs,
        ):
            yield job

    async def iter_job_names(
        self, *, tags: Mapping[str, str] | None = None, page_size: int | None = None
    ) -> AsyncIterator[str]:
        """Every job name (having all of ``tags``), following ListJobs' NextToken."""
        async for name in _follow_pages(
            lambda token: self.list_jobs(tags=tags, next_token=token, max_results=page_size),
            lambda page: page.job_names,
        ):
            yield name
