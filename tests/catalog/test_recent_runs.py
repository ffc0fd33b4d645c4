"""GetRecentJobRuns: runs across jobs newest first, its filters and pages, runs of deleted
jobs, and what a restricted key sees. Real services, both databases."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from glue.v1 import glue_pb2
from tests.conftest import Stack
from tests.helpers.errors import expect_error
from tests.helpers.scripts import FAIL, SLEEP, SUCCEED, write_script

INVALID = grpc.StatusCode.INVALID_ARGUMENT
IIE = "InvalidInputException"


async def recent(stack: Stack, **fields: object) -> glue_pb2.GetRecentJobRunsResponse:
    request = glue_pb2.GetRecentJobRunsRequest(**fields)  # type: ignore[arg-type]
    return await stack.glue.GetRecentJobRuns(request)


async def run_to_end(stack: Stack, job: str) -> glue_pb2.JobRun:
    return await stack.wait_run(job, await stack.start_run(job))


async def wait_recent(stack: Stack, count: int, **fields: object) -> list[glue_pb2.JobRun]:
    """The recent runs once ``count`` of them are terminal (events arrive asynchronously)."""
    for _ in range(200):
        runs = list((await recent(stack, **fields)).job_runs)
        if len(runs) >= count and all(r.HasField("completed_on") for r in runs[:count]):
            return runs
        await asyncio.sleep(0.05)
    raise AssertionError(f"fewer than {count} finished runs: {runs}")


async def test_runs_across_jobs_newest_first_with_filters(stack: Stack, tmp_path: Path) -> None:
    await stack.create_job("ok", write_script(tmp_path, "ok.py", SUCCEED))
    await stack.create_job("bad", write_script(tmp_path, "bad.py", FAIL))
    first = await run_to_end(stack, "ok")
    failed = await run_to_end(stack, "bad")
    middle = datetime.now(UTC)
    last = await run_to_end(stack, "ok")
    await stack.glue.CreateTrigger(
        glue_pb2.CreateTriggerRequest(
            name="kick", type="ON_DEMAND", actions=[glue_pb2.Action(job_name="bad")]
        )
    )
    fired = await stack.glue.FireTrigger(glue_pb2.FireTriggerRequest(name="kick"))
    (triggered,) = fired.fire.run_ids
    await stack.wait_run("bad", triggered)

    everything = await recent(stack)
    assert [r.id for r in everything.job_runs] == [triggered, last.id, failed.id, first.id]
    assert not everything.HasField("next_token")
    assert all(not r.job_deleted for r in everything.job_runs)

    only_ok = await recent(stack, job_name="ok")
    assert [r.id for r in only_ok.job_runs] == [last.id, first.id]
    only_failed = await recent(stack, job_run_states=["FAILED"])
    assert [r.id for r in only_failed.job_runs] == [triggered, failed.id]
    by_trigger = await recent(stack, trigger_name="kick")
    assert [r.id for r in by_trigger.job_runs] == [triggered]
    since = Timestamp()
    since.FromDatetime(middle)
    newer = await recent(stack, started_after=since)
    assert [r.id for r in newer.job_runs] == [triggered, last.id]
    latest = await recent(stack, latest_per_job=True)
    assert [r.id for r in latest.job_runs] == [triggered, last.id]

    # The filters apply before "latest": a job's newest run that the filters drop leaves its
    # newest run that they keep.
    await stack.create_job(
        "nap", write_script(tmp_path, "nap.py", SLEEP), default_arguments={"--seconds": "0"}
    )
    napped = await run_to_end(stack, "nap")
    long_nap = await stack.start_run("nap", arguments={"--seconds": "60"})
    await stack.wait_run("nap", long_nap, {"RUNNING"})
    await stack.glue.BatchStopJobRun(
        glue_pb2.BatchStopJobRunRequest(job_name="nap", job_run_ids=[long_nap])
    )
    assert (await stack.wait_run("nap", long_nap)).job_run_state == "STOPPED"
    succeeded = await recent(stack, latest_per_job=True, job_run_states=["SUCCEEDED"])
    assert [r.id for r in succeeded.job_runs] == [napped.id, last.id]


async def test_pages_resume_after_the_last_run_and_tokens_are_bound(
    stack: Stack, tmp_path: Path
) -> None:
    await stack.create_job("ok", write_script(tmp_path, "ok.py", SUCCEED))
    ids = [(await run_to_end(stack, "ok")).id for _ in range(3)]
    page = await recent(stack, max_results=2)
    assert [r.id for r in page.job_runs] == ids[::-1][:2]
    # A run started between pages does not shift the next page.
    extra = await run_to_end(stack, "ok")
    rest = await recent(stack, max_results=2, next_token=page.next_token)
    assert [r.id for r in rest.job_runs] == [ids[0]] and not rest.HasField("next_token")
    assert (await recent(stack, max_results=1)).job_runs[0].id == extra.id
    # A token is bound to its filters.
    message = await expect_error(
        recent(stack, max_results=2, next_token=page.next_token, job_name="ok"), INVALID, IIE
    )
    assert "NextToken" in message


async def test_bad_filters_name_the_field(stack: Stack) -> None:
    message = await expect_error(recent(stack, job_run_states=["RUNNING", "DONE"]), INVALID, IIE)
    assert "JobRunStates[1]" in message and "SUCCEEDED" in message
    message = await expect_error(recent(stack, max_results=500), INVALID, IIE)
    assert "MaxResults" in message
    message = await expect_error(recent(stack, job_name="x" * 300), INVALID, IIE)
    assert "JobName" in message


async def test_runs_of_deleted_jobs_are_shown_and_marked(stack: Stack, tmp_path: Path) -> None:
    script = write_script(tmp_path, "ok.py", SUCCEED)
    await stack.create_job("gone", script)
    kept = await run_to_end(stack, "gone")
    await stack.glue.CreateTrigger(
        glue_pb2.CreateTriggerRequest(
            name="kick", type="ON_DEMAND", actions=[glue_pb2.Action(job_name="gone")]
        )
    )
    await stack.glue.DeleteJob(glue_pb2.DeleteJobRequest(job_name="gone"))
    # The trigger still names the deleted job: its run ends ERROR, and is not lost.
    fired = await stack.glue.FireTrigger(glue_pb2.FireTriggerRequest(name="kick"))
    (orphan_id,) = fired.fire.run_ids
    runs = await wait_recent(stack, 1)
    assert [r.id for r in runs] == [orphan_id]  # DeleteJob removed the job's own history
    (orphan,) = runs
    assert orphan.job_deleted and orphan.job_run_state == "ERROR"
    assert orphan.job_name == "gone" and orphan.trigger_name == "kick"
    assert "gone" in orphan.error_message
    assert kept.id not in [r.id for r in runs]

    # Re-created under the same name: the old incarnation's run is not the new job's.
    await stack.create_job("gone", script)
    history = await stack.glue.GetJobRuns(glue_pb2.GetJobRunsRequest(job_name="gone"))
    assert list(history.job_runs) == []
    await expect_error(
        stack.get_run("gone", orphan_id), grpc.StatusCode.NOT_FOUND, "EntityNotFoundException"
    )
    fresh = await run_to_end(stack, "gone")
    latest = await recent(stack, latest_per_job=True)
    assert [(r.id, r.job_deleted) for r in latest.job_runs] == [(fresh.id, False)]

    assert stack.catalog is not None
    assert await stack.catalog.runs.prune_deleted_job_runs(orphan.started_on.seconds) == 0
    assert await stack.catalog.runs.prune_deleted_job_runs(fresh.started_on.seconds + 1) == 1
    assert [r.id for r in (await recent(stack)).job_runs] == [fresh.id]
