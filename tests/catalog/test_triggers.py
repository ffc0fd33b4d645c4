"""Triggers through the public API: definitions, states, listings, fires, outages."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
import pytest
from sqlalchemy import select

from catalog_service.reconciler import Reconciler
from catalog_service.tables import triggers as trigger_rows
from glue.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc
from glue.v1 import glue_pb2
from tests.conftest import TERMINAL, Stack
from tests.helpers.errors import expect_error
from tests.helpers.scripts import SUCCEED, write_script

INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
UNAVAILABLE = grpc.StatusCode.UNAVAILABLE
IIE = "InvalidInputException"
ENF = "EntityNotFoundException"
ISE = "InternalServiceException"
DAILY = "cron(0 3 * * ? *)"


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


async def registrations(stack: Stack) -> dict[str, scheduler_pb2.RegistrationVersion]:
    """The scheduler's trigger registrations by name (asked directly, not via the catalog)."""
    assert stack.scheduler is not None
    async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.scheduler.port}") as channel:
        held = await scheduler_pb2_grpc.SchedulerStub(channel).ListRegistrations(
            scheduler_pb2.ListRegistrationsRequest()
        )
    return {r.name: r for r in held.triggers}


async def catalog_versions(stack: Stack) -> dict[str, int]:
    """The registration version of each trigger row in the catalog's database."""
    assert stack.catalog is not None
    async with stack.catalog.db.read() as conn:
        rows = await conn.execute(select(trigger_rows.c.name, trigger_rows.c.version))
        return {r.name: r.version for r in rows}


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    """Poll ``check`` until it holds (the reconciler runs every second in these tests)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("the condition did not come true in time")
        await asyncio.sleep(0.1)


async def state_of(stack: Stack, name: str) -> str | None:
    """GetTrigger's State, or None once the trigger is gone."""
    try:
        return (await get(stack, name)).state
    except grpc.aio.AioRpcError as exc:
        if exc.code() == NOT_FOUND:
            return None
        raise


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
    assert "Trigger Type EVENT cannot be started" in message
    # Refused for its state (an EVENT trigger is always CREATED), as AWS answers.
    message = await expect_error(
        stack.glue.StopTrigger(glue_pb2.StopTriggerRequest(name="event")), INVALID, IIE
    )
    assert "The operation is not allowed when trigger is in state: CREATED" in message
    message = await expect_error(
        stack.glue.FireTrigger(glue_pb2.FireTriggerRequest(name="event")), INVALID, IIE
    )
    assert "EVENT" in message
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
            "Predicate.Logical: Logical (AND or ANY) is required",
        ),
        (
            "CONDITIONAL",
            {
                "predicate": glue_pb2.Predicate(
                    conditions=[glue_pb2.Condition(logical_operator="EQUALS", state="FAILED")]
                )
            },
            "JobName or CrawlerName in condition cannot be null or empty",
        ),
        (
            "CONDITIONAL",
            {
                "predicate": glue_pb2.Predicate(
                    logical="AND",
                    conditions=[
                        condition("b"),
                        glue_pb2.Condition(
                            logical_operator="EQUALS", crawler_name="crawl", crawl_state="FAILED"
                        ),
                    ],
                )
            },
            "Predicate.Conditions[1].CrawlerName: crawlers are not supported",
        ),
        (
            "CONDITIONAL",
            {
                "predicate": glue_pb2.Predicate(
                    conditions=[
                        glue_pb2.Condition(logical_operator="EQUALS", job_name="b", state="BUSY")
                    ]
                )
            },
            # A model enum: AWS's framework wording (and ValidationException).
            "Value 'BUSY' at 'predicate.conditions.1.member.state' failed to satisfy constraint",
        ),
        ("ON_DEMAND", {"schedule": DAILY}, "only SCHEDULED triggers have a Schedule"),
        (
            "SCHEDULED",
            {"schedule": DAILY, "predicate": glue_pb2.Predicate(conditions=[condition("b")])},
            "only CONDITIONAL triggers have a Predicate",
        ),
        ("EVENT", {"start_on_creation": True}, "StartOnCreation"),
        ("SCHEDULED", {"schedule": "cron(0 0 1 1 ? 1999)"}, "never fires after"),
        ("SCHEDULED", {"schedule": "cron(0 0 30 2 ? *)"}, "never fires after"),
    ],
)
async def test_definition_errors(
    stack: Stack, jobs: list[str], kind: str, fields: dict[str, object], expected: str
) -> None:
    reason = "ValidationException" if "failed to satisfy constraint" in expected else IIE
    message = await expect_error(create(stack, "bad", kind, ["a"], **fields), INVALID, reason)
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
        stack.glue.GetTriggers(glue_pb2.GetTriggersRequest(max_results=201)),
        INVALID,
        "ValidationException",
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
    # The version StartTrigger recorded, not the one CreateTrigger pushed before the outage.
    assert held.triggers[0].version == (await catalog_versions(stack))["later"]


async def test_actions_rules(stack: Stack, jobs: list[str]) -> None:
    for actions, reason, expected in [
        ([glue_pb2.Action(crawler_name="crawl")], IIE, "Actions[0].CrawlerName: crawlers"),
        (
            [action("a"), glue_pb2.Action(timeout=5)],
            IIE,
            "Actions[1].JobName: an action must name",
        ),
        # No actions at all: the model's required member, in AWS's framework wording.
        ([], "ValidationException", "Value null at 'actions' failed to satisfy constraint"),
    ]:
        request = glue_pb2.CreateTriggerRequest(name="t", type="ON_DEMAND", actions=actions)
        message = await expect_error(stack.glue.CreateTrigger(request), INVALID, reason)
        assert expected in message, message
    await expect_error(create(stack, "t", "ON_DEMAND", ["a", "nope"]), NOT_FOUND, ENF)
    assert list((await stack.glue.ListTriggers(glue_pb2.ListTriggersRequest())).trigger_names) == []


async def test_the_trigger_shape_and_every_read(stack: Stack, jobs: list[str]) -> None:
    await stack.glue.CreateTrigger(
        glue_pb2.CreateTriggerRequest(
            name="nightly",
            type="SCHEDULED",
            schedule=DAILY,
            description="every night",
            workflow_name="wf",  # stored and echoed; there are no workflows here
            actions=[action("a", arguments={"--day": "today"}, timeout=30), action("b")],
            tags={"team": "data"},
        )
    )
    both = glue_pb2.Condition(
        logical_operator="EQUALS",
        job_name="a",
        state="FAILED",
        crawler_name="crawl",
        crawl_state="FAILED",
    )
    await create(
        stack, "on-fail", "CONDITIONAL", ["c"], predicate=glue_pb2.Predicate(conditions=[both])
    )
    nightly = await get(stack, "nightly")
    assert (nightly.id, nightly.name, nightly.type, nightly.state) == (
        "nightly",
        "nightly",
        "SCHEDULED",
        "CREATED",
    )
    assert nightly.workflow_name == "wf" and nightly.description == "every night"
    assert nightly.schedule == DAILY
    assert [(a.job_name, dict(a.arguments), a.timeout) for a in nightly.actions] == [
        ("a", {"--day": "today"}, 30),
        ("b", {}, 0),
    ]
    assert not nightly.actions[1].HasField("timeout")
    # A condition naming a job keeps only its job fields (the job takes precedence).
    (kept,) = (await get(stack, "on-fail")).predicate.conditions
    assert kept == condition("a", "FAILED")
    everything = await stack.glue.GetTriggers(glue_pb2.GetTriggersRequest())
    assert [(t.name, t.state) for t in everything.triggers] == [
        ("nightly", "CREATED"),
        ("on-fail", "CREATED"),
    ]
    assert not everything.HasField("next_token")
    dependent = await stack.glue.GetTriggers(glue_pb2.GetTriggersRequest(dependent_job_name="c"))
    assert [t.name for t in dependent.triggers] == ["on-fail"]
    # Watching a job is not starting it: "a" is only in on-fail's predicate.
    starts_a = await stack.glue.ListTriggers(glue_pb2.ListTriggersRequest(dependent_job_name="a"))
    assert list(starts_a.trigger_names) == ["nightly"]
    # AWS's documented behaviour: no trigger starts the job, so every trigger is returned.
    nobody = await stack.glue.ListTriggers(
        glue_pb2.ListTriggersRequest(dependent_job_name="no-such-job")
    )
    assert list(nobody.trigger_names) == ["nightly", "on-fail"]
    batch = await stack.glue.BatchGetTriggers(
        glue_pb2.BatchGetTriggersRequest(trigger_names=["x", "on-fail", "nightly", "on-fail"])
    )
    assert [t.name for t in batch.triggers] == ["on-fail", "nightly"]
    assert list(batch.triggers_not_found) == ["x"]
    await expect_error(get(stack, "x"), NOT_FOUND, ENF)
    await expect_error(
        stack.glue.ListTriggers(glue_pb2.ListTriggersRequest(max_results=0)),
        INVALID,
        "ValidationException",
    )


async def test_on_demand_and_start_stop_idempotence(stack: Stack, jobs: list[str]) -> None:
    await create(stack, "kick", "ON_DEMAND", ["a"])
    message = await expect_error(
        stack.glue.StopTrigger(glue_pb2.StopTriggerRequest(name="kick")), INVALID, IIE
    )
    assert message == "The operation is not allowed when trigger is in state: CREATED"
    for _ in range(2):
        started = await stack.glue.StartTrigger(glue_pb2.StartTriggerRequest(name="kick"))
        assert started.name == "kick" and (await get(stack, "kick")).state == "CREATED"
    when_a = glue_pb2.Predicate(conditions=[condition("a")])
    await create(stack, "when", "CONDITIONAL", ["b"], predicate=when_a)
    for _ in range(2):
        await stack.glue.StartTrigger(glue_pb2.StartTriggerRequest(name="when"))
        assert (await get(stack, "when")).state == "ACTIVATED"
    for _ in range(2):
        await stack.glue.StopTrigger(glue_pb2.StopTriggerRequest(name="when"))
        assert (await get(stack, "when")).state == "DEACTIVATED"
    await stack.glue.StartTrigger(glue_pb2.StartTriggerRequest(name="when"))
    assert (await get(stack, "when")).state == "ACTIVATED"
    for missing in (
        stack.glue.StartTrigger(glue_pb2.StartTriggerRequest(name="nope")),
        stack.glue.StopTrigger(glue_pb2.StopTriggerRequest(name="nope")),
        stack.glue.FireTrigger(glue_pb2.FireTriggerRequest(name="nope")),
        stack.glue.GetTriggerFires(glue_pb2.GetTriggerFiresRequest(name="nope")),
    ):
        await expect_error(missing, NOT_FOUND, ENF)
    for bad in (0, 201):
        message = await expect_error(
            stack.glue.GetTriggerFires(
                glue_pb2.GetTriggerFiresRequest(name="kick", max_results=bad)
            ),
            INVALID,
            IIE,
        )
        assert message.startswith("MaxResults: ")
    fires = await stack.glue.GetTriggerFires(
        glue_pb2.GetTriggerFiresRequest(name="kick", max_results=200)
    )
    assert all(f.trigger_name == "kick" for f in fires.fires)


async def test_update_merges_keeps_type_and_state(stack: Stack, jobs: list[str]) -> None:
    await create(
        stack,
        "when",
        "CONDITIONAL",
        ["b"],
        description="keep me",
        start_on_creation=True,
        predicate=glue_pb2.Predicate(conditions=[condition("a")]),
    )
    before = (await registrations(stack))["when"].version
    new_predicate = glue_pb2.Predicate(
        logical="ANY", conditions=[condition("a", "FAILED"), condition("b", "TIMEOUT")]
    )
    updated = (
        await stack.glue.UpdateTrigger(
            glue_pb2.UpdateTriggerRequest(
                name="when",
                # Repeating the current name is accepted; any other name is a rename (refused).
                trigger_update=glue_pb2.TriggerUpdate(
                    name="when", predicate=new_predicate, actions=[action("c")]
                ),
            )
        )
    ).trigger
    assert updated.type == "CONDITIONAL" and updated.state == "ACTIVATED"
    assert updated.description == "keep me" and updated.id == "when"
    assert updated.predicate == new_predicate and [a.job_name for a in updated.actions] == ["c"]
    assert await get(stack, "when") == updated
    # UpdateTrigger returned only once the scheduler held the new version.
    after = (await registrations(stack))["when"]
    assert after.version > before and after.version == (await catalog_versions(stack))["when"]
    for change, status, reason, expected in [
        (glue_pb2.TriggerUpdate(actions=[action("nope")]), NOT_FOUND, ENF, "nope"),
        (glue_pb2.TriggerUpdate(schedule=DAILY), INVALID, IIE, "Schedule: only SCHEDULED"),
        (glue_pb2.TriggerUpdate(actions=[action("a")]), INVALID, IIE, "Job cannot be a Predicate"),
        (glue_pb2.TriggerUpdate(name="other"), INVALID, IIE, "TriggerUpdate.Name: "),
    ]:
        message = await expect_error(
            stack.glue.UpdateTrigger(
                glue_pb2.UpdateTriggerRequest(name="when", trigger_update=change)
            ),
            status,
            reason,
        )
        assert expected in message, message
    assert await get(stack, "when") == updated
    await create(stack, "sched", "SCHEDULED", ["a"], schedule=DAILY)
    message = await expect_error(
        stack.glue.UpdateTrigger(
            glue_pb2.UpdateTriggerRequest(
                name="sched", trigger_update=glue_pb2.TriggerUpdate(schedule="cron(0 0 30 2 ? *)")
            )
        ),
        INVALID,
        IIE,
    )
    assert "never fires" in message
    created = (
        await stack.glue.UpdateTrigger(
            glue_pb2.UpdateTriggerRequest(
                name="sched", trigger_update=glue_pb2.TriggerUpdate(description="still created")
            )
        )
    ).trigger
    assert created.state == "CREATED" and created.schedule == DAILY


async def test_pagination_is_stable_under_inserts(stack: Stack, jobs: list[str]) -> None:
    originals = [f"t{i:02d}" for i in range(9)]
    for name in originals:
        await create(stack, name, "ON_DEMAND", ["a"])
    seen: list[str] = []
    token: str | None = None
    inserted = False
    while True:
        request = glue_pb2.GetTriggersRequest(max_results=3)
        if token is not None:
            request.next_token = token
        page = await stack.glue.GetTriggers(request)
        seen.extend(t.name for t in page.triggers)
        if not inserted:
            # One before the cursor (never shown), one after it (shown once, in order).
            await create(stack, "t005", "ON_DEMAND", ["a"])
            await create(stack, "t045", "ON_DEMAND", ["a"])
            inserted = True
        if not page.HasField("next_token"):
            break
        token = page.next_token
    assert seen == sorted(seen) and len(seen) == len(set(seen))
    assert [n for n in seen if n in originals] == originals
    assert "t045" in seen and "t005" not in seen
    message = await expect_error(
        stack.glue.ListTriggers(glue_pb2.ListTriggersRequest(next_token="garbage")),
        INVALID,
        IIE,
    )
    assert message.startswith("NextToken: ")


async def test_tags_filter_applies_before_paging(stack: Stack, jobs: list[str]) -> None:
    for i in range(8):
        tags = {"team": "x", "env": "prod"} if i % 2 else {"team": "x"}
        await create(stack, f"t{i}", "ON_DEMAND", ["a"], tags=tags)
    names: list[str] = []
    request = glue_pb2.ListTriggersRequest(max_results=2, tags={"team": "x", "env": "prod"})
    while True:
        page = await stack.glue.ListTriggers(request)
        # Full pages: the filter is applied before paging, not to each page afterwards.
        assert len(page.trigger_names) == 2
        names.extend(page.trigger_names)
        if not page.HasField("next_token"):
            break
        request.next_token = page.next_token
    assert names == ["t1", "t3", "t5", "t7"]
    none = await stack.glue.ListTriggers(glue_pb2.ListTriggersRequest(tags={"team": "y"}))
    assert list(none.trigger_names) == []


@pytest.mark.slow
async def test_changes_during_an_outage_are_finished_by_the_reconciler(
    stack: Stack, jobs: list[str]
) -> None:
    await create(stack, "upd", "SCHEDULED", ["a"], schedule=DAILY, start_on_creation=True)
    await create(stack, "halt", "SCHEDULED", ["a"], schedule=DAILY, start_on_creation=True)
    await create(stack, "gone", "ON_DEMAND", ["a"])
    await stack.stop_scheduler()
    # CreateTrigger commits and succeeds; the registration follows when the scheduler is back.
    await create(stack, "born", "SCHEDULED", ["a"], schedule=DAILY, start_on_creation=True)
    assert (await get(stack, "born")).state == "ACTIVATING"
    update = glue_pb2.UpdateTriggerRequest(
        name="upd", trigger_update=glue_pb2.TriggerUpdate(schedule="cron(30 4 * * ? *)")
    )
    await expect_error(stack.glue.UpdateTrigger(update), UNAVAILABLE, ISE)
    shown = await get(stack, "upd")
    assert shown.state == "UPDATING" and shown.schedule == "cron(30 4 * * ? *)"
    await expect_error(
        stack.glue.StopTrigger(glue_pb2.StopTriggerRequest(name="halt")), UNAVAILABLE, ISE
    )
    assert (await get(stack, "halt")).state == "DEACTIVATING"
    await expect_error(
        stack.glue.DeleteTrigger(glue_pb2.DeleteTriggerRequest(name="gone")), UNAVAILABLE, ISE
    )
    assert (await get(stack, "gone")).state == "DELETING"
    # A trigger whose delete is unfinished takes no other change.
    for refused in (
        stack.glue.StartTrigger(glue_pb2.StartTriggerRequest(name="gone")),
        stack.glue.FireTrigger(glue_pb2.FireTriggerRequest(name="gone")),
        stack.glue.UpdateTrigger(
            glue_pb2.UpdateTriggerRequest(
                name="gone", trigger_update=glue_pb2.TriggerUpdate(description="x")
            )
        ),
    ):
        message = await expect_error(refused, INVALID, IIE)
        assert message == "The operation is not allowed when trigger is in state: DELETING"
    await stack.start_scheduler()

    async def settled() -> bool:
        states = {n: await state_of(stack, n) for n in ("born", "upd", "halt", "gone")}
        return states == {"born": "ACTIVATED", "upd": "ACTIVATED", "halt": "DEACTIVATED",
                          "gone": None}  # fmt: skip

    await eventually(settled)
    held = await registrations(stack)
    versions = await catalog_versions(stack)
    assert {n: (r.version, r.deleted) for n, r in held.items()} == {
        "born": (versions["born"], False),
        "upd": (versions["upd"], False),
        "halt": (versions["halt"], False),
        "gone": (held["gone"].version, True),
    }
    # The delete was the last change: its tombstone carries the newest version.
    assert held["gone"].version > max(versions.values())


async def test_a_reconciler_woken_as_it_is_cancelled_stops(stack: Stack) -> None:
    # A stop cancels the reconciler while a reconnect may be waking it. The cancellation must
    # end it: if it ran on, the catalog's stop would wait for it forever (seen once in CI).
    assert stack.catalog is not None
    app = stack.catalog.reconciler
    reconciler = Reconciler(app._db, app._link, app._jobs, app._triggers, interval=60.0)
    running = asyncio.create_task(reconciler.run())
    # Nothing awaits between a pass's count and the wait for the next: once the count moved,
    # the task is waiting to be woken.
    deadline = asyncio.get_running_loop().time() + 15.0
    while reconciler.passes < 1:
        assert asyncio.get_running_loop().time() < deadline, "its first pass did not end"
        await asyncio.sleep(0.01)
    reconciler.wake()
    running.cancel()
    done, _ = await asyncio.wait({running}, timeout=5.0)
    assert done and running.cancelled()


async def test_reconciler_repairs_what_the_scheduler_holds(stack: Stack, jobs: list[str]) -> None:
    await create(stack, "kept", "SCHEDULED", ["a"], schedule=DAILY, start_on_creation=True)
    await create(stack, "other", "ON_DEMAND", ["a"])  # takes a version after kept's
    assert stack.scheduler is not None
    kept_version = (await registrations(stack))["kept"].version
    async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.scheduler.port}") as channel:
        scheduler = scheduler_pb2_grpc.SchedulerStub(channel)
        # An extra the catalog never had (e.g. left by a catalog restored from a backup).
        ghost = glue_pb2.Trigger(
            name="ghost", type="ON_DEMAND", state="CREATED", actions=[action("a")]
        )
        await scheduler.AddTrigger(
            scheduler_pb2.AddTriggerRequest(
                registration=scheduler_pb2.TriggerRegistration(trigger=ghost, version=1)
            )
        )
        # A tombstone newer than the catalog's row, as the clean-up of an extra leaves when
        # it races a CreateTrigger of the same name: the row must win again.
        await scheduler.Unschedule(
            scheduler_pb2.UnscheduleRequest(
                trigger_name="kept", version=kept_version + 1, delete=True
            )
        )

    async def repaired() -> bool:
        held = await registrations(stack)
        return held["ghost"].deleted and not held["kept"].deleted

    await eventually(repaired)
    held = await registrations(stack)
    assert held["kept"].version > kept_version + 1
    assert held["kept"].version == (await catalog_versions(stack))["kept"]
    assert (await get(stack, "kept")).state == "ACTIVATED"
    await expect_error(get(stack, "ghost"), NOT_FOUND, ENF)
