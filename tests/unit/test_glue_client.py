"""GlueClient's own logic: request building, the retry policy, log resumption, waiting.

The retry tests need errors the real services cannot be made to produce on demand (UNAVAILABLE
then success), so they run against a fake glue.v1.Glue servicer on an in-process server.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from clients.glue_client import (
    GlueClient,
    WaitTimeoutError,
    build_request,
    job_update_from_job,
    resource_arn,
)
from glue.v1 import glue_pb2, glue_pb2_grpc
from servicekit.errors import (
    EntityNotFoundException,
    OperationTimeoutException,
    ServiceUnavailableException,
    to_rpc_status,
)

Context = grpc.aio.ServicerContext[Any, Any]

# -- request building ------------------------------------------------------------------------


def test_resource_arns_name_jobs_and_triggers() -> None:
    assert resource_arn("job", "nightly") == "arn:aws:glue:us-east-1:000000000000:job/nightly"
    assert (
        resource_arn("trigger", "a/b c", region="eu-west-1", account="123456789012")
        == "arn:aws:glue:eu-west-1:123456789012:trigger/a/b c"
    )
    with pytest.raises(ValueError, match="kind must be one of job, trigger, got 'crawler'"):
        resource_arn("crawler", "c")
    with pytest.raises(ValueError, match="name must not be empty"):
        resource_arn("job", "")


def test_glue_form_fields_build_and_override_a_request() -> None:
    base = {"Name": "a", "Command": {"Name": "pythonshell"}, "DefaultArguments": {"--x": "1"}}
    request = build_request(
        glue_pb2.CreateJobRequest,
        base,
        {"Name": "b", "Command": {"ScriptLocation": "/s.py"}, "DefaultArguments": {"--y": "2"}},
    )
    assert request.name == "b"
    assert request.command == glue_pb2.JobCommand(name="pythonshell", script_location="/s.py")
    assert dict(request.default_arguments) == {"--x": "1", "--y": "2"}


def test_a_message_is_copied_not_changed() -> None:
    original = glue_pb2.StartJobRunRequest(job_name="j", timeout=5)
    request = build_request(glue_pb2.StartJobRunRequest, original, {"Timeout": 7})
    assert (request.timeout, original.timeout) == (7, 5)
    with pytest.raises(TypeError, match=r"glue\.v1\.StartJobRunRequest"):
        build_request(glue_pb2.StartJobRunRequest, glue_pb2.GetJobRequest(), {})


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"Timout": 5}, "'Timout'"),
        ({"Command": {"Script": "/s.py"}}, "'Command.Script'"),
        ({"Connections": {"Connections": ["c"], "Extra": 1}}, "'Connections.Extra'"),
    ],
)
def test_unknown_members_are_refused_not_dropped(data: dict[str, Any], where: str) -> None:
    with pytest.raises(ValueError, match=where):
        build_request(glue_pb2.CreateJobRequest, data, {})
    with pytest.raises(ValueError, match=where):
        build_request(glue_pb2.CreateJobRequest, None, data)


@pytest.mark.parametrize(
    ("data", "where"),
    [
        ({"Name": "j", "Timeout": "30"}, "CreateJobRequest.Timeout: "),
        ({"MaxRetries": 2**31}, "CreateJobRequest.MaxRetries: "),
        ({"Command": {"Name": 3}}, "CreateJobRequest.Command: "),
    ],
)
def test_wrong_value_types_name_the_member(data: dict[str, Any], where: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(where)}"):
        build_request(glue_pb2.CreateJobRequest, data, {})


def test_map_keys_are_not_members() -> None:
    request = build_request(
        glue_pb2.CreateJobRequest, {"DefaultArguments": {"Anything": "goes"}}, {}
    )
    assert dict(request.default_arguments) == {"Anything": "goes"}


def test_job_update_from_job_keeps_the_definition_only() -> None:
    job = glue_pb2.Job(
        name="j",
        description="d",
        profile_name="p",
        command=glue_pb2.JobCommand(name="pythonshell", script_location="/s.py"),
        default_arguments={"--a": "1"},
        execution_property=glue_pb2.ExecutionProperty(max_concurrent_runs=2),
        timeout=10,
    )
    job.created_on.GetCurrentTime()
    job.last_modified_on.GetCurrentTime()
    assert job_update_from_job(job) == glue_pb2.JobUpdate(
        description="d",
        command=glue_pb2.JobCommand(name="pythonshell", script_location="/s.py"),
        default_arguments={"--a": "1"},
        execution_property=glue_pb2.ExecutionProperty(max_concurrent_runs=2),
        timeout=10,
    )


# -- against a fake service ------------------------------------------------------------------


class FlakyGlue(glue_pb2_grpc.GlueServicer):
    """Answers UNAVAILABLE ``failures`` times per operation, then succeeds."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: dict[str, int] = {}
        self.log_offsets: list[int] = []
        self.run_states = ["STARTING", "RUNNING", "RUNNING", "SUCCEEDED"]

    async def _flake(self, operation: str, context: Context) -> None:
        self.calls[operation] = self.calls.get(operation, 0) + 1
        if self.calls[operation] <= self.failures:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "down for a moment")

    async def GetJob(  # type: ignore[override]
        self, request: glue_pb2.GetJobRequest, context: Context
    ) -> glue_pb2.GetJobResponse:
        await self._flake("GetJob", context)
        if request.job_name == "missing":
            await context.abort_with_status(
                to_rpc_status(EntityNotFoundException("Job missing not found."))
            )
        return glue_pb2.GetJobResponse(job=glue_pb2.Job(name=request.job_name))

    async def StartJobRun(  # type: ignore[override]
        self, request: glue_pb2.StartJobRunRequest, context: Context
    ) -> glue_pb2.StartJobRunResponse:
        await self._flake("StartJobRun", context)
        return glue_pb2.StartJobRunResponse(job_run_id="jr_1")

    async def GetTags(  # type: ignore[override]
        self, request: glue_pb2.GetTagsRequest, context: Context
    ) -> glue_pb2.GetTagsResponse:
        await self._flake("GetTags", context)
        return glue_pb2.GetTagsResponse(tags={"arn": request.resource_arn})

    async def TagResource(  # type: ignore[override]
        self, request: glue_pb2.TagResourceRequest, context: Context
    ) -> glue_pb2.TagResourceResponse:
        await self._flake("TagResource", context)
        return glue_pb2.TagResourceResponse()

    async def UntagResource(  # type: ignore[override]
        self, request: glue_pb2.UntagResourceRequest, context: Context
    ) -> glue_pb2.UntagResourceResponse:
        await self._flake("UntagResource", context)
        return glue_pb2.UntagResourceResponse()

    async def GetJobBookmark(  # type: ignore[override]
        self, request: glue_pb2.GetJobBookmarkRequest, context: Context
    ) -> glue_pb2.GetJobBookmarkResponse:
        await self._flake("GetJobBookmark", context)
        entry = glue_pb2.JobBookmarkEntry(job_name=request.job_name, version=1)
        if request.HasField("run_id"):
            entry.run_id = request.run_id
        return glue_pb2.GetJobBookmarkResponse(job_bookmark_entry=entry)

    async def ResetJobBookmark(  # type: ignore[override]
        self, request: glue_pb2.ResetJobBookmarkRequest, context: Context
    ) -> glue_pb2.ResetJobBookmarkResponse:
        await self._flake("ResetJobBookmark", context)
        return glue_pb2.ResetJobBookmarkResponse()

    async def GetJobs(  # type: ignore[override]
        self, request: glue_pb2.GetJobsRequest, context: Context
    ) -> glue_pb2.GetJobsResponse:
        await asyncio.sleep(5)  # past any test's deadline
        return glue_pb2.GetJobsResponse()

    async def GetJobRun(  # type: ignore[override]
        self, request: glue_pb2.GetJobRunRequest, context: Context
    ) -> glue_pb2.GetJobRunResponse:
        state = self.run_states.pop(0) if len(self.run_states) > 1 else self.run_states[0]
        return glue_pb2.GetJobRunResponse(
            job_run=glue_pb2.JobRun(id=request.run_id, job_name="j", job_run_state=state)
        )

    async def GetJobRunLog(  # type: ignore[override]
        self, request: glue_pb2.GetJobRunLogRequest, context: Context
    ) -> AsyncIterator[glue_pb2.GetJobRunLogResponse]:
        self.log_offsets.append(request.offset)
        log = b"first line\nsecond line\n"
        if len(self.log_offsets) == 1:
            yield glue_pb2.GetJobRunLogResponse(data=log[:11], offset=request.offset)
            await context.abort(grpc.StatusCode.UNAVAILABLE, "restarting")
        yield glue_pb2.GetJobRunLogResponse(data=log[request.offset :], offset=request.offset)


async def _serve(servicer: FlakyGlue) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server()
    glue_pb2_grpc.add_GlueServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


@pytest.fixture
async def flaky() -> AsyncIterator[tuple[FlakyGlue, str]]:
    """A fake service that fails each operation twice before answering."""
    servicer = FlakyGlue(failures=2)
    server, address = await _serve(servicer)
    try:
        yield servicer, address
    finally:
        await server.stop(None)


async def test_read_only_calls_retry_unavailable(flaky: tuple[FlakyGlue, str]) -> None:
    servicer, address = flaky
    async with GlueClient(address, retry_delays=(0.01, 0.01)) as glue:
        assert (await glue.get_job("j")).job.name == "j"
    assert servicer.calls["GetJob"] == 3


async def test_retries_are_bounded(flaky: tuple[FlakyGlue, str]) -> None:
    servicer, address = flaky
    async with GlueClient(address, retry_delays=(0.01,)) as glue:
        with pytest.raises(ServiceUnavailableException, match="down for a moment"):
            await glue.get_job("j")
    assert servicer.calls["GetJob"] == 2


async def test_a_start_is_never_retried(flaky: tuple[FlakyGlue, str]) -> None:
    servicer, address = flaky
    async with GlueClient(address, retry_delays=(0.01, 0.01)) as glue:
        with pytest.raises(ServiceUnavailableException):
            await glue.start_job_run("j", Arguments={"--a": "1"})
    assert servicer.calls["StartJobRun"] == 1


async def test_get_tags_is_retried_but_tagging_is_not(flaky: tuple[FlakyGlue, str]) -> None:
    servicer, address = flaky
    arn = resource_arn("job", "j")
    async with GlueClient(address, retry_delays=(0.01, 0.01)) as glue:
        assert dict((await glue.get_tags(arn)).tags) == {"arn": arn}
        with pytest.raises(ServiceUnavailableException):
            await glue.tag_resource(arn, {"a": "1"})
        with pytest.raises(ServiceUnavailableException):
            await glue.untag_resource(arn, ["a"])
    assert servicer.calls == {"GetTags": 3, "TagResource": 1, "UntagResource": 1}


async def test_get_job_bookmark_is_retried_but_a_reset_is_not(
    flaky: tuple[FlakyGlue, str],
) -> None:
    servicer, address = flaky
    async with GlueClient(address, retry_delays=(0.01, 0.01)) as glue:
        entry = (await glue.get_job_bookmark("j")).job_bookmark_entry
        # No run id given: none sent (absent, not empty).
        assert entry == glue_pb2.JobBookmarkEntry(job_name="j", version=1)
        by_run = (await glue.get_job_bookmark("j", run_id="jr_1")).job_bookmark_entry
        assert by_run.run_id == "jr_1"
        with pytest.raises(ServiceUnavailableException):
            await glue.reset_job_bookmark("j")
    assert servicer.calls == {"GetJobBookmark": 4, "ResetJobBookmark": 1}


async def test_glue_errors_are_raised_as_their_class_without_retry() -> None:
    servicer = FlakyGlue(failures=0)
    server, address = await _serve(servicer)
    try:
        async with GlueClient(address, retry_delays=(0.01, 0.01)) as glue:
            with pytest.raises(EntityNotFoundException, match=r"Job missing not found\."):
                await glue.get_job("missing")
    finally:
        await server.stop(None)
    assert servicer.calls["GetJob"] == 1


async def test_a_deadline_is_an_operation_timeout() -> None:
    servicer = FlakyGlue(failures=0)
    server, address = await _serve(servicer)
    try:
        async with GlueClient(address, timeout=0.2) as glue:
            with pytest.raises(OperationTimeoutException, match=r"within 0\.2s"):
                await glue.get_jobs()
    finally:
        await server.stop(None)


async def test_a_broken_log_stream_resumes_where_it_stopped() -> None:
    servicer = FlakyGlue(failures=0)
    server, address = await _serve(servicer)
    try:
        async with GlueClient(address, retry_delays=(0.01,)) as glue:
            chunks = [c async for c in glue.get_job_run_log("j", "jr_1", follow=True)]
    finally:
        await server.stop(None)
    assert b"".join(chunks) == b"first line\nsecond line\n"
    assert servicer.log_offsets == [0, 11]


async def test_wait_reports_each_state_and_returns_the_ended_run() -> None:
    servicer = FlakyGlue(failures=0)
    server, address = await _serve(servicer)
    seen: list[str] = []
    try:
        async with GlueClient(address) as glue:
            run = await glue.wait_job_run(
                "j", "jr_1", poll_interval=0.01, on_change=lambda r: seen.append(r.job_run_state)
            )
            assert run.job_run_state == "SUCCEEDED"
            servicer.run_states = ["RUNNING"]
            with pytest.raises(WaitTimeoutError, match="still RUNNING") as caught:
                await glue.wait_job_run("j", "jr_2", timeout=0.1, poll_interval=0.01)
    finally:
        await server.stop(None)
    assert seen == ["STARTING", "RUNNING", "SUCCEEDED"]
    assert caught.value.run.id == "jr_2"


async def test_a_client_opens_once() -> None:
    client = GlueClient("127.0.0.1:1")
    with pytest.raises(RuntimeError, match="not opened"):
        await client.get_job("j")
    async with client:
        pass
    with pytest.raises(RuntimeError, match="closed"):
        await client.get_job("j")
    with pytest.raises(RuntimeError, match="only once"):
        await client.__aenter__()
