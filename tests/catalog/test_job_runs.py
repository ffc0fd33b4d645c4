"""Job runs end to end: real scheduler, real subprocesses, both databases."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
from pathlib import Path

import grpc
import pytest

from glue.v1 import glue_pb2
from tests.conftest import Stack
from tests.helpers.errors import expect_error
from tests.helpers.scripts import ECHO_ARGS, FAIL, IGNORE_TERM, SLEEP, SUCCEED, write_script

RUN_ID = re.compile(r"^jr_[0-9a-f]{64}$")


async def test_run_succeeds_with_glue_arguments(stack: Stack, tmp_path: Path) -> None:
    script = write_script(tmp_path, "echo.py", ECHO_ARGS)
    await stack.create_job(
        "echo",
        script,
        default_arguments={"--day": "mon", "--region": "eu", "--env": "dev"},
        non_overridable_arguments={"--env": "prod"},
    )
    run_id = await stack.start_run("echo", arguments={"--day": "tue", "--env": "test"})
    assert RUN_ID.match(run_id)
    first = await stack.get_run("echo", run_id)
    assert first.job_run_state in {"STARTING", "RUNNING", "SUCCEEDED"}
    run = await stack.wait_run("echo", run_id)
    assert run.job_run_state == "SUCCEEDED", run.error_message
    assert run.attempt == 0 and not run.HasField("previous_run_id")
    assert not run.HasField("trigger_name")
    assert dict(run.arguments) == {"--day": "tue", "--region": "eu", "--env": "prod"}
    assert run.timeout == 2880
    assert run.HasField("completed_on") and run.HasField("execution_time")
    assert run.completed_on.ToDatetime() >= run.started_on.ToDatetime()
    recorded = [json.loads(line) for line in Path(f"{script}.out").read_text().splitlines()]
    assert len(recorded) == 1
    argv = recorded[0]["argv"]
    assert argv[:4] == ["--JOB_NAME", "echo", "--JOB_RUN_ID", run_id]
    pairs = dict(zip(argv[4::2], argv[5::2], strict=True))
    assert pairs == {"--day": "tue", "--region": "eu", "--env": "prod"}
    # LogGroupName is Glue's group prefix for a Python shell job; the log is in the run's
    # directory.
    assert run.log_group_name == "/aws-glue/python-jobs"
    log_text = (stack.data_dir / "runs" / run_id / "output.log").read_text()
    assert "hello from echo" in log_text


async def test_state_progression_is_observable(stack: Stack, tmp_path: Path) -> None:
    await stack.create_job(
        "slow", write_script(tmp_path, "s.py", SLEEP), default_arguments={"--seconds": "1"}
    )
    run_id = await stack.start_run("slow")
    running = await stack.wait_run("slow", run_id, {"RUNNING"})
    assert not running.HasField("completed_on")
    done = await stack.wait_run("slow", run_id)
    assert done.job_run_state == "SUCCEEDED"
    assert done.execution_time >= 1


async def test_failed_run_carries_the_end_of_stderr(stack: Stack, tmp_path: Path) -> None:
    await stack.create_job("fails", write_script(tmp_path, "f.py", FAIL))
    run = await stack.wait_run("fails", await stack.start_run("fails"))
    assert run.job_run_state == "FAILED"
    assert "ValueError: bad input row 42" in run.error_message


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ({"name": "pythonshell", "script_location": "/nonexistent/x.py"}, "/nonexistent/x.py"),
        ({"name": "pythonshell", "script_location": "s3://bucket/x.py"}, "s3://bucket/x.py"),
        ({"name": "gluestreaming", "script_location": "/tmp/x.py"}, "gluestreaming"),
    ],
)
async def test_runs_that_cannot_start_end_in_error(
    stack: Stack, command: dict[str, str], expected: str
) -> None:
    await stack.glue.CreateJob(
        glue_pb2.CreateJobRequest(name="bad", role="r", command=glue_pb2.JobCommand(**command))
    )
    run = await stack.wait_run("bad", await stack.start_run("bad"))
    assert run.job_run_state == "ERROR"
    assert expected in run.error_message


async def test_stop_a_long_run(stack: Stack, tmp_path: Path) -> None:
    await stack.create_job("long", write_script(tmp_path, "l.py", IGNORE_TERM))
    run_id = await stack.start_run("long")
    await stack.wait_run("long", run_id, {"RUNNING"})
    response = await stack.glue.BatchStopJobRun(
        glue_pb2.BatchStopJobRunRequest(job_name="long", job_run_ids=[run_id])
    )
    assert [s.job_run_id for s in response.successful_submissions] == [run_id]
    assert not response.errors
    stopping = await stack.get_run("long", run_id)
    assert stopping.job_run_state in {"STOPPING", "STOPPED"}
    run = await stack.wait_run("long", run_id)
    assert run.job_run_state == "STOPPED"


async def test_batch_stop_reports_each_id(stack: Stack, tmp_path: Path) -> None:
    await stack.create_job(
        "mix",
        write_script(tmp_path, "m.py", SLEEP),
        max_retries=0,
        execution_property=glue_pb2.ExecutionProperty(max_concurrent_runs=2),
    )
    done_id = await stack.start_run("mix", arguments={"--seconds": "0"})
    await stack.wait_run("mix", done_id)
    live_id = await stack.start_run("mix")
    await stack.wait_run("mix", live_id, {"RUNNING"})
    response = await stack.glue.BatchStopJobRun(
        glue_pb2.BatchStopJobRunRequest(
            job_name="mix", job_run_ids=[live_id, "jr_unknown", done_id]
        )
    )
    assert [s.job_run_id for s in response.successful_submissions] == [live_id]
    errors = {e.job_run_id: e.error_detail for e in response.errors}
    assert errors["jr_unknown"].error_code == "EntityNotFoundException"
    assert errors[done_id].error_code == "InvalidInputException"
    assert "SUCCEEDED" in errors[done_id].error_message
    await expect_error(
        stack.glue.BatchStopJobRun(glue_pb2.BatchStopJobRunRequest(job_name="mix", job_run_ids=[])),
        grpc.StatusCode.INVALID_ARGUMENT,
        "ValidationException",
    )
    await expect_error(
        stack.glue.BatchStopJobRun(
            glue_pb2.BatchStopJobRunRequest(job_name="mix", job_run_ids=["x"] * 26)
        ),
        grpc.StatusCode.INVALID_ARGUMENT,
        "ValidationException",
    )
    await stack.wait_run("mix", live_id)


async def test_retries_create_new_runs(stack: Stack, tmp_path: Path) -> None:
    await stack.create_job("retry", write_script(tmp_path, "f.py", FAIL), max_retries=2)
    first = await stack.start_run("retry")
    await stack.wait_run("retry", first)
    ids = [first, f"{first}_attempt_1", f"{first}_attempt_2"]
    for attempt, run_id in enumerate(ids):
        run = await stack.wait_run("retry", run_id, timeout=30)
        assert run.job_run_state == "FAILED"
        assert run.attempt == attempt
        if attempt:
            assert run.previous_run_id == ids[attempt - 1]
    await asyncio.sleep(0.5)
    runs = (await stack.glue.GetJobRuns(glue_pb2.GetJobRunsRequest(job_name="retry"))).job_runs
    assert [r.id for r in runs] == list(reversed(ids))


async def test_stopped_runs_are_not_retried(stack: Stack, tmp_path: Path) -> None:
    await stack.create_job("noretry", write_script(tmp_path, "l.py", SLEEP), max_retries=3)
    run_id = await stack.start_run("noretry")
    await stack.wait_run("noretry", run_id, {"RUNNING"})
    await stack.glue.BatchStopJobRun(
        glue_pb2.BatchStopJobRunRequest(job_name="noretry", job_run_ids=[run_id])
    )
    assert (await stack.wait_run("noretry", run_id)).job_run_state == "STOPPED"
    await asyncio.sleep(1.0)
    runs = (await stack.glue.GetJobRuns(glue_pb2.GetJobRunsRequest(job_name="noretry"))).job_runs
    assert [r.id for r in runs] == [run_id]


async def test_manual_retry_sets_previous_run_id(stack: Stack, tmp_path: Path) -> None:
    await stack.create_job("manual", write_script(tmp_path, "f.py", FAIL))
    first = await stack.start_run("manual")
    await stack.wait_run("manual", first)
    second = await stack.start_run("manual", job_run_id=first)
    run = await stack.wait_run("manual", second)
    assert run.previous_run_id == first and second != first
    await expect_error(
        stack.start_run("manual", job_run_id="jr_nope"),
        grpc.StatusCode.NOT_FOUND,
        "EntityNotFoundException",
    )


@pytest.mark.parametrize("limit", [1, 3])
async def test_concurrent_starts_respect_max_concurrent_runs(
    stack: Stack, tmp_path: Path, limit: int
) -> None:
    await stack.create_job(
        "race",
        write_script(tmp_path, "l.py", SLEEP),
        execution_property=glue_pb2.ExecutionProperty(max_concurrent_runs=limit),
    )
    results = await asyncio.gather(
        *(stack.start_run("race") for _ in range(8)), return_exceptions=True
    )
    started = [r for r in results if isinstance(r, str)]
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(started) == limit and len(refused) == 8 - limit
    for error in refused:
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert error.details() == "Concurrent runs exceeded for race"
    runs = (await stack.glue.GetJobRuns(glue_pb2.GetJobRunsRequest(job_name="race"))).job_runs
    assert sorted(r.id for r in runs) == sorted(started)
    await stack.glue.BatchStopJobRun(
        glue_pb2.BatchStopJobRunRequest(job_name="race", job_run_ids=started)
    )
    for run_id in started:
        await stack.wait_run("race", run_id)


async def test_per_run_overrides_are_echoed(stack: Stack, tmp_path: Path) -> None:
    await stack.create_job("echoes", write_script(tmp_path, "s.py", SUCCEED), timeout=10)
    run_id = await stack.start_run(
        "echoes",
        timeout=7,
        worker_type="G.2X",
        number_of_workers=4,
        security_configuration="sc",
        notification_property=glue_pb2.NotificationProperty(notify_delay_after=3),
        execution_class="FLEX",
        execution_role_session_policy='{"Version":"2012-10-17"}',
    )
    run = await stack.wait_run("echoes", run_id)
    assert run.timeout == 7 and run.worker_type == "G.2X" and run.number_of_workers == 4
    assert run.security_configuration == "sc" and run.notification_property.notify_delay_after == 3
    assert run.execution_class == "FLEX"
    assert run.execution_role_session_policy == '{"Version":"2012-10-17"}'
    await expect_error(
        stack.start_run("echoes", allocated_capacity=2, max_capacity=1.0),
        grpc.StatusCode.INVALID_ARGUMENT,
        "InvalidInputException",
    )


async def test_get_job_runs_newest_first_and_paged(stack: Stack, tmp_path: Path) -> None:
    await stack.create_job(
        "hist",
        write_script(tmp_path, "s.py", SUCCEED),
        execution_property=glue_pb2.ExecutionProperty(max_concurrent_runs=10),
    )
    empty = await stack.glue.GetJobRuns(glue_pb2.GetJobRunsRequest(job_name="hist"))
    assert list(empty.job_runs) == [] and not empty.HasField("next_token")
    ids = []
    for _ in range(5):
        ids.append(await stack.start_run("hist"))
        await asyncio.sleep(0.01)
    seen: list[str] = []
    token = None
    while True:
        request = glue_pb2.GetJobRunsRequest(job_name="hist", max_results=2)
        if token:
            request.next_token = token
        page = await stack.glue.GetJobRuns(request)
        seen.extend(r.id for r in page.job_runs)
        if not page.HasField("next_token"):
            break
        token = page.next_token
    assert seen == list(reversed(ids))
    await expect_error(
        stack.glue.GetJobRuns(glue_pb2.GetJobRunsRequest(job_name="nope")),
        grpc.StatusCode.NOT_FOUND,
        "EntityNotFoundException",
    )
    await expect_error(
        stack.glue.GetJobRuns(glue_pb2.GetJobRunsRequest(job_name="hist", max_results=201)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "ValidationException",
    )
    for run_id in ids:
        await stack.wait_run("hist", run_id)


async def test_run_lookups_and_deleted_jobs(stack: Stack, tmp_path: Path) -> None:
    await stack.create_job("del", write_script(tmp_path, "s.py", SUCCEED))
    run_id = await stack.start_run("del")
    await stack.wait_run("del", run_id)
    await expect_error(
        stack.get_run("del", "jr_" + "0" * 64), grpc.StatusCode.NOT_FOUND, "EntityNotFoundException"
    )
    await expect_error(
        stack.start_run("nope"), grpc.StatusCode.NOT_FOUND, "EntityNotFoundException"
    )
    await stack.glue.DeleteJob(glue_pb2.DeleteJobRequest(job_name="del"))
    await expect_error(
        stack.get_run("del", run_id), grpc.StatusCode.NOT_FOUND, "EntityNotFoundException"
    )
    # Re-created under the same name: a fresh history.
    await stack.create_job("del", write_script(tmp_path, "s.py", SUCCEED))
    runs = await stack.glue.GetJobRuns(glue_pb2.GetJobRunsRequest(job_name="del"))
    assert list(runs.job_runs) == []


async def test_run_log_is_readable_through_the_api(stack: Stack, tmp_path: Path) -> None:
    await stack.create_job("logs", write_script(tmp_path, "e.py", ECHO_ARGS))
    run_id = await stack.start_run("logs")
    chunks = [
        c.data
        async for c in stack.glue.GetJobRunLog(
            glue_pb2.GetJobRunLogRequest(job_name="logs", run_id=run_id, follow=True)
        )
    ]
    assert b"hello from logs" in b"".join(chunks)
    assert (await stack.get_run("logs", run_id)).job_run_state == "SUCCEEDED"


BIG_OUTPUT = """
import sys
w = sys.stdout.write
for i in range(60000):
    w(f"line {i:06d} " + "." * 40 + "\\n")
print("the end", file=sys.stderr)
"""


async def test_a_log_of_many_chunks_reads_whole_and_by_stream(stack: Stack, tmp_path: Path) -> None:
    await stack.create_job("big", write_script(tmp_path, "big.py", BIG_OUTPUT))
    run_id = await stack.start_run("big")
    assert (await stack.wait_run("big", run_id)).job_run_state == "SUCCEEDED"

    async def read(**fields: str) -> bytes:
        request = glue_pb2.GetJobRunLogRequest(job_name="big", run_id=run_id, **fields)
        return b"".join([c.data async for c in stack.glue.GetJobRunLog(request)])

    # 3.2 MB: more than one worker-thread read of the scheduler's (1 MiB) in either mode.
    both = await read()
    assert len(both) == 60000 * 53 + len(b"the end\n")
    assert await read(stream="stderr") == b"the end\n"
    stdout = await read(stream="stdout")
    assert len(stdout) == 60000 * 53 and stdout.endswith(b"line 059999 " + b"." * 40 + b"\n")


@pytest.mark.scheduler_settings(max_processes=1)
async def test_process_cap_queues_runs_in_order(stack: Stack, tmp_path: Path) -> None:
    script = write_script(tmp_path, "s.py", SLEEP)
    for name in ("q1", "q2", "q3"):
        await stack.create_job(name, script, default_arguments={"--seconds": "0.5"})
    ids = [await stack.start_run(name) for name in ("q1", "q2", "q3")]
    assert (await stack.get_run("q2", ids[1])).job_run_state == "WAITING"
    assert (await stack.get_run("q3", ids[2])).job_run_state == "WAITING"
    runs = [await stack.wait_run(n, i) for n, i in zip(("q1", "q2", "q3"), ids, strict=True)]
    assert all(r.job_run_state == "SUCCEEDED" for r in runs)
    # In order, one at a time: each started after the previous one completed.
    for earlier, later in itertools.pairwise(runs):
        assert later.completed_on.ToDatetime() >= earlier.completed_on.ToDatetime()


async def test_queuing_waits_instead_of_refusing(stack: Stack, tmp_path: Path) -> None:
    await stack.create_job(
        "queued",
        write_script(tmp_path, "s.py", SLEEP),
        default_arguments={"--seconds": "0.5"},
        job_run_queuing_enabled=True,
    )
    first = await stack.start_run("queued")
    second = await stack.start_run("queued")
    assert (await stack.get_run("queued", second)).job_run_state == "WAITING"
    runs = [await stack.wait_run("queued", run_id) for run_id in (first, second)]
    assert [r.job_run_state for r in runs] == ["SUCCEEDED", "SUCCEEDED"]
    assert runs[1].completed_on.ToDatetime() >= runs[0].completed_on.ToDatetime()
    # The run's own setting overrides the job's.
    third = await stack.start_run("queued")
    await expect_error(
        stack.start_run("queued", job_run_queuing_enabled=False),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "ConcurrentRunsExceededException",
    )
    await stack.wait_run("queued", third)


async def test_start_while_scheduler_is_down_is_unavailable(stack: Stack, tmp_path: Path) -> None:
    await stack.create_job("down", write_script(tmp_path, "s.py", SUCCEED))
    await stack.stop_scheduler()
    message = await expect_error(
        stack.start_run("down"), grpc.StatusCode.UNAVAILABLE, "InternalServiceException"
    )
    assert "scheduler" in message
    # Reads keep working from the catalog's own tables.
    runs = await stack.glue.GetJobRuns(glue_pb2.GetJobRunsRequest(job_name="down"))
    assert list(runs.job_runs) == []
    await stack.start_scheduler()
    run_id = await stack.start_run("down")
    assert (await stack.wait_run("down", run_id)).job_run_state == "SUCCEEDED"
