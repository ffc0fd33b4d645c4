"""Trigger fires through the scheduler's internal API, with runs observed through the catalog.

Triggers are registered directly on the scheduler here (AddTrigger / FireTrigger), so these
tests pin the scheduler's behaviour on its own; tests/catalog/test_triggers.py drives the same
through the public API.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from sqlalchemy import select

from glue.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc
from glue.v1 import glue_pb2
from scheduler_service.tables import triggers as scheduler_triggers
from tests.conftest import Stack
from tests.helpers.missed_fires import clear_of_a_minute_boundary, restart_after_missed_fires
from tests.helpers.scripts import FAIL, SLEEP, SUCCEED, write_script

VERSION = iter(range(1, 1_000_000))


@pytest.fixture
async def scheduler(stack: Stack) -> AsyncIterator[scheduler_pb2_grpc.SchedulerStub]:
    """A stub on the stack's scheduler."""
    assert stack.scheduler is not None
    async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.scheduler.port}") as channel:
        yield scheduler_pb2_grpc.SchedulerStub(channel)


def trigger(name: str, kind: str, actions: list[str], **fields: object) -> glue_pb2.Trigger:
    """A Glue Trigger message starting ``actions``."""
    return glue_pb2.Trigger(
        name=name,
        type=kind,
        actions=[glue_pb2.Action(job_name=job) for job in actions],
        **fields,  # type: ignore[arg-type]
    )


async def register(stack: Stack, definition: glue_pb2.Trigger) -> None:
    """Create or update the trigger through the catalog (the reconciler would remove a trigger
    registered on the scheduler alone), then start or stop it to reach ``definition.state``."""
    try:
        current = (
            await stack.glue.GetTrigger(glue_pb2.GetTriggerRequest(name=definition.name))
        ).trigger
    except grpc.aio.AioRpcError as exc:
        if exc.code() != grpc.StatusCode.NOT_FOUND:
            raise
        request = glue_pb2.CreateTriggerRequest(
            name=definition.name,
            type=definition.type,
            actions=definition.actions,
            start_on_creation=definition.state == "ACTIVATED",
        )
        if definition.schedule:
            request.schedule = definition.schedule
        if definition.HasField("predicate"):
            request.predicate.CopyFrom(definition.predicate)
        await stack.glue.CreateTrigger(request)
        return
    update = glue_pb2.TriggerUpdate(actions=definition.actions)
    if definition.schedule:
        update.schedule = definition.schedule
    if definition.HasField("predicate"):
        update.predicate.CopyFrom(definition.predicate)
    await stack.glue.UpdateTrigger(
        glue_pb2.UpdateTriggerRequest(name=definition.name, trigger_update=update)
    )
    if definition.state == "ACTIVATED" and current.state != "ACTIVATED":
        await stack.glue.StartTrigger(glue_pb2.StartTriggerRequest(name=definition.name))
    if definition.state == "DEACTIVATED" and current.state == "ACTIVATED":
        await stack.glue.StopTrigger(glue_pb2.StopTriggerRequest(name=definition.name))


async def fire(
    stub: scheduler_pb2_grpc.SchedulerStub, name: str, fire_id: str
) -> glue_pb2.TriggerFire:
    """FireTrigger (no registration change)."""
    request = scheduler_pb2.FireTriggerRequest(
        registration=scheduler_pb2.TriggerRegistration(trigger=glue_pb2.Trigger(name=name)),
        fire_id=fire_id,
        reason="manual fire",
    )
    return (await stub.FireTrigger(request)).fire


async def fires(stub: scheduler_pb2_grpc.SchedulerStub, name: str) -> list[glue_pb2.TriggerFire]:
    """The trigger's ledger, newest first."""
    request = scheduler_pb2.ListTriggerFiresRequest(trigger_name=name, max_results=100)
    return list((await stub.ListTriggerFires(request)).fires)


async def jobs_registered(stub: scheduler_pb2_grpc.SchedulerStub, *names: str) -> None:
    """Wait until the catalog's pushes of these jobs reached the scheduler."""
    for _ in range(200):
        held = await stub.ListRegistrations(scheduler_pb2.ListRegistrationsRequest())
        if set(names) <= {r.name for r in held.jobs if not r.deleted}:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"jobs {names} never reached the scheduler")


async def runs_of(stack: Stack, job: str) -> list[glue_pb2.JobRun]:
    """GetJobRuns (newest first)."""
    return list((await stack.glue.GetJobRuns(glue_pb2.GetJobRunsRequest(job_name=job))).job_runs)


async def wait_runs(
    stack: Stack, job: str, count: int, timeout: float = 20
) -> list[glue_pb2.JobRun]:
    """Wait until the job has ``count`` runs, all terminal."""
    deadline = time.monotonic() + timeout
    while True:
        found = await runs_of(stack, job)
        if len(found) >= count and all(
            r.job_run_state in {"SUCCEEDED", "FAILED", "ERROR", "STOPPED", "TIMEOUT"} for r in found
        ):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{job}: {[(r.id, r.job_run_state) for r in found]}")
        await asyncio.sleep(0.05)


async def test_fire_starts_every_action_once_per_fire_id(
    stack: Stack, scheduler: scheduler_pb2_grpc.SchedulerStub, tmp_path: Path
) -> None:
    script = write_script(tmp_path, "ok.py", SUCCEED)
    await stack.create_job("a", script, default_arguments={"--x": "job"})
    await stack.create_job("b", script)
    await jobs_registered(scheduler, "a", "b")
    definition = trigger("both", "ON_DEMAND", ["a", "b"], state="CREATED")
    definition.actions[0].arguments["--x"] = "action"
    definition.actions[0].timeout = 9
    await register(stack, definition)
    first = await fire(scheduler, "both", "f1")
    assert first.outcome == "FIRED" and len(first.run_ids) == 2
    again = await fire(scheduler, "both", "f1")
    assert list(again.run_ids) == list(first.run_ids)
    (run_a,) = await wait_runs(stack, "a", 1)
    (run_b,) = await wait_runs(stack, "b", 1)
    assert {run_a.id, run_b.id} == set(first.run_ids)
    assert run_a.trigger_name == "both" and run_b.trigger_name == "both"
    assert run_a.arguments["--x"] == "action" and run_a.timeout == 9
    assert run_a.job_run_state == "SUCCEEDED"
    ledger = await fires(scheduler, "both")
    assert [f.outcome for f in ledger] == ["FIRED"]


async def test_actions_on_busy_or_missing_jobs(
    stack: Stack, scheduler: scheduler_pb2_grpc.SchedulerStub, tmp_path: Path
) -> None:
    await stack.create_job("busy", write_script(tmp_path, "s.py", SLEEP))
    await stack.create_job("fine", write_script(tmp_path, "ok.py", SUCCEED))
    await stack.create_job("doomed", write_script(tmp_path, "ok2.py", SUCCEED))
    await jobs_registered(scheduler, "busy", "fine", "doomed")
    await register(
        stack, trigger("mixed", "ON_DEMAND", ["busy", "doomed", "fine"], state="CREATED")
    )
    running = await stack.start_run("busy")
    await stack.wait_run("busy", running, {"RUNNING"})
    await stack.glue.DeleteJob(glue_pb2.DeleteJobRequest(job_name="doomed"))
    for _ in range(100):
        held = await scheduler.ListRegistrations(scheduler_pb2.ListRegistrationsRequest())
        if any(r.name == "doomed" and r.deleted for r in held.jobs):
            break
        await asyncio.sleep(0.02)
    fired = await fire(scheduler, "mixed", "x")
    busy_id, doomed_id, fine_id = fired.run_ids
    failed = await stack.wait_run("busy", busy_id)
    assert failed.job_run_state == "FAILED"
    assert "ConcurrentRunsExceededException" in failed.error_message
    assert (await stack.wait_run("fine", fine_id)).job_run_state == "SUCCEEDED"
    # The deleted job's run exists in the scheduler only (the catalog has no job to show it on).
    assert stack.scheduler is not None
    error = await stack.scheduler.store.get(doomed_id)
    assert error is not None and error.state.value == "ERROR"
    assert "doomed" in (error.error_message or "")
    await stack.glue.BatchStopJobRun(
        glue_pb2.BatchStopJobRunRequest(job_name="busy", job_run_ids=[running])
    )


async def test_conditional_chain_runs_to_the_end(
    stack: Stack, scheduler: scheduler_pb2_grpc.SchedulerStub, tmp_path: Path
) -> None:
    script = write_script(tmp_path, "ok.py", SUCCEED)
    for job in ("a", "b", "c"):
        await stack.create_job(job, script)
    await jobs_registered(scheduler, "a", "b", "c")

    def watch(name: str, job: str, starts: str) -> glue_pb2.Trigger:
        condition = glue_pb2.Condition(logical_operator="EQUALS", job_name=job, state="SUCCEEDED")
        return trigger(
            name,
            "CONDITIONAL",
            [starts],
            state="ACTIVATED",
            predicate=glue_pb2.Predicate(conditions=[condition]),
        )

    await register(stack, watch("a-then-b", "a", "b"))
    await register(stack, watch("b-then-c", "b", "c"))
    # A run started directly does not count, as in Glue.
    direct = await stack.start_run("a")
    await stack.wait_run("a", direct)
    await register(stack, trigger("go", "ON_DEMAND", ["a"], state="CREATED"))
    (a_id,) = (await fire(scheduler, "go", "go-1")).run_ids
    (c_run,) = await wait_runs(stack, "c", 1)
    (b_run,) = await wait_runs(stack, "b", 1)
    assert c_run.job_run_state == "SUCCEEDED" and c_run.trigger_name == "b-then-c"
    detailed = await stack.glue.GetJobRun(
        glue_pb2.GetJobRunRequest(job_name="b", run_id=b_run.id, predecessors_included=True)
    )
    assert [(p.job_name, p.run_id) for p in detailed.job_run.predecessor_runs] == [("a", a_id)]
    assert not b_run.predecessor_runs  # only with PredecessorsIncluded
    ledger = await fires(scheduler, "a-then-b")
    assert [(f.outcome, list(f.run_ids)) for f in ledger] == [("FIRED", [b_run.id])]
    assert a_id in ledger[0].reason


async def test_and_waits_for_every_condition_and_fires_once(
    stack: Stack, scheduler: scheduler_pb2_grpc.SchedulerStub, tmp_path: Path
) -> None:
    ok = write_script(tmp_path, "ok.py", SUCCEED)
    slow = write_script(tmp_path, "slow.py", SLEEP)
    await stack.create_job("fast", ok)
    await stack.create_job("slow", slow, default_arguments={"--seconds": "1"})
    await stack.create_job("after", ok)
    await stack.create_job("bad", write_script(tmp_path, "f.py", FAIL))
    await jobs_registered(scheduler, "fast", "slow", "after", "bad")
    conditions = [
        glue_pb2.Condition(logical_operator="EQUALS", job_name="fast", state="SUCCEEDED"),
        glue_pb2.Condition(logical_operator="EQUALS", job_name="slow", state="SUCCEEDED"),
    ]
    await register(
        stack,
        trigger(
            "both-done",
            "CONDITIONAL",
            ["after"],
            state="ACTIVATED",
            predicate=glue_pb2.Predicate(logical="AND", conditions=conditions),
        ),
    )
    any_failure = [
        glue_pb2.Condition(logical_operator="EQUALS", job_name="bad", state="FAILED"),
        glue_pb2.Condition(logical_operator="EQUALS", job_name="fast", state="FAILED"),
    ]
    await register(
        stack,
        trigger(
            "any-failed",
            "CONDITIONAL",
            ["after"],
            state="ACTIVATED",
            predicate=glue_pb2.Predicate(logical="ANY", conditions=any_failure),
        ),
    )
    await register(stack, trigger("start", "ON_DEMAND", ["fast", "slow"], state="CREATED"))
    fast_id, slow_id = (await fire(scheduler, "start", "s1")).run_ids
    await stack.wait_run("fast", fast_id)
    # Only one condition holds so far: nothing fired.
    assert await runs_of(stack, "after") == []
    await stack.wait_run("slow", slow_id)
    (after,) = await wait_runs(stack, "after", 1)
    detailed = await stack.glue.GetJobRun(
        glue_pb2.GetJobRunRequest(job_name="after", run_id=after.id, predecessors_included=True)
    )
    assert sorted((p.job_name, p.run_id) for p in detailed.job_run.predecessor_runs) == sorted(
        [("fast", fast_id), ("slow", slow_id)]
    )
    await asyncio.sleep(0.5)
    assert len(await runs_of(stack, "after")) == 1
    # ANY: one failed trigger-started run is enough.
    await register(stack, trigger("start-bad", "ON_DEMAND", ["bad"], state="CREATED"))
    await fire(scheduler, "start-bad", "b1")
    found = await wait_runs(stack, "after", 2)
    assert found[0].trigger_name == "any-failed"


async def test_update_reschedules_and_stop_unschedules(
    stack: Stack, scheduler: scheduler_pb2_grpc.SchedulerStub, tmp_path: Path
) -> None:
    await stack.create_job("nightly", write_script(tmp_path, "ok.py", SUCCEED))
    await register(
        stack,
        trigger("sched", "SCHEDULED", ["nightly"], state="ACTIVATED", schedule="cron(0 3 * * ? *)"),
    )
    assert stack.scheduler is not None
    db = stack.scheduler.db

    async def next_fire() -> float | None:
        async with db.read() as conn:
            return (
                await conn.execute(
                    select(scheduler_triggers.c.next_fire_at).where(
                        scheduler_triggers.c.name == "sched"
                    )
                )
            ).scalar()

    first = await next_fire()
    assert first is not None and time.gmtime(first).tm_hour == 3 and time.gmtime(first).tm_min == 0
    await register(
        stack,
        trigger(
            "sched", "SCHEDULED", ["nightly"], state="ACTIVATED", schedule="cron(30 4 * * ? *)"
        ),
    )
    second = await next_fire()
    assert (
        second is not None and time.gmtime(second).tm_hour == 4 and time.gmtime(second).tm_min == 30
    )
    await register(
        stack,
        trigger(
            "sched", "SCHEDULED", ["nightly"], state="DEACTIVATED", schedule="cron(30 4 * * ? *)"
        ),
    )
    assert await next_fire() is None


@pytest.mark.slow
async def test_a_schedule_fires_at_the_minute_boundary(
    stack: Stack, scheduler: scheduler_pb2_grpc.SchedulerStub, tmp_path: Path
) -> None:
    """Real cron timing: waits for one minute boundary."""
    await stack.create_job("every-minute", write_script(tmp_path, "ok.py", SUCCEED))
    await jobs_registered(scheduler, "every-minute")
    registering = time.time()
    await register(
        stack,
        trigger(
            "minutely",
            "SCHEDULED",
            ["every-minute"],
            state="ACTIVATED",
            schedule="cron(* * * * ? *)",
        ),
    )
    registered = time.time()
    (run,) = await wait_runs(stack, "every-minute", 1, timeout=75 + registered - registering)
    assert run.trigger_name == "minutely"
    fired = (await fires(scheduler, "minutely"))[-1]
    assert fired.outcome == "FIRED" and list(fired.run_ids) == [run.id]
    # Due at the first minute boundary after the trigger was registered; if one passed while
    # it was being registered (a loaded machine can take seconds), that one or the next.
    boundary = fired.scheduled_at.ToMicroseconds() / 1e6
    first = math.floor(registering / 60) * 60 + 60
    assert boundary in ((first, first + 60) if first <= registered else (first,)), boundary
    # Created at the due time, never before it; the bound after it is for a loaded machine
    # (the clock itself wakes within a second: it sleeps at most that long).
    started = run.started_on.ToMicroseconds() / 1e6
    assert boundary <= started < boundary + 5.0, started - boundary


@pytest.mark.parametrize(
    ("grace", "outcomes"), [(60.0, ["FIRED", "COALESCED"]), (0.0, ["SKIPPED"])]
)
async def test_missed_due_times_fire_once_or_are_skipped(
    stack: Stack,
    scheduler: scheduler_pb2_grpc.SchedulerStub,
    tmp_path: Path,
    grace: float,
    outcomes: list[str],
) -> None:
    await stack.create_job("catchup", write_script(tmp_path, "ok.py", SUCCEED))
    await jobs_registered(scheduler, "catchup")
    # The first scheduler must not fire it before it is stopped: that FIRED row (and run)
    # would be taken for the restarted scheduler's.
    await clear_of_a_minute_boundary(20)
    await register(
        stack,
        trigger(
            "minutely", "SCHEDULED", ["catchup"], state="ACTIVATED", schedule="cron(* * * * ? *)"
        ),
    )
    await stack.stop_scheduler()
    last_due = await restart_after_missed_fires(stack, "minutely", grace=grace)
    for _ in range(100):
        ledger = await fires(scheduler_stub := scheduler, "minutely")
        if ledger:
            break
        await asyncio.sleep(0.05)
    assert [f.outcome for f in ledger][: len(outcomes)] == outcomes
    if grace:
        fired, coalesced = ledger[0], ledger[1]
        assert fired.scheduled_at.ToMicroseconds() / 1e6 == last_due
        assert coalesced.due_times == 3
        (run,) = await wait_runs(stack, "catchup", 1)
        assert run.id == fired.run_ids[0]
    else:
        assert ledger[0].due_times == 4
        assert "grace" in ledger[0].reason
        assert await runs_of(stack, "catchup") == []
    del scheduler_stub
