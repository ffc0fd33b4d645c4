"""The real aws CLI (PyPI's awscli, as a subprocess) against the gateway, and a cross-check:
the same definitions through gRPC and through boto3 are stored alike."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from glue.v1 import glue_pb2
from glue_vocabulary.shapes import to_glue
from tests.conftest import Stack
from tests.gateway.conftest import ACCOUNT, REGION, ROLE, Aws
from tests.helpers.scripts import SUCCEED, write_script

pytestmark = pytest.mark.catalog_settings(http_listen="127.0.0.1:0")

AWS_CLI = Path(sys.executable).parent / "aws"


async def aws_cli(stack: Stack, home: Path, *args: str) -> tuple[int, Any, str]:
    """Run ``aws glue <args>``: (exit code, parsed JSON stdout or None, stderr)."""
    assert stack.catalog is not None
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),  # no ~/.aws of the machine's
        "AWS_ACCESS_KEY_ID": "AKIDCLI",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_MAX_ATTEMPTS": "1",
    }
    process = await asyncio.create_subprocess_exec(
        str(AWS_CLI),
        "glue",
        "--endpoint-url",
        f"http://127.0.0.1:{stack.catalog.http_port}",
        "--output",
        "json",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, json.loads(out) if out.strip() else None, err.decode()


@pytest.mark.slow
async def test_aws_cli(stack: Stack, tmp_path: Path) -> None:
    script = write_script(tmp_path, "ok.py", SUCCEED)
    home = tmp_path / "home"
    home.mkdir()
    code, out, err = await aws_cli(
        stack,
        home,
        "create-job",
        "--name",
        "etl",
        "--role",
        ROLE,
        "--command",
        f"Name=pythonshell,ScriptLocation={script}",
        "--tags",
        "team=data",
    )
    assert (code, out, err) == (0, {"Name": "etl"}, "")
    code, out, _ = await aws_cli(stack, home, "get-job", "--job-name", "etl")
    assert code == 0
    assert out["Job"]["Command"]["ScriptLocation"] == str(script)
    # CLI v1 prints timestamps as they came: epoch seconds.
    assert abs(out["Job"]["CreatedOn"] - time.time()) < 60
    code, out, _ = await aws_cli(stack, home, "list-jobs")
    assert (code, out) == (0, {"JobNames": ["etl"]})
    code, out, _ = await aws_cli(
        stack,
        home,
        "create-trigger",
        "--name",
        "go",
        "--type",
        "ON_DEMAND",
        "--actions",
        "JobName=etl",
    )
    assert (code, out) == (0, {"Name": "go"})
    code, out, _ = await aws_cli(stack, home, "start-trigger", "--name", "go")
    assert (code, out) == (0, {"Name": "go"})
    code, out, _ = await aws_cli(stack, home, "start-job-run", "--job-name", "etl")
    assert code == 0
    assert out["JobRunId"].startswith("jr_")
    arn = f"arn:aws:glue:{REGION}:{ACCOUNT}:job/etl"
    code, _, _ = await aws_cli(
        stack, home, "tag-resource", "--resource-arn", arn, "--tags-to-add", "env=dev"
    )
    assert code == 0
    code, out, _ = await aws_cli(stack, home, "get-tags", "--resource-arn", arn)
    assert (code, out) == (0, {"Tags": {"team": "data", "env": "dev"}})
    # The CLI paginates get-job-runs itself until NextToken is absent.
    code, out, _ = await aws_cli(stack, home, "get-job-runs", "--job-name", "etl")
    assert code == 0
    assert len(out["JobRuns"]) >= 1
    code, out, err = await aws_cli(stack, home, "get-job", "--job-name", "nope")
    assert code == 255  # aws CLI v1: a service error
    assert "EntityNotFoundException" in err
    assert "Job nope not found." in err
    code, out, err = await aws_cli(
        stack,
        home,
        "create-job",
        "--name",
        "bad",
        "--role",
        ROLE,
        "--command",
        f"Name=pythonshell,ScriptLocation={script}",
        "--worker-type",
        "G.9000X",
    )
    assert code == 255  # aws CLI v1: a service error
    assert "ValidationException" in err
    assert "at 'workerType'" in err


def _comparable(message: Any) -> dict[str, Any]:
    """A Glue-form definition without what differs by nature (name, times)."""
    glue = to_glue(message)
    for key in ("Name", "CreatedOn", "LastModifiedOn", "Id"):
        glue.pop(key, None)
    return glue


async def test_grpc_and_boto3_store_the_same(aws: Aws, tmp_path: Path) -> None:
    script = str(write_script(tmp_path, "ok.py", SUCCEED))
    definition: dict[str, Any] = {
        "Role": ROLE,
        "Command": {"Name": "pythonshell", "ScriptLocation": script, "PythonVersion": "3.9"},
        "DefaultArguments": {"--day": "1", "--mode": "full"},
        "ExecutionProperty": {"MaxConcurrentRuns": 3},
        "MaxRetries": 1,
        "Timeout": 30,
        "Description": "the same job twice",
        "NotificationProperty": {"NotifyDelayAfter": 5},
        "MaxCapacity": 0.0625,
    }
    stack = aws.stack
    await stack.glue.CreateJob(
        glue_pb2.CreateJobRequest(
            name="via-grpc",
            role=ROLE,
            command=glue_pb2.JobCommand(
                name="pythonshell", script_location=script, python_version="3.9"
            ),
            default_arguments={"--day": "1", "--mode": "full"},
            execution_property=glue_pb2.ExecutionProperty(max_concurrent_runs=3),
            max_retries=1,
            timeout=30,
            description="the same job twice",
            notification_property=glue_pb2.NotificationProperty(notify_delay_after=5),
            max_capacity=0.0625,
        )
    )
    await aws("create_job", Name="via-boto3", **definition)
    grpc_job = (await stack.glue.GetJob(glue_pb2.GetJobRequest(job_name="via-grpc"))).job
    boto_job = (await stack.glue.GetJob(glue_pb2.GetJobRequest(job_name="via-boto3"))).job
    assert _comparable(grpc_job) == _comparable(boto_job)
    # And read back through boto3, both carry the definition that was sent.
    for name in ("via-grpc", "via-boto3"):
        job = (await aws("get_job", JobName=name))["Job"]
        assert {k: job[k] for k in definition} == definition

    trigger: dict[str, Any] = {
        "Type": "SCHEDULED",
        "Schedule": "cron(15 2 ? * MON-FRI *)",
        "Actions": [{"JobName": "via-grpc", "Arguments": {"--x": "1"}, "Timeout": 7}],
        "Description": "weekdays",
    }
    await stack.glue.CreateTrigger(
        glue_pb2.CreateTriggerRequest(
            name="t-grpc",
            type="SCHEDULED",
            schedule="cron(15 2 ? * MON-FRI *)",
            actions=[glue_pb2.Action(job_name="via-grpc", arguments={"--x": "1"}, timeout=7)],
            description="weekdays",
        )
    )
    await aws("create_trigger", Name="t-boto3", **trigger)
    grpc_trigger = (await stack.glue.GetTrigger(glue_pb2.GetTriggerRequest(name="t-grpc"))).trigger
    boto_trigger = (await stack.glue.GetTrigger(glue_pb2.GetTriggerRequest(name="t-boto3"))).trigger
    assert _comparable(grpc_trigger) == _comparable(boto_trigger)
    got = (await aws("get_trigger", Name="t-boto3"))["Trigger"]
    assert {k: got[k] for k in trigger} == trigger
