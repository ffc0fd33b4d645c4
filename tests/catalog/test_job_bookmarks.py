"""GetJobBookmark and ResetJobBookmark over gRPC, through the catalog to the scheduler.

No run can commit a bookmark through the API yet, so the commits are made as a settling run
makes them (``tests.helpers.bookmarks.commit``), and read back through the public API.
"""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest

from glue.v1 import glue_pb2
from tests.conftest import Stack
from tests.helpers.bookmarks import commit
from tests.helpers.errors import expect_error
from tests.helpers.scripts import SUCCEED, write_script

R1, R2, R3 = (f"jr_{n:064x}" for n in range(1, 4))
NOT_FOUND = grpc.StatusCode.NOT_FOUND
INVALID = grpc.StatusCode.INVALID_ARGUMENT


def state(offset: int) -> str:
    """A committed state, as a job's bookmark library writes it."""
    return json.dumps({"datasource0": {"offset": offset}})


@pytest.fixture
async def job(stack: Stack, tmp_path: Path) -> str:
    """A job named ``etl``."""
    await stack.create_job("etl", write_script(tmp_path, "ok.py", SUCCEED))
    return "etl"


async def _get(stack: Stack, job: str, run_id: str | None = None) -> glue_pb2.JobBookmarkEntry:
    request = glue_pb2.GetJobBookmarkRequest(job_name=job, run_id=run_id)
    return (await stack.glue.GetJobBookmark(request)).job_bookmark_entry


async def _reset(stack: Stack, job: str, run_id: str | None = None) -> glue_pb2.JobBookmarkEntry:
    request = glue_pb2.ResetJobBookmarkRequest(job_name=job, run_id=run_id)
    return (await stack.glue.ResetJobBookmark(request)).job_bookmark_entry


async def test_get_and_reset_a_committed_bookmark(stack: Stack, job: str) -> None:
    await commit(stack, job, R1, state(1))
    await commit(stack, job, R2, state(2), attempt=1, previous_run_id=R1)
    await commit(stack, job, R3, state(3))

    assert await _get(stack, job) == glue_pb2.JobBookmarkEntry(
        job_name="etl", version=3, run=3, attempt=0, run_id=R3, job_bookmark=state(3)
    )
    by_run = await _get(stack, job, R2)
    assert by_run == glue_pb2.JobBookmarkEntry(
        job_name="etl",
        version=2,
        run=2,
        attempt=1,
        previous_run_id=R1,
        run_id=R2,
        job_bookmark=state(2),
    )

    # Back to before R2: the next run reprocesses what R2 and R3 processed.
    rewound = await _reset(stack, job, R2)
    assert (rewound.version, rewound.run, rewound.run_id) == (4, 3, R3)
    assert rewound.job_bookmark == state(1)
    assert await _get(stack, job) == rewound

    # To the beginning: no bookmark at all (absent, not empty).
    cleared = await _reset(stack, job)
    assert (cleared.version, cleared.run, cleared.run_id) == (5, 3, R3)
    assert not cleared.HasField("job_bookmark")
    assert not cleared.HasField("previous_run_id")
    assert await _get(stack, job) == cleared


async def test_errors_name_the_glue_exception(stack: Stack, job: str, tmp_path: Path) -> None:
    for call in (_get, _reset):
        message = await expect_error(call(stack, "nope"), NOT_FOUND, "EntityNotFoundException")
        assert message == "Job nope not found."
        # A job none of whose runs committed.
        message = await expect_error(call(stack, job), NOT_FOUND, "EntityNotFoundException")
        assert message == "Job etl has no job bookmark: none of its runs has committed one."

    await commit(stack, job, R1, state(1))
    for call in (_get, _reset):
        message = await expect_error(
            call(stack, job, "jr_nope"), NOT_FOUND, "EntityNotFoundException"
        )
        assert message == "Job run jr_nope of job etl has committed no job bookmark."
    # A run of another job is no run of this one.
    await stack.create_job("other", write_script(tmp_path, "other.py", SUCCEED))
    await expect_error(_get(stack, "other", R1), NOT_FOUND, "EntityNotFoundException")

    # Invalid input is refused before anything is looked up.
    message = await expect_error(_get(stack, "a\nb"), INVALID, "InvalidInputException")
    assert message == "JobName: must be a single line with no control characters"
    message = await expect_error(_reset(stack, ""), INVALID, "InvalidInputException")
    assert message == "JobName: must not be empty"
    message = await expect_error(_reset(stack, job, ""), INVALID, "InvalidInputException")
    assert message == "RunId: must be at least 1 character long (got 0)"
    assert (await _get(stack, job)).version == 1


async def test_deleting_the_job_deletes_its_bookmark(
    stack: Stack, job: str, tmp_path: Path
) -> None:
    assert stack.catalog is not None
    await commit(stack, job, R1, state(1))
    await stack.glue.DeleteJob(glue_pb2.DeleteJobRequest(job_name=job))
    await expect_error(_get(stack, job), NOT_FOUND, "EntityNotFoundException")
    await stack.create_job(job, write_script(tmp_path, "again.py", SUCCEED))
    message = await expect_error(_get(stack, job), NOT_FOUND, "EntityNotFoundException")
    assert "has no job bookmark" in message


async def test_scheduler_down_is_unavailable(stack: Stack, job: str) -> None:
    await commit(stack, job, R1, state(1))
    await stack.stop_scheduler()
    await expect_error(_get(stack, job), grpc.StatusCode.UNAVAILABLE, "InternalServiceException")
    await stack.start_scheduler()
    assert (await _get(stack, job)).job_bookmark == state(1)
