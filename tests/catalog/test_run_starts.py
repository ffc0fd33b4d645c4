"""StartJobRun's admissions sent in batches (``run_starts``, the scheduler's StartRuns): each run
answered on its own, in few calls, and a failed call failing each of its runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from catalog_service.job_runs import new_run_id
from catalog_service.run_starts import RunStarts
from catalog_service.scheduler_link import SchedulerLink
from glue.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc
from glue.v1 import glue_pb2
from scheduler_service.request_rules import MAX_STARTS_PER_CALL
from servicekit.errors import ConcurrentRunsExceededException, ServiceUnavailableException
from tests.conftest import Stack
from tests.helpers.processes import free_port
from tests.helpers.scripts import SLEEP, write_script


@pytest.fixture
async def scheduler(stack: Stack) -> AsyncIterator[scheduler_pb2_grpc.SchedulerStub]:
    """A stub on the stack's scheduler."""
    assert stack.scheduler is not None
    async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.scheduler.port}") as channel:
        yield scheduler_pb2_grpc.SchedulerStub(channel)


async def create_sleeping_job(stack: Stack, tmp_path: Path, name: str, limit: int) -> None:
    """A job whose runs sleep, at most ``limit`` of them at once."""
    await stack.create_job(
        name,
        write_script(tmp_path, "s.py", SLEEP),
        execution_property=glue_pb2.ExecutionProperty(max_concurrent_runs=limit),
    )


async def start_requests(stack: Stack, job: str, count: int) -> list[scheduler_pb2.StartRunRequest]:
    """``count`` StartRun requests for ``job`` as StartJobRun builds them."""
    assert stack.catalog is not None
    registration = await stack.catalog.jobs.get_registration(job)
    return [
        scheduler_pb2.StartRunRequest(
            registration=registration,
            run_id=new_run_id(),
            request=glue_pb2.StartJobRunRequest(job_name=job),
        )
        for _ in range(count)
    ]


async def test_runs_asked_for_together_go_in_one_call_and_are_answered_each(
    stack: Stack, tmp_path: Path
) -> None:
    assert stack.catalog is not None
    await create_sleeping_job(stack, tmp_path, "capped", 3)
    starts = stack.catalog.runs.starts
    calls_before = starts.calls
    requests = await start_requests(stack, "capped", 12)
    results = await asyncio.gather(*(starts.start(r) for r in requests), return_exceptions=True)
    # All twelve were queued before the first call went: one call carried them.
    assert starts.calls - calls_before == 1
    admitted = [r for r in results if isinstance(r, scheduler_pb2.RunEvent)]
    refused = [r for r in results if not isinstance(r, scheduler_pb2.RunEvent)]
    # MaxConcurrentRuns holds inside the batch: three admitted, each refusal the run's own.
    assert len(admitted) == 3
    assert {e.run.id for e in admitted} <= {r.run_id for r in requests}
    assert len(refused) == 9
    assert all(isinstance(r, ConcurrentRunsExceededException) for r in refused)
    assert {str(r) for r in refused} == {"Concurrent runs exceeded for capped"}
    assert len({id(r) for r in refused}) == 9  # each waiter raises its own
    await stack.glue.BatchStopJobRun(
        glue_pb2.BatchStopJobRunRequest(job_name="capped", job_run_ids=[e.run.id for e in admitted])
    )


async def test_a_batch_is_split_at_its_bound(stack: Stack, tmp_path: Path) -> None:
    assert stack.catalog is not None
    await create_sleeping_job(stack, tmp_path, "many", 20)
    link = stack.catalog.runs._link
    starts = RunStarts(link, in_flight=1, max_batch=4)
    requests = await start_requests(stack, "many", 10)
    try:
        events = await asyncio.gather(*(starts.start(r) for r in requests))
    finally:
        await starts.close()
    assert starts.calls == 3  # 4 + 4 + 2, one call at a time
    # In order: each caller got its own run's event.
    assert [e.run.id for e in events] == [r.run_id for r in requests]
    await stack.glue.BatchStopJobRun(
        glue_pb2.BatchStopJobRunRequest(job_name="many", job_run_ids=[e.run.id for e in events])
    )


async def test_an_unreachable_scheduler_fails_each_run_of_the_call() -> None:
    link = SchedulerLink(f"127.0.0.1:{free_port()}", timeout=2.0)
    starts = RunStarts(link)
    request = scheduler_pb2.StartRunRequest(
        run_id=new_run_id(), request=glue_pb2.StartJobRunRequest(job_name="j")
    )
    try:
        results = await asyncio.gather(
            *(starts.start(request) for _ in range(3)), return_exceptions=True
        )
    finally:
        await starts.close()
        await link.close()
    assert all(isinstance(r, ServiceUnavailableException) for r in results), results
    assert "unreachable" in str(results[0])
    assert len({id(r) for r in results}) == 3
    with pytest.raises(ServiceUnavailableException, match="stopping"):
        await starts.start(request)


async def test_start_runs_refuses_a_bad_run_alone(
    stack: Stack, scheduler: scheduler_pb2_grpc.SchedulerStub, tmp_path: Path
) -> None:
    await create_sleeping_job(stack, tmp_path, "solo", 1)
    (good,) = await start_requests(stack, "solo", 1)
    bad = scheduler_pb2.StartRunRequest()
    bad.CopyFrom(good)
    bad.run_id = "jr_../escape"
    response = await scheduler.StartRuns(scheduler_pb2.StartRunsRequest(runs=[bad, good]))
    refused, admitted = response.outcomes
    assert refused.refusal.reason == "InvalidInputException"
    assert "run_id" in refused.refusal.message
    assert admitted.event.run.id == good.run_id
    await stack.glue.BatchStopJobRun(
        glue_pb2.BatchStopJobRunRequest(job_name="solo", job_run_ids=[good.run_id])
    )


async def test_start_runs_caps_the_runs_per_call(
    stack: Stack, scheduler: scheduler_pb2_grpc.SchedulerStub
) -> None:
    too_many = [scheduler_pb2.StartRunRequest()] * (MAX_STARTS_PER_CALL + 1)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await scheduler.StartRuns(scheduler_pb2.StartRunsRequest(runs=too_many))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "runs" in (caught.value.details() or "")
