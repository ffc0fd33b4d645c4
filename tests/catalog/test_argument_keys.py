"""Argument keys a job script would misread as its own name or run id, over gRPC.

getResolvedOptions is argparse, which takes any unambiguous prefix of an option: a run given
``--JOB_N evil`` read JOB_NAME ``evil`` (the first test shows it on a real process). Every
operation that stores or passes arguments refuses such keys with InvalidInputException naming
the field and the key, and changes nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from glue.v1 import glue_pb2
from scheduler_service.commands import RUNTIME_DIR, glue_arguments
from scheduler_service.runner import LaunchError
from tests.conftest import Stack
from tests.helpers.errors import expect_error
from tests.helpers.scripts import ECHO_ARGS, SUCCEED, write_script

INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
IIE = "InvalidInputException"
ROLE = "arn:aws:iam::123456789012:role/test"

# Reads its resolved options the way a Glue script does and prints them as JSON.
RESOLVE = """
import json, sys
from awsglue.utils import getResolvedOptions
args = getResolvedOptions(sys.argv, ["JOB_NAME"])
print(json.dumps({k: args.get(k) for k in ("JOB_NAME", "JOB_RUN_ID", "JOB_ID")}))
"""


def resolved(script: Path, arguments: dict[str, str]) -> dict[str, str | None]:
    """What a script would see of a run of job ``real`` (run ``jr_1``) given ``arguments``:
    the command line's shape (the run's own options first, then each argument, ``--`` added),
    without the launcher's check, parsed by the awsglue runtime in a real process."""
    argv = ["--JOB_NAME", "real", "--JOB_RUN_ID", "jr_1"]
    for key, value in arguments.items():
        argv += [key if key.startswith("--") else f"--{key}", value]
    env = {**os.environ, "PYTHONPATH": str(RUNTIME_DIR)}
    done = subprocess.run(
        [sys.executable, str(script), *argv], capture_output=True, text=True, env=env, check=True
    )
    result: dict[str, str | None] = json.loads(done.stdout)
    return result


def test_a_prefix_key_replaces_the_job_name_a_script_reads(tmp_path: Path) -> None:
    # Why the catalog refuses these keys: the launcher passes them after --JOB_NAME and
    # --JOB_RUN_ID, and argparse resolves the prefix to the reserved option, last one winning.
    script = write_script(tmp_path, "resolve.py", RESOLVE)
    assert resolved(script, {})["JOB_NAME"] == "real"
    assert resolved(script, {"--JOB_N": "evil"})["JOB_NAME"] == "evil"
    assert resolved(script, {"JOB_N": "evil"})["JOB_NAME"] == "evil"  # passed as --JOB_N
    assert resolved(script, {"--JOB_R": "jr_evil"})["JOB_RUN_ID"] == "jr_evil"
    assert resolved(script, {"--JOB_I": "evil"})["JOB_ID"] == "evil"
    assert resolved(script, {"--JOB_N=evil": "x"})["JOB_NAME"] == "evil"
    # A value in --option=value form is read as the option when the script ignores its key.
    assert resolved(script, {"--unread": "--JOB_NAME=evil"})["JOB_NAME"] == "evil"
    # Glue's other reserved keys are settings, not identities: they stay allowed.
    assert resolved(script, {"--job-bookmark-option": "job-bookmark-enable"})["JOB_NAME"] == (
        "real"
    )
    # The scheduler's launcher refuses them too (a job stored before the rule may hold one).
    for arguments in ({"--JOB_N": "evil"}, {"--unread": "--JOB_NAME=evil"}):
        with pytest.raises(LaunchError, match=r"reserved|must not"):
            glue_arguments("real", "jr_1", arguments)


async def get_job(stack: Stack, name: str) -> glue_pb2.Job:
    return (await stack.glue.GetJob(glue_pb2.GetJobRequest(job_name=name))).job


async def test_create_job_refuses_reserved_keys(stack: Stack, tmp_path: Path) -> None:
    script = write_script(tmp_path, "ok.py", SUCCEED)
    refused = [
        ("default_arguments", "--JOB_N", 'DefaultArguments["--JOB_N"]', "--JOB_NAME"),
        ("default_arguments", "--JOB", 'DefaultArguments["--JOB"]', "prefix of --JOB_NAME"),
        ("default_arguments", "JOB_R", 'DefaultArguments["JOB_R"]', "passed as --JOB_R"),
        ("non_overridable_arguments", "--JOB_ID", 'NonOverridableArguments["--JOB_ID"]', "id"),
        ("non_overridable_arguments", "--JOB_NAME", 'NonOverridableArguments["--JOB_NAME"]', ""),
        ("non_overridable_arguments", "--a=b", 'NonOverridableArguments["--a=b"]', '"="'),
    ]
    for member, key, field, why in refused:
        message = await expect_error(
            stack.glue.CreateJob(
                glue_pb2.CreateJobRequest(
                    name="j",
                    role=ROLE,
                    command=glue_pb2.JobCommand(name="pythonshell", script_location=str(script)),
                    **{member: {key: "evil"}},  # type: ignore[arg-type]
                )
            ),
            INVALID,
            IIE,
        )
        assert message.startswith(field + ": "), message
        assert why in message and "argparse" in message, message
        await expect_error(get_job(stack, "j"), NOT_FOUND, "EntityNotFoundException")


async def test_update_job_refuses_reserved_keys(stack: Stack, tmp_path: Path) -> None:
    script = write_script(tmp_path, "ok.py", SUCCEED)
    await stack.create_job("j", script, default_arguments={"--day": "mon"})
    before = await get_job(stack, "j")
    for member, key, field in [
        ("default_arguments", "--JOB_RUN", 'JobUpdate.DefaultArguments["--JOB_RUN"]'),
        ("non_overridable_arguments", "J", 'JobUpdate.NonOverridableArguments["J"]'),
        ("default_arguments", "--x=y", 'JobUpdate.DefaultArguments["--x=y"]'),
    ]:
        update = glue_pb2.JobUpdate(
            role=ROLE,
            command=glue_pb2.JobCommand(name="pythonshell", script_location=str(script)),
            **{member: {key: "evil"}},  # type: ignore[arg-type]
        )
        message = await expect_error(
            stack.glue.UpdateJob(glue_pb2.UpdateJobRequest(job_name="j", job_update=update)),
            INVALID,
            IIE,
        )
        assert message.startswith(field + ": "), message
        assert await get_job(stack, "j") == before


async def test_start_job_run_refuses_reserved_keys(stack: Stack, tmp_path: Path) -> None:
    await stack.create_job("j", write_script(tmp_path, "ok.py", SUCCEED))
    for arguments, field in [
        ({"--JOB_N": "evil"}, 'Arguments["--JOB_N"]'),
        ({"--JOB_RUN_ID": "jr_evil"}, 'Arguments["--JOB_RUN_ID"]'),
        ({"--k=v": "x"}, 'Arguments["--k=v"]'),
        ({"--unread": "--JOB_NAME=evil"}, 'Arguments["--unread"]'),
    ]:
        message = await expect_error(stack.start_run("j", arguments=arguments), INVALID, IIE)
        assert message.startswith(field + ": "), message
    runs = await stack.glue.GetJobRuns(glue_pb2.GetJobRunsRequest(job_name="j"))
    assert list(runs.job_runs) == []


async def test_trigger_actions_refuse_reserved_keys(stack: Stack, tmp_path: Path) -> None:
    await stack.create_job("j", write_script(tmp_path, "ok.py", SUCCEED))
    message = await expect_error(
        stack.glue.CreateTrigger(
            glue_pb2.CreateTriggerRequest(
                name="t",
                type="ON_DEMAND",
                actions=[glue_pb2.Action(job_name="j", arguments={"--JOB_NA": "evil"})],
            )
        ),
        INVALID,
        IIE,
    )
    assert message.startswith('Actions[0].Arguments["--JOB_NA"]: '), message
    await expect_error(
        stack.glue.GetTrigger(glue_pb2.GetTriggerRequest(name="t")),
        NOT_FOUND,
        "EntityNotFoundException",
    )

    await stack.glue.CreateTrigger(
        glue_pb2.CreateTriggerRequest(
            name="t", type="ON_DEMAND", actions=[glue_pb2.Action(job_name="j")]
        )
    )
    before = (await stack.glue.GetTrigger(glue_pb2.GetTriggerRequest(name="t"))).trigger
    message = await expect_error(
        stack.glue.UpdateTrigger(
            glue_pb2.UpdateTriggerRequest(
                name="t",
                trigger_update=glue_pb2.TriggerUpdate(
                    actions=[
                        glue_pb2.Action(job_name="j"),
                        glue_pb2.Action(job_name="j", arguments={"--JOB_I=x": "evil"}),
                    ]
                ),
            )
        ),
        INVALID,
        IIE,
    )
    assert message.startswith('TriggerUpdate.Actions[1].Arguments["--JOB_I=x"]: '), message
    after = (await stack.glue.GetTrigger(glue_pb2.GetTriggerRequest(name="t"))).trigger
    assert after == before


async def test_other_keys_pass_and_the_run_keeps_its_name(stack: Stack, tmp_path: Path) -> None:
    script = write_script(tmp_path, "echo.py", ECHO_ARGS)
    allowed = {
        "--job-bookmark-option": "job-bookmark-disable",
        "--JOB_NAMES": "not a prefix",
        "--TempDir": "/tmp/x",
        "--note": "JOB_NAME=ok as a value",
    }
    await stack.create_job("echo", script, default_arguments=allowed)
    run_id = await stack.start_run("echo", arguments={"--day": "tue"})
    run = await stack.wait_run("echo", run_id)
    assert run.job_run_state == "SUCCEEDED", run.error_message
    recorded = json.loads(Path(f"{script}.out").read_text().splitlines()[0])
    assert recorded["run_id"] == run_id
    assert recorded["argv"][:4] == ["--JOB_NAME", "echo", "--JOB_RUN_ID", run_id]
    # LogGroupName is Glue's group prefix for a Python shell job; the log is in the run's
    # directory.
    assert run.log_group_name == "/aws-glue/python-jobs"
    log_text = (stack.data_dir / "runs" / run_id / "output.log").read_text()
    assert "hello from echo" in log_text
