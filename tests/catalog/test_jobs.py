"""Jobs over the real gRPC API: every operation's success path and documented errors."""

from __future__ import annotations

from pathlib import Path

import grpc
from google.protobuf import json_format

from glue.v1 import glue_pb2
from tests.conftest import Stack
from tests.helpers.errors import expect_error
from tests.helpers.scripts import SUCCEED, write_script

ROLE = "arn:aws:iam::123456789012:role/test"
INVALID = grpc.StatusCode.INVALID_ARGUMENT


def full_job_request(name: str, script: Path) -> glue_pb2.CreateJobRequest:
    """A CreateJob using every member Glue's model has (AWS-only ones included)."""
    return glue_pb2.CreateJobRequest(
        name=name,
        job_mode="SCRIPT",
        job_run_queuing_enabled=False,
        description="multi\nline ünïcode",
        log_uri="s3://logs/x",
        role=ROLE,
        execution_property=glue_pb2.ExecutionProperty(max_concurrent_runs=3),
        command=glue_pb2.JobCommand(
            name="pythonshell", script_location=str(script), python_version="3.9", runtime="x"
        ),
        default_arguments={"--day": "mon", "--job-language": "python"},
        non_overridable_arguments={"--env": "prod"},
        connections=glue_pb2.ConnectionsList(connections=["c1", "c2"]),
        max_retries=2,
        timeout=30,
        security_configuration="sec",
        tags={"team": "data"},
        notification_property=glue_pb2.NotificationProperty(notify_delay_after=5),
        glue_version="4.0",
        number_of_workers=2,
        worker_type="G.1X",
        code_gen_configuration_nodes='{"node-1":{"S3CsvSource":{"Name":"src"}}}',
        execution_class="STANDARD",
        source_control_details=glue_pb2.SourceControlDetails(
            provider="GITHUB", repository="r", owner="o", branch="main"
        ),
        maintenance_window="Sun:10",
    )


async def test_create_get_echoes_every_member(stack: Stack, tmp_path: Path) -> None:
    script = write_script(tmp_path, "job.py", SUCCEED)
    request = full_job_request("full-job", script)
    assert (await stack.glue.CreateJob(request)).name == "full-job"
    job = (await stack.glue.GetJob(glue_pb2.GetJobRequest(job_name="full-job"))).job
    sent = json_format.MessageToDict(request)
    got = json_format.MessageToDict(job)
    sent.pop("tags")
    for key, value in sent.items():
        assert got[key] == value, key
    assert job.HasField("created_on") and job.HasField("last_modified_on")


async def test_defaults_are_returned(stack: Stack, tmp_path: Path) -> None:
    await stack.create_job("minimal", write_script(tmp_path, "j.py", SUCCEED))
    job = (await stack.glue.GetJob(glue_pb2.GetJobRequest(job_name="minimal"))).job
    assert job.timeout == 2880
    assert job.max_retries == 0
    assert job.execution_property.max_concurrent_runs == 1


async def test_duplicate_name_is_already_exists(stack: Stack, tmp_path: Path) -> None:
    script = write_script(tmp_path, "j.py", SUCCEED)
    await stack.create_job("dup", script, description="first")
    await expect_error(
        stack.create_job("dup", script, description="second"),
        grpc.StatusCode.ALREADY_EXISTS,
        "AlreadyExistsException",
    )
    job = (await stack.glue.GetJob(glue_pb2.GetJobRequest(job_name="dup"))).job
    assert job.description == "first"


async def test_update_replaces_the_whole_definition(stack: Stack, tmp_path: Path) -> None:
    script = write_script(tmp_path, "j.py", SUCCEED)
    await stack.glue.CreateJob(full_job_request("upd", script))
    before = (await stack.glue.GetJob(glue_pb2.GetJobRequest(job_name="upd"))).job
    update = glue_pb2.JobUpdate(
        role=ROLE, command=glue_pb2.JobCommand(name="pythonshell", script_location=str(script))
    )
    response = await stack.glue.UpdateJob(
        glue_pb2.UpdateJobRequest(job_name="upd", job_update=update)
    )
    assert response.job_name == "upd"
    after = (await stack.glue.GetJob(glue_pb2.GetJobRequest(job_name="upd"))).job
    assert after.name == "upd"
    assert not after.default_arguments and not after.HasField("description")
    assert after.timeout == 2880 and after.execution_property.max_concurrent_runs == 1
    assert after.created_on == before.created_on
    assert after.last_modified_on.ToDatetime() > before.last_modified_on.ToDatetime()


async def test_update_errors(stack: Stack, tmp_path: Path) -> None:
    script = write_script(tmp_path, "j.py", SUCCEED)
    good = glue_pb2.JobUpdate(
        role=ROLE, command=glue_pb2.JobCommand(name="pythonshell", script_location=str(script))
    )
    await expect_error(
        stack.glue.UpdateJob(glue_pb2.UpdateJobRequest(job_name="nope", job_update=good)),
        grpc.StatusCode.NOT_FOUND,
        "EntityNotFoundException",
    )
    await stack.create_job("u2", script)
    message = await expect_error(
        stack.glue.UpdateJob(
            glue_pb2.UpdateJobRequest(job_name="u2", job_update=glue_pb2.JobUpdate(role=ROLE))
        ),
        INVALID,
        "InvalidInputException",
    )
    assert "Command" in message


async def test_delete_is_idempotent_and_removes(stack: Stack, tmp_path: Path) -> None:
    await stack.create_job("gone", write_script(tmp_path, "j.py", SUCCEED))
    response = await stack.glue.DeleteJob(glue_pb2.DeleteJobRequest(job_name="gone"))
    assert response.job_name == "gone"
    await expect_error(
        stack.glue.GetJob(glue_pb2.GetJobRequest(job_name="gone")),
        grpc.StatusCode.NOT_FOUND,
        "EntityNotFoundException",
    )
    again = await stack.glue.DeleteJob(glue_pb2.DeleteJobRequest(job_name="gone"))
    assert again.job_name == "gone"


async def test_get_missing_job(stack: Stack) -> None:
    message = await expect_error(
        stack.glue.GetJob(glue_pb2.GetJobRequest(job_name="missing")),
        grpc.StatusCode.NOT_FOUND,
        "EntityNotFoundException",
    )
    assert "missing" in message


async def test_pagination_walks_every_job_once(stack: Stack, tmp_path: Path) -> None:
    script = write_script(tmp_path, "j.py", SUCCEED)
    names = [f"job-{i:02d}" for i in range(10)]
    for name in names:
        await stack.create_job(name, script)
    seen: list[str] = []
    token = None
    pages = 0
    while True:
        request = glue_pb2.ListJobsRequest(max_results=3)
        if token:
            request.next_token = token
        response = await stack.glue.ListJobs(request)
        seen.extend(response.job_names)
        pages += 1
        # A job created mid-walk sorts before the cursor and must not disturb the walk.
        if pages == 2:
            await stack.create_job("aaa-late", script)
        if not response.HasField("next_token"):
            break
        token = response.next_token
    assert seen == names
    jobs = await stack.glue.GetJobs(glue_pb2.GetJobsRequest(max_results=1000))
    assert [j.name for j in jobs.jobs] == ["aaa-late", *names]
    assert not jobs.HasField("next_token")


async def test_list_jobs_tags_filter_matches_all_tags(stack: Stack, tmp_path: Path) -> None:
    script = write_script(tmp_path, "j.py", SUCCEED)
    await stack.create_job("t1", script, tags={"team": "a", "env": "prod"})
    await stack.create_job("t2", script, tags={"team": "a"})
    await stack.create_job("t3", script)
    one = await stack.glue.ListJobs(glue_pb2.ListJobsRequest(tags={"team": "a", "env": "prod"}))
    assert list(one.job_names) == ["t1"]
    two = await stack.glue.ListJobs(glue_pb2.ListJobsRequest(tags={"team": "a"}, max_results=1))
    assert list(two.job_names) == ["t1"] and two.next_token
    rest = await stack.glue.ListJobs(
        glue_pb2.ListJobsRequest(tags={"team": "a"}, max_results=1, next_token=two.next_token)
    )
    assert list(rest.job_names) == ["t2"]


async def test_batch_get_jobs(stack: Stack, tmp_path: Path) -> None:
    await stack.create_job("b1", write_script(tmp_path, "j.py", SUCCEED))
    response = await stack.glue.BatchGetJobs(glue_pb2.BatchGetJobsRequest(job_names=["b1", "nope"]))
    assert [j.name for j in response.jobs] == ["b1"]
    assert list(response.jobs_not_found) == ["nope"]


async def test_bad_input_is_rejected_and_changes_nothing(stack: Stack, tmp_path: Path) -> None:
    script = write_script(tmp_path, "j.py", SUCCEED)
    cases = {
        "": "Name",
        "x" * 256: "Name",
        "line\nbreak": "Name",
    }
    for name, field in cases.items():
        message = await expect_error(stack.create_job(name, script), INVALID, "ValidationException")
        assert f"at '{field.lower()}'" in message
    await expect_error(
        stack.create_job("w", script, worker_type="G.9X"), INVALID, "ValidationException"
    )
    await expect_error(stack.create_job("t", script, timeout=0), INVALID, "ValidationException")
    await expect_error(
        stack.create_job("t", script, timeout=10081), INVALID, "InvalidInputException"
    )
    await expect_error(
        stack.create_job("c", script, code_gen_configuration_nodes="not json"),
        INVALID,
        "InvalidInputException",
    )
    await expect_error(
        stack.glue.CreateJob(
            glue_pb2.CreateJobRequest(name="no-role", command=glue_pb2.JobCommand())
        ),
        INVALID,
        "ValidationException",
    )
    await expect_error(
        stack.glue.GetJobs(glue_pb2.GetJobsRequest(max_results=1001)),
        INVALID,
        "ValidationException",
    )
    await expect_error(
        stack.glue.GetJobs(glue_pb2.GetJobsRequest(next_token="garbage")),
        INVALID,
        "InvalidInputException",
    )
    listing = await stack.glue.ListJobs(glue_pb2.ListJobsRequest())
    assert list(listing.job_names) == []


async def test_unicode_names_count_code_points(stack: Stack, tmp_path: Path) -> None:
    script = write_script(tmp_path, "j.py", SUCCEED)
    name = ("ジョブ🚀" * 64)[:255]  # 255 code points, far more UTF-8 bytes
    assert len(name) == 255
    await stack.create_job(name, script)
    job = (await stack.glue.GetJob(glue_pb2.GetJobRequest(job_name=name))).job
    assert job.name == name
    await expect_error(stack.create_job(name + "x", script), INVALID, "ValidationException")


async def test_huge_strings_are_rejected(stack: Stack, tmp_path: Path) -> None:
    script = write_script(tmp_path, "j.py", SUCCEED)
    await expect_error(
        stack.create_job("huge", script, description="d" * 1_000_000),
        INVALID,
        "ValidationException",
    )


async def test_malformed_bytes_get_a_clear_error(stack: Stack) -> None:
    assert stack.channel is not None
    raw = stack.channel.unary_unary(
        "/glue.v1.Glue/CreateJob",
        request_serializer=lambda b: b,
        response_deserializer=glue_pb2.CreateJobResponse.FromString,
    )
    # Field 1 (name) with wire type varint instead of length-delimited, then garbage.
    message = await expect_error(raw(b"\x08\x96\x01\xff\xff\xff"), INVALID, "InvalidInputException")
    assert "CreateJob" in message
    listing = await stack.glue.ListJobs(glue_pb2.ListJobsRequest())
    assert list(listing.job_names) == []
