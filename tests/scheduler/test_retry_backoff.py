"""Automatic retries wait out an exponential backoff, durably, and MaxRetries is capped.

Retries are new runs (Attempt n, PreviousRunId) that the scheduler inserts in the transaction
ending the failed run, with a not-before time: these tests watch real processes start (each
writes its start time) as well as the runs' StartedOn.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import grpc
import pytest

from glue.v1 import glue_pb2
from tests.conftest import Stack
from tests.helpers.errors import expect_error
from tests.helpers.scripts import write_script

# Records when its process started (and which run it is), then fails.
FAIL_AND_RECORD = """
import json, sys, time
started = time.time()
run_id = sys.argv[sys.argv.index("--JOB_RUN_ID") + 1]
with open(sys.argv[0] + ".starts", "a") as out:
    out.write(json.dumps({"run_id": run_id, "t": started}) + "\\n")
sys.exit(3)
"""


def starts(script: Path) -> list[dict[str, object]]:
    """The process starts the script recorded, in order."""
    path = Path(f"{script}.starts")
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def attempt_ids(first: str, retries: int) -> list[str]:
    return [first, *(f"{first}_attempt_{n}" for n in range(1, retries + 1))]


async def list_runs(stack: Stack, job: str) -> list[glue_pb2.JobRun]:
    response = await stack.glue.GetJobRuns(glue_pb2.GetJobRunsRequest(job_name=job))
    return list(response.job_runs)


def started(run: glue_pb2.JobRun) -> float:
    return run.started_on.ToMicroseconds() / 1e6


@pytest.mark.slow
async def test_attempts_wait_one_two_four_seconds(stack: Stack, tmp_path: Path) -> None:
    script = write_script(tmp_path, "fail.py", FAIL_AND_RECORD)
    await stack.create_job("flaky", script, max_retries=3)
    first = await stack.start_run("flaky")
    ids = attempt_ids(first, 3)
    runs = [await stack.wait_run("flaky", run_id, timeout=40) for run_id in ids]
    for attempt, run in enumerate(runs):
        assert run.job_run_state == "FAILED"
        assert run.attempt == attempt
        if attempt:
            assert run.previous_run_id == ids[attempt - 1]
    recorded = starts(script)
    assert [r["run_id"] for r in recorded] == ids
    for n, delay in enumerate([1.0, 2.0, 4.0]):
        # The process of attempt n+1 started at least ``delay`` after attempt n's.
        gap = float(recorded[n + 1]["t"]) - float(recorded[n]["t"])  # type: ignore[arg-type]
        assert gap >= delay, (n, gap)
        # And Glue's StartedOn shows the same spacing.
        assert started(runs[n + 1]) - started(runs[n]) >= delay - 1e-3, n
    await asyncio.sleep(0.5)
    assert [r.id for r in await list_runs(stack, "flaky")] == list(reversed(ids))


@pytest.mark.slow
async def test_a_job_at_the_cap_starts_a_handful_of_attempts_in_ten_seconds(
    stack: Stack, tmp_path: Path
) -> None:
    script = write_script(tmp_path, "fail.py", FAIL_AND_RECORD)
    await stack.create_job("hopeless", script, max_retries=10)
    begin = time.monotonic()
    await stack.start_run("hopeless")
    await asyncio.sleep(10.0 - (time.monotonic() - begin))
    # Backoff 1, 2, 4, 8 s: starts at about 0, 1, 3 and 7 s (the next at 15 s).
    assert 2 <= len(starts(script)) <= 5, starts(script)
    assert len(await list_runs(stack, "hopeless")) <= 5


@pytest.mark.slow
@pytest.mark.scheduler_settings(retry_backoff_seconds=3.0)
async def test_a_restart_during_the_backoff_still_retries_exactly_once(
    stack: Stack, tmp_path: Path
) -> None:
    script = write_script(tmp_path, "fail.py", FAIL_AND_RECORD)
    await stack.create_job("flaky", script, max_retries=1)
    first = await stack.start_run("flaky")
    failed = await stack.wait_run("flaky", first)
    assert failed.job_run_state == "FAILED"
    retry_id = f"{first}_attempt_1"
    waiting = await stack.wait_run("flaky", retry_id, {"WAITING"}, timeout=5)
    assert waiting.attempt == 1 and waiting.previous_run_id == first

    # Down in the middle of the 3 s backoff, and back before it ends.
    await stack.stop_scheduler()
    await asyncio.sleep(0.5)
    await stack.start_scheduler()

    retried = await stack.wait_run("flaky", retry_id, timeout=30)
    assert retried.job_run_state == "FAILED"
    recorded = starts(script)
    assert [r["run_id"] for r in recorded] == [first, retry_id]
    assert float(recorded[1]["t"]) - float(recorded[0]["t"]) >= 3.0  # type: ignore[arg-type]
    await asyncio.sleep(1.5)
    assert len(starts(script)) == 2
    assert [r.id for r in await list_runs(stack, "flaky")] == [retry_id, first]


@pytest.mark.slow
@pytest.mark.scheduler_settings(retry_backoff_seconds=2.0)
async def test_a_restart_past_the_due_time_starts_the_retry_once(
    stack: Stack, tmp_path: Path
) -> None:
    script = write_script(tmp_path, "fail.py", FAIL_AND_RECORD)
    await stack.create_job("flaky", script, max_retries=1)
    first = await stack.start_run("flaky")
    await stack.wait_run("flaky", f"{first}_attempt_1", {"WAITING"}, timeout=10)
    # Down for longer than the backoff: the retry is due when the scheduler comes back.
    await stack.stop_scheduler()
    await asyncio.sleep(2.5)
    await stack.start_scheduler()
    retried = await stack.wait_run("flaky", f"{first}_attempt_1", timeout=30)
    assert retried.job_run_state == "FAILED"
    await asyncio.sleep(1.5)
    assert [r["run_id"] for r in starts(script)] == [first, f"{first}_attempt_1"]


async def test_max_retries_above_the_cap_is_refused(stack: Stack, tmp_path: Path) -> None:
    script = write_script(tmp_path, "fail.py", FAIL_AND_RECORD)
    for value in (11, 2**31 - 1):
        message = await expect_error(
            stack.create_job("j", script, max_retries=value),
            grpc.StatusCode.INVALID_ARGUMENT,
            "InvalidInputException",
        )
        assert message.startswith("MaxRetries: must be at most 10"), message
    await expect_error(
        stack.glue.GetJob(glue_pb2.GetJobRequest(job_name="j")),
        grpc.StatusCode.NOT_FOUND,
        "EntityNotFoundException",
    )
    await stack.create_job("j", script, max_retries=10)
    update = glue_pb2.JobUpdate(
        role="arn:aws:iam::123456789012:role/test",
        command=glue_pb2.JobCommand(name="pythonshell", script_location=str(script)),
        max_retries=11,
    )
    message = await expect_error(
        stack.glue.UpdateJob(glue_pb2.UpdateJobRequest(job_name="j", job_update=update)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "InvalidInputException",
    )
    assert message.startswith("JobUpdate.MaxRetries: must be at most 10"), message
    job = (await stack.glue.GetJob(glue_pb2.GetJobRequest(job_name="j"))).job
    assert job.max_retries == 10
