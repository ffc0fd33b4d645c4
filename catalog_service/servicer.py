"""GlueServicer: the public API, one thin method per RPC (convert, call, convert back)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from catalog_service.job_runs import JobRunCatalog
from catalog_service.jobs import JobCatalog
from catalog_service.triggers import TriggerCatalog
from glue.v1 import glue_pb2, glue_pb2_grpc
from servicekit.glue_shapes import to_glue

Context = grpc.aio.ServicerContext[Any, Any]


class GlueServicer(glue_pb2_grpc.GlueServicer):
    """glue.v1.Glue over the job and job-run operations."""

    def __init__(self, jobs: JobCatalog, runs: JobRunCatalog, triggers: TriggerCatalog) -> None:
        self._jobs = jobs
        self._runs = runs
        self._triggers = triggers

    async def CreateJob(  # type: ignore[override]
        self, request: glue_pb2.CreateJobRequest, context: Context
    ) -> glue_pb2.CreateJobResponse:
        return glue_pb2.CreateJobResponse(name=await self._jobs.create(to_glue(request)))

    async def UpdateJob(  # type: ignore[override]
        self, request: glue_pb2.UpdateJobRequest, context: Context
    ) -> glue_pb2.UpdateJobResponse:
        return glue_pb2.UpdateJobResponse(job_name=await self._jobs.update(to_glue(request)))

    async def DeleteJob(  # type: ignore[override]
        self, request: glue_pb2.DeleteJobRequest, context: Context
    ) -> glue_pb2.DeleteJobResponse:
        return glue_pb2.DeleteJobResponse(job_name=await self._jobs.delete(to_glue(request)))

    async def GetJob(  # type: ignore[override]
        self, request: glue_pb2.GetJobRequest, context: Context
    ) -> glue_pb2.GetJobResponse:
        return glue_pb2.GetJobResponse(job=await self._jobs.get(to_glue(request)))

    async def GetJobs(  # type: ignore[override]
        self, request: glue_pb2.GetJobsRequest, context: Context
    ) -> glue_pb2.GetJobsResponse:
        jobs, token = await self._jobs.get_jobs(to_glue(request))
        return glue_pb2.GetJobsResponse(jobs=jobs, next_token=token)

    async def ListJobs(  # type: ignore[override]
        self, request: glue_pb2.ListJobsRequest, context: Context
    ) -> glue_pb2.ListJobsResponse:
        names, token = await self._jobs.list_jobs(to_glue(request))
        return glue_pb2.ListJobsResponse(job_names=names, next_token=token)

    async def BatchGetJobs(  # type: ignore[override]
        self, request: glue_pb2.BatchGetJobsRequest, context: Context
    ) -> glue_pb2.BatchGetJobsResponse:
        found, missing = await self._jobs.batch_get(to_glue(request))
        return glue_pb2.BatchGetJobsResponse(jobs=found, jobs_not_found=missing)

    async def StartJobRun(  # type: ignore[override]
        self, request: glue_pb2.StartJobRunRequest, context: Context
    ) -> glue_pb2.StartJobRunResponse:
        return glue_pb2.StartJobRunResponse(job_run_id=await self._runs.start(to_glue(request)))

    async def GetJobRun(  # type: ignore[override]
        self, request: glue_pb2.GetJobRunRequest, context: Context
    ) -> glue_pb2.GetJobRunResponse:
        return glue_pb2.GetJobRunResponse(job_run=await self._runs.get(to_glue(request)))

    async def GetJobRuns(  # type: ignore[override]
        self, request: glue_pb2.GetJobRunsRequest, context: Context
    ) -> glue_pb2.GetJobRunsResponse:
        runs, token = await self._runs.list_runs(to_glue(request))
        return glue_pb2.GetJobRunsResponse(job_runs=runs, next_token=token)

    async def BatchStopJobRun(  # type: ignore[override]
        self, request: glue_pb2.BatchStopJobRunRequest, context: Context
    ) -> glue_pb2.BatchStopJobRunResponse:
        successes, errors = await self._runs.batch_stop(to_glue(request))
        return glue_pb2.BatchStopJobRunResponse(successful_submissions=successes, errors=errors)

    async def GetJobRunLog(  # type: ignore[override]
        self, request: glue_pb2.GetJobRunLogRequest, context: Context
    ) -> AsyncIterator[glue_pb2.GetJobRunLogResponse]:
        async for data, offset in self._runs.read_log(to_glue(request)):
            yield glue_pb2.GetJobRunLogResponse(data=data, offset=offset)

    async def CreateTrigger(  # type: ignore[override]
        self, request: glue_pb2.CreateTriggerRequest, context: Context
    ) -> glue_pb2.CreateTriggerResponse:
        return glue_pb2.CreateTriggerResponse(name=await self._triggers.create(to_glue(request)))

    async def UpdateTrigger(  # type: ignore[override]
        self, request: glue_pb2.UpdateTriggerRequest, context: Context
    ) -> glue_pb2.UpdateTriggerResponse:
        return glue_pb2.UpdateTriggerResponse(trigger=await self._triggers.update(to_glue(request)))

    async def DeleteTrigger(  # type: ignore[override]
        self, request: glue_pb2.DeleteTriggerRequest, context: Context
    ) -> glue_pb2.DeleteTriggerResponse:
        return glue_pb2.DeleteTriggerResponse(name=await self._triggers.delete(to_glue(request)))

    async def GetTrigger(  # type: ignore[override]
        self, request: glue_pb2.GetTriggerRequest, context: Context
    ) -> glue_pb2.GetTriggerResponse:
        return glue_pb2.GetTriggerResponse(trigger=await self._triggers.get(to_glue(request)))

    async def GetTriggers(  # type: ignore[override]
        self, request: glue_pb2.GetTriggersRequest, context: Context
    ) -> glue_pb2.GetTriggersResponse:
        found, token = await self._triggers.get_triggers(to_glue(request))
        return glue_pb2.GetTriggersResponse(triggers=found, next_token=token)

    async def ListTriggers(  # type: ignore[override]
        self, request: glue_pb2.ListTriggersRequest, context: Context
    ) -> glue_pb2.ListTriggersResponse:
        names, token = await self._triggers.list_triggers(to_glue(request))
        return glue_pb2.ListTriggersResponse(trigger_names=names, next_token=token)

    async def BatchGetTriggers(  # type: ignore[override]
        self, request: glue_pb2.BatchGetTriggersRequest, context: Context
    ) -> glue_pb2.BatchGetTriggersResponse:
        found, missing = await self._triggers.batch_get(to_glue(request))
        return glue_pb2.BatchGetTriggersResponse(triggers=found, triggers_not_found=missing)

    async def StartTrigger(  # type: ignore[override]
        self, request: glue_pb2.StartTriggerRequest, context: Context
    ) -> glue_pb2.StartTriggerResponse:
        return glue_pb2.StartTriggerResponse(name=await self._triggers.start(to_glue(request)))

    async def StopTrigger(  # type: ignore[override]
        self, request: glue_pb2.StopTriggerRequest, context: Context
    ) -> glue_pb2.StopTriggerResponse:
        return glue_pb2.StopTriggerResponse(name=await self._triggers.stop(to_glue(request)))

    async def FireTrigger(  # type: ignore[override]
        self, request: glue_pb2.FireTriggerRequest, context: Context
    ) -> glue_pb2.FireTriggerResponse:
        return glue_pb2.FireTriggerResponse(fire=await self._triggers.fire(to_glue(request)))

    async def GetTriggerFires(  # type: ignore[override]
        self, request: glue_pb2.GetTriggerFiresRequest, context: Context
    ) -> glue_pb2.GetTriggerFiresResponse:
        return glue_pb2.GetTriggerFiresResponse(fires=await self._triggers.fires(to_glue(request)))
