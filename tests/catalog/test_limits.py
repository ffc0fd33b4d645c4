"""The catalog's caps over the real gRPC API: each refusal, and that it changed nothing.

Quotas per identity need two verified identities: tests/gateway/test_limits.py.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

from catalog_service import identity
from catalog_service.caller_slots import CallerSlots, log_streams
from catalog_service.limits import Limits
from glue.v1 import glue_pb2
from servicekit.errors import ResourceNumberLimitExceededException, ThrottlingException
from tests.conftest import Stack
from tests.helpers.errors import expect_error
from tests.helpers.scripts import SLEEP, SUCCEED, write_script

ROLE = "arn:aws:iam::123456789012:role/test"
INVALID = grpc.StatusCode.INVALID_ARGUMENT
EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED
SMALL = Limits(
    max_string_length=60,
    max_argument_key_bytes=16,
    max_argument_value_bytes=100,
    max_arguments_bytes=300,
    max_actions_per_trigger=2,
    max_batch_names=3,
)
pytestmark = pytest.mark.catalog_settings(limits=SMALL)


def job_request(name: str, script: Path, **fields: object) -> glue_pb2.CreateJobRequest:
    return glue_pb2.CreateJobRequest(
        name=name,
        role=ROLE,
        command=glue_pb2.JobCommand(name="pythonshell", script_location=str(script)),
        **fields,  # type: ignore[arg-type]
    )


async def job_names(stack: Stack) -> list[str]:
    return list((await stack.glue.ListJobs(glue_pb2.ListJobsRequest())).job_names)


async def trigger_names(stack: Stack) -> list[str]:
    return list((await stack.glue.ListTriggers(glue_pb2.ListTriggersRequest())).trigger_names)


async def get_job(stack: Stack, name: str) -> glue_pb2.Job:
    return (await stack.glue.GetJob(glue_pb2.GetJobRequest(job_name=name))).job


async def test_role_over_its_cap_is_refused(stack: Stack, tmp_path: Path) -> None:
    script = write_script(tmp_path, "j.py", SUCCEED)
    request = job_request("j", script)
    request.role = "r" * 61
    message = await expect_error(stack.glue.CreateJob(request), INVALID, "InvalidInputException")
    assert message == "Role: must be at most 60 characters long (got 61; --max-string-length)"
    assert await job_names(stack) == []


@pytest.mark.parametrize(
    ("arguments", "field", "cap"),
    [
        ({"--" + "k" * 15: "v"}, 'DefaultArguments["--kkkkkkkkkkkkkkk"]', "16 bytes"),
        ({"--k": "é" * 51}, 'DefaultArguments["--k"]', "100 bytes"),
        ({f"--k{i}": "v" * 90 for i in range(4)}, "DefaultArguments", "300 bytes"),
    ],
    ids=["key", "value-utf8", "map-total"],
)
async def test_argument_caps_on_create_and_update_job(
    stack: Stack, tmp_path: Path, arguments: dict[str, str], field: str, cap: str
) -> None:
    script = write_script(tmp_path, "j.py", SUCCEED)
    message = await expect_error(
        stack.glue.CreateJob(job_request("j", script, default_arguments=arguments)),
        INVALID,
        "InvalidInputException",
    )
    assert message.startswith(f"{field}: ") and cap in message, message
    assert await job_names(stack) == []

    await stack.glue.CreateJob(job_request("j", script, default_arguments={"--a": "1"}))
    before = await get_job(stack, "j")
    update = glue_pb2.JobUpdate(
        role=ROLE,
        command=glue_pb2.JobCommand(name="pythonshell", script_location=str(script)),
        default_arguments=arguments,
    )
    message = await expect_error(
        stack.glue.UpdateJob(glue_pb2.UpdateJobRequest(job_name="j", job_update=update)),
        INVALID,
        "InvalidInputException",
    )
    assert message.startswith(f"JobUpdate.{field}: ") and cap in message, message
    assert await get_job(stack, "j") == before


async def test_defaults_and_non_overridable_together_over_the_cap(
    stack: Stack, tmp_path: Path
) -> None:
    script = write_script(tmp_path, "j.py", SUCCEED)
    request = job_request(
        "j",
        script,
        default_arguments={"--a": "x" * 100},
        non_overridable_arguments={"--b": "y" * 100, "--c": "z" * 100},
    )
    message = await expect_error(stack.glue.CreateJob(request), INVALID, "InvalidInputException")
    assert "once merged" in message and "--max-arguments-bytes" in message
    assert await job_names(stack) == []


async def test_run_arguments_over_their_caps_start_nothing(stack: Stack, tmp_path: Path) -> None:
    script = write_script(tmp_path, "j.py", SUCCEED)
    await stack.glue.CreateJob(job_request("j", script, default_arguments={"--d": "x" * 100}))
    # Each map is within the cap; merged (the job's 103 + the run's 2 x 103) they are not.
    arguments = {"--a": "a" * 100, "--b": "b" * 100}
    message = await expect_error(
        stack.start_run("j", arguments=arguments), INVALID, "InvalidInputException"
    )
    assert message.startswith("Arguments: a run of job j would get 309 bytes"), message
    message = await expect_error(
        stack.start_run("j", arguments={"--a": "a" * 101}), INVALID, "InvalidInputException"
    )
    assert message.startswith('Arguments["--a"]: must be at most 100 bytes'), message
    runs = await stack.glue.GetJobRuns(glue_pb2.GetJobRunsRequest(job_name="j"))
    assert list(runs.job_runs) == []
    # Overriding a default replaces it: the merged size is what counts, not the sum.
    run_id = await stack.start_run("j", arguments={"--d": "y" * 100, "--a": "a" * 100})
    assert (await stack.wait_run("j", run_id)).job_run_state == "SUCCEEDED"


def trigger_request(name: str, *actions: glue_pb2.Action) -> glue_pb2.CreateTriggerRequest:
    return glue_pb2.CreateTriggerRequest(name=name, type="ON_DEMAND", actions=list(actions))


async def test_trigger_whose_runs_would_exceed_the_cap_is_refused(
    stack: Stack, tmp_path: Path
) -> None:
    script = write_script(tmp_path, "j.py", SUCCEED)
    await stack.glue.CreateJob(
        job_request("j", script, default_arguments={"--d": "x" * 100})  # 103 bytes
    )
    big = glue_pb2.Action(job_name="j", arguments={"--a": "a" * 100, "--b": "b" * 100})
    message = await expect_error(
        stack.glue.CreateTrigger(trigger_request("t", big)), INVALID, "InvalidInputException"
    )
    assert message.startswith("Actions[0].Arguments: a run of job j would get 309 bytes")
    assert await trigger_names(stack) == []

    await stack.glue.CreateTrigger(
        trigger_request("t", glue_pb2.Action(job_name="j", arguments={"--a": "a" * 100}))
    )
    before = (await stack.glue.GetTrigger(glue_pb2.GetTriggerRequest(name="t"))).trigger
    message = await expect_error(
        stack.glue.UpdateTrigger(
            glue_pb2.UpdateTriggerRequest(
                name="t", trigger_update=glue_pb2.TriggerUpdate(actions=[big])
            )
        ),
        INVALID,
        "InvalidInputException",
    )
    assert message.startswith("TriggerUpdate.Actions[0].Arguments: a run of job j"), message
    after = (await stack.glue.GetTrigger(glue_pb2.GetTriggerRequest(name="t"))).trigger
    assert after == before

    # The job side: growing the defaults would make the trigger's runs too big.
    job_before = await get_job(stack, "j")
    update = glue_pb2.JobUpdate(
        role=ROLE,
        command=glue_pb2.JobCommand(name="pythonshell", script_location=str(script)),
        default_arguments={"--d": "x" * 100, "--e": "e" * 100},
    )
    message = await expect_error(
        stack.glue.UpdateJob(glue_pb2.UpdateJobRequest(job_name="j", job_update=update)),
        INVALID,
        "InvalidInputException",
    )
    assert message.startswith(
        "JobUpdate.DefaultArguments: a run of job j started by trigger t (Actions[0]) would get"
    ), message
    assert await get_job(stack, "j") == job_before


async def test_recreated_job_is_checked_against_triggers_that_name_it(
    stack: Stack, tmp_path: Path
) -> None:
    script = write_script(tmp_path, "j.py", SUCCEED)
    await stack.glue.CreateJob(job_request("j", script))
    action = glue_pb2.Action(job_name="j", arguments={"--a": "a" * 100, "--b": "b" * 100})
    await stack.glue.CreateTrigger(trigger_request("t", action))
    await stack.glue.DeleteJob(glue_pb2.DeleteJobRequest(job_name="j"))
    message = await expect_error(
        stack.glue.CreateJob(job_request("j", script, default_arguments={"--d": "x" * 100})),
        INVALID,
        "InvalidInputException",
    )
    assert "started by trigger t" in message
    assert await job_names(stack) == []


async def test_actions_per_trigger_and_schedule_caps(stack: Stack, tmp_path: Path) -> None:
    script = write_script(tmp_path, "j.py", SUCCEED)
    await stack.glue.CreateJob(job_request("j", script))
    actions = [glue_pb2.Action(job_name="j") for _ in range(3)]
    message = await expect_error(
        stack.glue.CreateTrigger(trigger_request("t", *actions)),
        EXHAUSTED,
        "ResourceNumberLimitExceededException",
    )
    assert "at most 2 jobs (got 3 actions; --max-actions-per-trigger)" in message
    scheduled = glue_pb2.CreateTriggerRequest(
        name="s",
        type="SCHEDULED",
        schedule="cron(0 12 * * ? *)" + " " * 60,
        actions=[glue_pb2.Action(job_name="j")],
    )
    message = await expect_error(
        stack.glue.CreateTrigger(scheduled), INVALID, "InvalidInputException"
    )
    assert message.startswith("Schedule: must be at most 60 characters")
    assert await trigger_names(stack) == []


async def test_batch_get_names_are_capped(stack: Stack) -> None:
    names = ["a", "b", "c", "d"]
    message = await expect_error(
        stack.glue.BatchGetJobs(glue_pb2.BatchGetJobsRequest(job_names=names)),
        INVALID,
        "InvalidInputException",
    )
    assert message == "JobNames: must have at most 3 names (got 4; --max-batch-names)"
    await expect_error(
        stack.glue.BatchGetTriggers(glue_pb2.BatchGetTriggersRequest(trigger_names=names)),
        INVALID,
        "InvalidInputException",
    )
    found = await stack.glue.BatchGetJobs(glue_pb2.BatchGetJobsRequest(job_names=names[:3]))
    assert list(found.jobs_not_found) == names[:3]


@pytest.mark.catalog_settings(limits=Limits(max_log_streams_per_caller=1))
async def test_log_streams_per_caller(stack: Stack, tmp_path: Path) -> None:
    await stack.create_job("sleepy", write_script(tmp_path, "s.py", SLEEP))
    run_id = await stack.start_run("sleepy", arguments={"--seconds": "30"})
    await stack.wait_run("sleepy", run_id, {"RUNNING"})
    request = glue_pb2.GetJobRunLogRequest(job_name="sleepy", run_id=run_id, follow=True)

    first = stack.glue.GetJobRunLog(request)
    assert b"sleeping" in (await first.read()).data  # type: ignore[union-attr]
    second = stack.glue.GetJobRunLog(request)
    message = await expect_error(second.read(), EXHAUSTED, "ResourceNumberLimitExceededException")
    assert "--max-log-streams-per-caller 1" in message

    # The client going away frees the slot.
    first.cancel()
    assert stack.catalog is not None
    for _ in range(100):
        third = stack.glue.GetJobRunLog(request)
        try:
            assert b"sleeping" in (await third.read()).data  # type: ignore[union-attr]
            break
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == EXHAUSTED
            await asyncio.sleep(0.05)
    else:
        raise AssertionError("the cancelled stream's slot was never freed")
    third.cancel()
    await stack.glue.BatchStopJobRun(
        glue_pb2.BatchStopJobRunRequest(job_name="sleepy", job_run_ids=[run_id])
    )


@pytest.mark.catalog_settings(limits=Limits(max_calls_in_flight_per_caller=1))
async def test_calls_in_flight_per_caller(stack: Stack, tmp_path: Path) -> None:
    await stack.create_job("j", write_script(tmp_path, "j.py", SUCCEED))
    # With the scheduler gone, StartJobRun retries it for about two seconds: one call in flight.
    await stack.stop_scheduler()
    stuck = asyncio.create_task(stack.start_run("j"))
    await asyncio.sleep(0.3)
    message = await expect_error(
        stack.glue.GetJob(glue_pb2.GetJobRequest(job_name="j")), EXHAUSTED, "ThrottlingException"
    )
    assert "anonymous already has 1 calls in flight" in message
    assert "--max-calls-in-flight-per-caller 1" in message
    await expect_error(stuck, grpc.StatusCode.UNAVAILABLE, "InternalServiceException")
    # Its slot is free again once it has answered.
    assert (await get_job(stack, "j")).name == "j"
    runs = await stack.glue.GetJobRuns(glue_pb2.GetJobRunsRequest(job_name="j"))
    assert list(runs.job_runs) == []


# -- the mechanism itself, without a server -----------------------------------------------------


async def test_caller_slots_count_each_caller_and_the_total() -> None:
    slots = log_streams(Limits(max_log_streams_per_caller=2, max_log_streams=3))

    async def hold(who: str | None, entered: asyncio.Event, release: asyncio.Event) -> None:
        identity.caller.set(None if who is None else identity.Caller(who))
        async with slots.hold():
            entered.set()
            await release.wait()

    release = asyncio.Event()
    tasks = []
    for who in ("alice", "alice", None):
        entered = asyncio.Event()
        tasks.append(asyncio.create_task(hold(who, entered, release)))
        await entered.wait()
    assert (slots.held("alice"), slots.held("anonymous"), slots.held()) == (2, 1, 3)

    token = identity.caller.set(identity.Caller("alice"))
    try:
        with pytest.raises(ResourceNumberLimitExceededException, match="per-caller 2"):
            async with slots.hold():
                pass
        identity.caller.set(identity.Caller("bob"))
        with pytest.raises(ResourceNumberLimitExceededException, match="max-log-streams 3"):
            async with slots.hold():
                pass
    finally:
        identity.caller.reset(token)
    release.set()
    await asyncio.gather(*tasks)
    assert slots.held() == 0


async def test_a_guarded_call_frees_its_slot_when_cancelled() -> None:
    slots = CallerSlots("calls in flight", (1, "flag"), None, ThrottlingException)
    started = asyncio.Event()

    async def slow(_: object) -> None:
        started.set()
        await asyncio.sleep(60)

    task = asyncio.create_task(slots.guard(slow)(None))
    await started.wait()
    assert slots.held("anonymous") == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert slots.held() == 0


def test_limits_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="max_batch_names"):
        Limits(max_batch_names=0)
    with pytest.raises(ValueError, match="4 MiB"):
        Limits(max_arguments_bytes=5 * 1024 * 1024)
    assert Limits(max_jobs_per_identity=0).max_jobs_per_identity == 0  # 0: no quota


@pytest.mark.catalog_settings(limits=Limits(max_page_bytes=1500))
async def test_pages_end_early_past_their_byte_budget(stack: Stack, tmp_path: Path) -> None:
    script = write_script(tmp_path, "j.py", SUCCEED)
    for i in range(3):
        # Each job is about 1 KB serialized: one per page, and paging still ends.
        await stack.glue.CreateJob(
            job_request(f"j{i}", script, default_arguments={"--pad": "p" * 900})
        )
    seen: list[str] = []
    token = ""
    while True:
        page = await stack.glue.GetJobs(glue_pb2.GetJobsRequest(max_results=3, next_token=token))
        assert len(page.jobs) == 1
        seen += [j.name for j in page.jobs]
        token = page.next_token
        if not token:
            break
    assert seen == ["j0", "j1", "j2"]
