"""Triggers through the public API: definitions, states, listings, fires, outages."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

from glue.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc
from glue.v1 import glue_pb2
from tests.conftest import TERMINAL, Stack
from tests.helpers.errors import expect_error
from tests.helpers.scripts import SUCCEED, write_script

INVALID = grpc.StatusCode.INVALID_ARGUMENT
IIE = "InvalidInputException"


def action(job: str, **fields: object) -> glue_pb2.Action:
    """An action starting ``job``."""
    return glue_pb2.Action(job_name=job, **fields)  # type: ignore[arg-type]


def condition(job: str, state: str = "SUCCEEDED") -> glue_pb2.Condition:
    """A job-state condition."""
    return glue_pb2.Condition(logical_operator="EQUALS", job_name=job, state=state)


async def create(stack: Stack, name: str, kind: str, actions: list[str], **fields: object) -> None:
    """CreateTrigger."""
    await stack.glue.CreateTrigger(
        glue_pb2.CreateTriggerRequest(
            name=name,
            type=kind,
            actions=[action(j) for j in actions],
            **fields,  # type: ignore[arg-type]
        )
    )


async def get(stack: Stack, name: str) -> glue_pb2.Trigger:
    """GetTrigger."""
    return (await stack.glue.GetTrigger(glue_pb2.GetTriggerRequest(name=name))).trigger


@pytest.fixture
async def jobs(stack: Stack, tmp_path: Path) -> list[str]:
    """Three jobs a, b, c running a script that succeeds."""
    script = write_script(tmp_path, "ok.py", SUCCEED)
    for name in ("a", "b", "c"):
        await stack.create_job(name, script)
    return ["a", "b", "c"]


async def test_states_follow_glue(stack: Stack, jobs: list[str]) -> None:
    await create(stack, "sched", "SCHEDULED", ["a"], schedule="cron(0 3 * * ? *)")
    assert (await get(stack, "sched")).state == "CREATED"
    await expect_error(
        stack.glue.StopTrigger(glue_pb2.StopTriggerRequest(name="sched")),
        INVALID,
        IIE,
    )
    await stack.glue.StartTrigger(glue_pb2.StartTriggerRequest(name="sched"))
    assert (await get(stack, "sched")).state == "ACTIVATED"
    await stack.glue.StartTrigger(glue_pb2.StartTriggerRequest(name="sched"))  # idempotent
    await stack.glue.StopTrigger(glue_pb2.StopTriggerRequest(name="sched"))
    assert (await get(stack, "sched")).state == "DEACTIVATED"
    await stack.glue.StopTrigger(glue_pb2.StopTriggerRequest(name="sched"))
    await create(
        stack,
        "cond",
        "CONDITIONAL",
        ["b"],
        start_on_creation=True,
        predicate=glue_pb2.Predicate(conditions=[condition("a")]),
    )
    found = await get(stack, "cond")
    assert found.state == "ACTIVATED" and found.predicate.conditions[0].job_name == "a"
    await create(
        stack,
        "event",
        "EVENT",
        ["a"],
        event_batching_condition=glue_pb2.EventBatchingCondition(batch_size=5),
    )
    message = await expect_error(
        stack.glue.StartTrigger(glue_pb2.StartTriggerRequest(name="event")), INVALID, IIE
    )
    assert "EVENT cannot be started" in message
    assert (await get(stack, "event")).state == "CREATED"


@pytest.mark.parametrize(
    ("kind", "fields", "expected"),
    [
        ("SCHEDULED", {}, "Schedule cannot be null or empty"),
        ("SCHEDULED", {"schedule": "cron(0 0 * * * *)"}, "exactly one of them must be '?'"),
        ("SCHEDULED", {"schedule": "rate(5 minutes)"}, "rate("),
        ("CONDITIONAL", {}, "Predicate cannot be null or empty"),
        ("ON_DEMAND", {"start_on_creation": True}, "StartOnCreation"),
        (
            "CONDITIONAL",
            {
                "predicate": glue_pb2.Predicate(
                    conditions=[glue_pb2.Condition(job_name="b", state="SUCCEEDED")]
                )
            },
            "Logical operator cannot be null or empty",
        ),
        (
            "CONDITIONAL",
            {
                "predicate": glue_pb2.Predicate(
                    conditions=[glue_pb2.Condition(logical_operator="EQUALS", job_name="b")]
                )
            },
            "State cannot be null or empty",
        ),
        (
            "CONDITIONAL",
            {"predicate": glue_pb2.Predicate(conditions=[condition("b", "RUNNING")])},
            "can only watch",
        ),
        (
            "CONDITIONAL",
            {"predicate": glue_pb2.Predicate(conditions=[condition("a")])},
            "Job cannot be a Predicate and Action for Conditional Trigger",
        ),
        (
            "CONDITIONAL",
            {"predicate": glue_pb2.Predicate(conditions=[condition("b"), condition("c")])},
            "Logical",
        ),
    ],
)
async def test_definition_errors(
    stack: Stack, jobs: list[str], kind: str, fields: dict[str, object], expected: str
) -> None:
    message = await expect_error(create(stack, "bad", kind, ["a"], **fields), INVALID, IIE)
    assert expected in message
    names = await stack.glue.ListTriggers(glue_pb2.ListTriggersRequest())
    assert list(names.trigger_names) == []


async def test_actions_must_name_existing_jobs(stack: Stack, jobs: list[str]) -> None:
    await expect_error(
        create(stack, "t", "ON_DEMAND", ["nope"]),
        grpc.StatusCode.NOT_FOUND,
        "EntityNotFoundException",
    )
    both = glue_pb2.Action(job_name="a", crawler_name="crawl")
    message = await expect_error(
        stack.glue.CreateTrigger(
            glue_pb2.CreateTriggerRequest(name="t", type="ON_DEMAND", actions=[both])
        ),
        INVALID,
        IIE,
    )
    assert "Both JobName and CrawlerName" in message
    await create(stack, "dup", "ON_DEMAND", ["a"])
    await expect_error(
        create(stack, "dup", "ON_DEMAND", ["a"]),
        grpc.StatusCode.ALREADY_EXISTS,
        "AlreadyExistsException",
    )


async def test_update_merges_and_delete_is_idempotent(stack: Stack, jobs: list[str]) -> None:
    await create(
        stack,
        "u",
        "SCHEDULED",
        ["a"],
        schedule="cron(0 3 * * ? *)",
        description="old",
        start_on_creation=True,
    )
    response = await stack.glue.UpdateTrigger(
        glue_pb2.UpdateTriggerRequest(
            name="u", trigger_update=glue_pb2.TriggerUpdate(schedule="cron(15 4 * * ? *)")
        )
    )
    updated = response.trigger
    assert updated.schedule == "cron(15 4 * * ? *)" and updated.description == "old"
    assert updated.state == "ACTIVATED" and updated.type == "SCHEDULED"
    await expect_error(
        stack.glue.UpdateTrigger(
            glue_pb2.UpdateTriggerRequest(
                name="u", trigger_update=glue_pb2.TriggerUpdate(name="renamed")
            )
        ),
        INVALID,
        IIE,
    )
    await expect_error(
        stack.glue.UpdateTrigger(
            glue_pb2.UpdateTriggerRequest(
                name="missing", trigger_update=glue_pb2.TriggerUpdate(description="x")
            )
        ),
        grpc.StatusCode.NOT_FOUND,
        "EntityNotFoundException",
    )
    assert (await stack.glue.DeleteTrigger(glue_pb2.DeleteTriggerRequest(name="u"))).name == "u"
    assert (await stack.glue.DeleteTrigger(glue_pb2.DeleteTriggerRequest(name="u"))).name == "u"
    await expect_error(get(stack, "u"), grpc.StatusCode.NOT_FOUND, "EntityNotFoundException")


async def test_listings(stack: Stack, jobs: list[str]) -> None:
    await create(stack, "t-a", "ON_DEMAND", ["a"], tags={"team": "x"})
    await create(stack, "t-b", "ON_DEMAND", ["b"], tags={"team": "x", "env": "prod"})
    await create(stack, "t-ab", "ON_DEMAND", ["a", "b"])
    dependent = await stack.glue.ListTriggers(glue_pb2.ListTriggersRequest(dependent_job_name="b"))
    assert list(dependent.trigger_names) == ["t-ab", "t-b"]
    # AWS documents that with no trigger able to start the job, every trigger is returned.
    nobody = await stack.glue.GetTriggers(glue_pb2.GetTriggersRequest(dependent_job_name="c"))
    assert [t.name for t in nobody.triggers] == ["t-a", "t-ab", "t-b"]
    tagged = await stack.glue.ListTriggers(
        glue_pb2.ListTriggersRequest(tags={"team": "x", "env": "prod"})
    )
    assert list(tagged.trigger_names) == ["t-b"]
    page = await stack.glue.ListTriggers(glue_pb2.ListTriggersRequest(max_results=2))
    assert list(page.trigger_names) == ["t-a", "t-ab"] and page.next_token
    rest = await stack.glue.ListTriggers(
        glue_pb2.ListTriggersRequest(max_results=2, next_token=page.next_token)
    )
    assert list(rest.trigger_names) == ["t-b"] and not rest.HasField("next_token")
    batch = await stack.glue.BatchGetTriggers(
        glue_pb2.BatchGetTriggersRequest(trigger_names=["t-a", "zz"])
    )
    assert [t.name for t in batch.triggers] == ["t-a"] and list(batch.triggers_not_found) == ["zz"]
    await expect_error(
        stack.glue.GetTriggers(glue_pb2.GetTriggersRequest(max_results=201)), INVALID, IIE
    )


async def _runs(stack: Stack, job: str, count: int) -> list[glue_pb2.JobRun]:
    for _ in range(400):
        found = list(
            (await stack.glue.GetJobRuns(glue_pb2.GetJobRunsRequest(job_name=job))).job_runs
        )
        if len(found) >= count and all(r.job_run_state in TERMINAL for r in found):
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"{job}: {[(r.id, r.job_run_state) for r in found]}")


async def test_on_demand_chain_through_the_api(stack: Stack, jobs: list[str]) -> None:
    await create(stack, "kick", "ON_DEMAND", ["a"])
    await create(
        stack,
        "a-then-b",
        "CONDITIONAL",
        ["b"],
        start_on_creation=True,
        predicate=glue_pb2.Predicate(conditions=[condition("a")]),
    )
    await create(
        stack,
        "b-then-c",
        "CONDITIONAL",
        ["c"],
        start_on_creation=True,
        predicate=glue_pb2.Predicate(conditions=[condition("b")]),
    )
    await stack.glue.StartTrigger(glue_pb2.StartTriggerRequest(name="kick"))
    assert (await get(stack, "kick")).state == "CREATED"
    (c_run,) = await _runs(stack, "c", 1)
    assert c_run.job_run_state == "SUCCEEDED" and c_run.trigger_name == "b-then-c"
    fires = await stack.glue.GetTriggerFires(glue_pb2.GetTriggerFiresRequest(name="a-then-b"))
    assert [f.outcome for f in fires.fires] == ["FIRED"]
    fired = await stack.glue.FireTrigger(glue_pb2.FireTriggerRequest(name="kick"))
    assert fired.fire.outcome == "FIRED" and len(fired.fire.run_ids) == 1
    runs_c = await _runs(stack, "c", 2)
    assert len(runs_c) == 2


async def test_delete_job_leaves_triggers_and_recreating_revives_them(
    stack: Stack, jobs: list[str], tmp_path: Path
) -> None:
    await create(stack, "kick", "ON_DEMAND", ["a"])
    await stack.glue.DeleteJob(glue_pb2.DeleteJobRequest(job_name="a"))
    assert (await get(stack, "kick")).actions[0].job_name == "a"
    fired = await stack.glue.FireTrigger(glue_pb2.FireTriggerRequest(name="kick"))
    assert stack.scheduler is not None
    error = await stack.scheduler.store.get(fired.fire.run_ids[0])
    assert error is not None and error.state.value == "ERROR" and "a" in (error.error_message or "")
    await stack.create_job("a", write_script(tmp_path, "ok2.py", SUCCEED))
    await stack.glue.StartTrigger(glue_pb2.StartTriggerRequest(name="kick"))
    (run,) = await _runs(stack, "a", 1)
    assert run.job_run_state == "SUCCEEDED" and run.trigger_name == "kick"


async def test_transitional_state_is_settled_after_an_outage(stack: Stack, jobs: list[str]) -> None:
    await create(stack, "later", "SCHEDULED", ["a"], schedule="cron(0 3 * * ? *)")
    await stack.stop_scheduler()
    await expect_error(
        stack.glue.StartTrigger(glue_pb2.StartTriggerRequest(name="later")),
        grpc.StatusCode.UNAVAILABLE,
        "InternalServiceException",
    )
    assert (await get(stack, "later")).state == "ACTIVATING"
    await stack.start_scheduler()
    assert stack.scheduler is not None
    for _ in range(200):
        if (await get(stack, "later")).state == "ACTIVATED":
            break
        await asyncio.sleep(0.05)
    assert (await get(stack, "later")).state == "ACTIVATED"
    async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.scheduler.port}") as channel:
        held = await scheduler_pb2_grpc.SchedulerStub(channel).ListRegistrations(
            scheduler_pb2.ListRegistrationsRequest()
        )
    assert [t.name for t in held.triggers if not t.deleted] == ["later"]
