"""StartRun admission in batches: each admission decided as if alone, one transaction for all."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import grpc
import pytest

from glue.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc
from glue.v1 import glue_pb2
from scheduler_service.run_admission import Admission, Admitted
from scheduler_service.runs import RunStore
from servicekit.errors import ConcurrentRunsExceededException, EntityNotFoundException, GlueError
from tests.conftest import Stack
from tests.helpers.scripts import SLEEP, SUCCEED, write_script


@pytest.fixture
async def scheduler(stack: Stack) -> AsyncIterator[scheduler_pb2_grpc.SchedulerStub]:
    """A stub on the stack's scheduler."""
    assert stack.scheduler is not None
    async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.scheduler.port}") as channel:
        yield scheduler_pb2_grpc.SchedulerStub(channel)


def store_of(stack: Stack) -> RunStore:
    """The in-process scheduler's run store."""
    assert stack.scheduler is not None
    return stack.scheduler.store


def admission(job: str, run_id: str) -> Admission:
    """An admission of a job the scheduler holds (no registration: nothing to store first)."""
    return Admission(
        registration=scheduler_pb2.JobRegistration(),
        run_id=run_id,
        request={"JobName": job},
        process_slot_reserved=False,
    )


async def create_held_job(stack: Stack, name: str, script: Path, limit: int) -> None:
    """CreateJob, then wait until the scheduler holds the job (the catalog pushes it after
    answering)."""
    await stack.create_job(
        name, script, execution_property=glue_pb2.ExecutionProperty(max_concurrent_runs=limit)
    )
    for _ in range(200):
        if await store_of(stack).job_definition(name) is not None:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the scheduler never got job {name}")


async def stop_all(stack: Stack, job: str, run_ids: Sequence[str]) -> None:
    """Stop the runs and wait until they ended."""
    await stack.glue.BatchStopJobRun(
        glue_pb2.BatchStopJobRunRequest(job_name=job, job_run_ids=list(run_ids))
    )
    for run_id in run_ids:
        await stack.wait_run(job, run_id)


async def test_a_batch_decides_each_admission_as_if_alone(stack: Stack, tmp_path: Path) -> None:
    await create_held_job(stack, "pair", write_script(tmp_path, "s.py", SLEEP), 2)
    results = await store_of(stack).admit_many(
        [
            admission("pair", "jr_one"),
            admission("missing", "jr_lost"),
            admission("pair", "jr_two"),
            admission("pair", "jr_one"),  # the same call again (a retry): the same run
            admission("pair", "jr_three"),  # the job is at its limit now
        ]
    )
    one, lost, two, again, three = results
    assert isinstance(one, Admitted) and one.created
    assert isinstance(two, Admitted) and two.created
    assert isinstance(again, Admitted) and not again.created
    assert again.event == one.event
    assert isinstance(lost, EntityNotFoundException)
    assert isinstance(three, ConcurrentRunsExceededException)
    assert three.message == "Concurrent runs exceeded for pair"
    # Consecutive events, in the order admitted.
    assert two.event.sequence == one.event.sequence + 1

    (later,) = await store_of(stack).admit_many([admission("pair", "jr_one")])
    assert isinstance(later, Admitted) and not later.created
    assert later.run.run_id == "jr_one"
    assert later.event.sequence >= one.event.sequence
    for run_id in ("jr_one", "jr_two"):
        await stack.wait_run("pair", run_id, {"RUNNING"})
    assert (await store_of(stack).get("jr_three")) is None
    await stop_all(stack, "pair", ["jr_one", "jr_two"])


async def test_a_failing_batch_fails_only_the_admission_at_fault(
    stack: Stack,
    tmp_path: Path,
    scheduler: scheduler_pb2_grpc.SchedulerStub,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await create_held_job(stack, "many", write_script(tmp_path, "s.py", SUCCEED), 100)
    store = store_of(stack)
    admit_many = store.admit_many
    batches: list[int] = []

    async def poisoned(admissions: Sequence[Admission]) -> list[Admitted | GlueError]:
        batches.append(len(admissions))
        if any(a.run_id == "jr_dead" for a in admissions):
            raise RuntimeError("the database refused something in this batch")
        return await admit_many(admissions)

    monkeypatch.setattr(store, "admit_many", poisoned)
    run_ids = [f"jr_{i:02d}" for i in range(12)] + ["jr_dead"]

    async def start(run_id: str) -> scheduler_pb2.StartRunResponse:
        return await scheduler.StartRun(
            scheduler_pb2.StartRunRequest(
                run_id=run_id, request=glue_pb2.StartJobRunRequest(job_name="many")
            )
        )

    results = await asyncio.gather(*(start(r) for r in run_ids), return_exceptions=True)
    *good, bad = results
    assert isinstance(bad, grpc.aio.AioRpcError)
    assert bad.code() == grpc.StatusCode.INTERNAL
    for run_id, response in zip(run_ids, good, strict=False):
        assert isinstance(response, scheduler_pb2.StartRunResponse)
        assert response.event.run.id == run_id
    # Calls that arrived while a batch was being written went together in the next one.
    assert max(batches) > 1
    for run_id in run_ids[:-1]:
        run = await stack.wait_run("many", run_id)
        assert run.job_run_state == "SUCCEEDED", run.error_message
