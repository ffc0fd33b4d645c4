"""The public API in two layers: GlueOperations (every glue.v1 operation on a request in Glue
form) and GlueServicer (the gRPC adapter: proto request -> Glue form -> operation).

The HTTP gateway calls GlueOperations with the JSON it received, so both front doors run the
same code; and it keeps Glue's distinctions a proto request cannot carry (an empty list or map
is "present" in JSON, "absent" in proto3).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import Message

from catalog_service.access import authorization
from catalog_service.caller_slots import calls_in_flight, log_streams
from catalog_service.job_bookmarks import JobBookmarkCatalog
from catalog_service.job_runs import JobRunCatalog
from catalog_service.jobs import JobCatalog
from catalog_service.limits import Limits
from catalog_service.tags import TagCatalog
from catalog_service.triggers import TriggerCatalog
from glue.v1 import glue_pb2, glue_pb2_grpc
from glue_vocabulary.shapes import GlueDict, to_glue

Context = grpc.aio.ServicerContext[Any, Any]
Operation = Callable[[GlueDict], Awaitable[Message]]


class GlueOperations:
    """glue.v1's unary operations, named as in Glue: jobs, job runs, job bookmarks, triggers
    and tags."""

    def __init__(
        self,
        jobs: JobCatalog,
        runs: JobRunCatalog,
        bookmarks: JobBookmarkCatalog,
        triggers: TriggerCatalog,
        tags: TagCatalog,
        limits: Limits | None = None,
    ) -> None:
        self._calls = calls_in_flight(limits or Limits())
        self._log_streams = log_streams(limits or Limits())
        self._jobs = jobs
        self._runs = runs
        self._bookmarks = bookmarks
        self._triggers = triggers
        self._tags = tags
        self._authorized: dict[str, Operation] = {}

    def GetJobRunLog(self, params: GlueDict) -> AsyncIterator[tuple[bytes, int, int]]:
        """A run's captured output as (chunk, offset, next offset) (a stream, not a Glue
        operation)."""
        authorization.check("GetJobRunLog", params)
        return self._log_streams.stream(self._runs.read_log(params))

    def guard(
        self, call: Callable[[GlueDict], Awaitable[Any]]
    ) -> Callable[[GlueDict], Awaitable[Any]]:
        """``call`` counted against the caller's calls in flight, as every operation is (the
        gateway's CloudWatch Logs operations use it)."""
        return self._calls.guard(call)

    def operation(self, name: str) -> Operation:
        """The operation of that glue.v1 method name, as the front doors call it: counted
        against the caller's calls in flight, checked against the caller's policy, and its
        response filtered to what the caller may see."""
        guarded = self._authorized.get(name)
        if guarded is None:
            method: Operation = getattr(self, name)

            async def authorized(params: GlueDict) -> Message:
                authorization.check(name, params)
                return authorization.filter_response(name, await method(params))

            guarded = self._authorized[name] = self._calls.guard(authorized)
        return guarded

    async def CreateJob(self, params: GlueDict) -> glue_pb2.CreateJobResponse:
        return glue_pb2.CreateJobResponse(name=await self._jobs.create(params))

    async def UpdateJob(self, params: GlueDict) -> glue_pb2.UpdateJobResponse:
        return glue_pb2.UpdateJobResponse(job_name=await self._jobs.update(params))

    async def DeleteJob(self, params: GlueDict) -> glue_pb2.DeleteJobResponse:
        return glue_pb2.DeleteJobResponse(job_name=await self._jobs.delete(params))

    async def GetJob(self, params: GlueDict) -> glue_pb2.GetJobResponse:
        return glue_pb2.GetJobResponse(job=await self._jobs.get(params))

    async def GetJobs(self, params: GlueDict) -> glue_pb2.GetJobsResponse:
        jobs, token = await self._jobs.get_jobs(params)
        return glue_pb2.GetJobsResponse(jobs=jobs, next_token=token)

    async def ListJobs(self, params: GlueDict) -> glue_pb2.ListJobsResponse:
        names, token = await self._jobs.list_jobs(params)
        return glue_pb2.ListJobsResponse(job_names=names, next_token=token)

    async def BatchGetJobs(self, params: GlueDict) -> glue_pb2.BatchGetJobsResponse:
        found, missing = await self._jobs.batch_get(params)
        return glue_pb2.BatchGetJobsResponse(jobs=found, jobs_not_found=missing)

    async def StartJobRun(self, params: GlueDict) -> glue_pb2.StartJobRunResponse:
        return glue_pb2.StartJobRunResponse(job_run_id=await self._runs.start(params))

    async def GetJobRun(self, params: GlueDict) -> glue_pb2.GetJobRunResponse:
        return glue_pb2.GetJobRunResponse(job_run=await self._runs.get(params))

    async def GetJobRuns(self, params: GlueDict) -> glue_pb2.GetJobRunsResponse:
        runs, token = await self._runs.list_runs(params)
        return glue_pb2.GetJobRunsResponse(job_runs=runs, next_token=token)

    async def BatchStopJobRun(self, params: GlueDict) -> glue_pb2.BatchStopJobRunResponse:
        successes, errors = await self._runs.batch_stop(params)
        return glue_pb2.BatchStopJobRunResponse(successful_submissions=successes, errors=errors)

    async def GetJobBookmark(self, params: GlueDict) -> glue_pb2.GetJobBookmarkResponse:
        return glue_pb2.GetJobBookmarkResponse(job_bookmark_entry=await self._bookmarks.get(params))

    async def ResetJobBookmark(self, params: GlueDict) -> glue_pb2.ResetJobBookmarkResponse:
        entry = await self._bookmarks.reset(params)
        return glue_pb2.ResetJobBookmarkResponse(job_bookmark_entry=entry)

    async def CreateTrigger(self, params: GlueDict) -> glue_pb2.CreateTriggerResponse:
        return glue_pb2.CreateTriggerResponse(name=await self._triggers.create(params))

    async def UpdateTrigger(self, params: GlueDict) -> glue_pb2.UpdateTriggerResponse:
        return glue_pb2.UpdateTriggerResponse(trigger=await self._triggers.update(params))

    async def DeleteTrigger(self, params: GlueDict) -> glue_pb2.DeleteTriggerResponse:
        return glue_pb2.DeleteTriggerResponse(name=await self._triggers.delete(params))

    async def GetTrigger(self, params: GlueDict) -> glue_pb2.GetTriggerResponse:
        return glue_pb2.GetTriggerResponse(trigger=await self._triggers.get(params))

    async def GetTriggers(self, params: GlueDict) -> glue_pb2.GetTriggersResponse:
        found, token = await self._triggers.get_triggers(params)
        return glue_pb2.GetTriggersResponse(triggers=found, next_token=token)

    async def ListTriggers(self, params: GlueDict) -> glue_pb2.ListTriggersResponse:
        names, token = await self._triggers.list_triggers(params)
        return glue_pb2.ListTriggersResponse(trigger_names=names, next_token=token)

    async def BatchGetTriggers(self, params: GlueDict) -> glue_pb2.BatchGetTriggersResponse:
        found, missing = await self._triggers.batch_get(params)
        return glue_pb2.BatchGetTriggersResponse(triggers=found, triggers_not_found=missing)

    async def StartTrigger(self, params: GlueDict) -> glue_pb2.StartTriggerResponse:
        return glue_pb2.StartTriggerResponse(name=await self._triggers.start(params))

    async def StopTrigger(self, params: GlueDict) -> glue_pb2.StopTriggerResponse:
        return glue_pb2.StopTriggerResponse(name=await self._triggers.stop(params))

    async def FireTrigger(self, params: GlueDict) -> glue_pb2.FireTriggerResponse:
        return glue_pb2.FireTriggerResponse(fire=await self._triggers.fire(params))

    async def GetTriggerFires(self, params: GlueDict) -> glue_pb2.GetTriggerFiresResponse:
        return glue_pb2.GetTriggerFiresResponse(fires=await self._triggers.fires(params))

    async def GetRecentJobRuns(self, params: GlueDict) -> glue_pb2.GetRecentJobRunsResponse:
        runs, token = await self._runs.recent(params)
        return glue_pb2.GetRecentJobRunsResponse(job_runs=runs, next_token=token)

    async def TagResource(self, params: GlueDict) -> glue_pb2.TagResourceResponse:
        await self._tags.tag(params)
        return glue_pb2.TagResourceResponse()

    async def UntagResource(self, params: GlueDict) -> glue_pb2.UntagResourceResponse:
        await self._tags.untag(params)
        return glue_pb2.UntagResourceResponse()

    async def GetTags(self, params: GlueDict) -> glue_pb2.GetTagsResponse:
        return glue_pb2.GetTagsResponse(tags=await self._tags.get(params))


class GlueServicer(glue_pb2_grpc.GlueServicer):
    """glue.v1.Glue over gRPC: each unary method converts its request to Glue form and runs
    the operation of the same name (the methods are attached below, one per unary RPC)."""

    def __init__(self, operations: GlueOperations) -> None:
        self._operations = operations

    async def GetJobRunLog(  # type: ignore[override]
        self, request: glue_pb2.GetJobRunLogRequest, context: Context
    ) -> AsyncIterator[glue_pb2.GetJobRunLogResponse]:
        async for data, offset, next_offset in self._operations.GetJobRunLog(to_glue(request)):
            yield glue_pb2.GetJobRunLogResponse(data=data, offset=offset, next_offset=next_offset)


def _unary(name: str) -> Callable[[GlueServicer, Message, Context], Awaitable[Message]]:
    async def call(self: GlueServicer, request: Message, context: Context) -> Message:
        return await self._operations.operation(name)(to_glue(request))

    call.__name__ = call.__qualname__ = name
    return call


UNARY_METHODS = tuple(
    method.name
    for method in glue_pb2.DESCRIPTOR.services_by_name["Glue"].methods
    if not method.server_streaming
)
for _name in UNARY_METHODS:
    setattr(GlueServicer, _name, _unary(_name))
