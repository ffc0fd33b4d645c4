"""CloudWatch Logs' read operations on the gateway, through boto3's logs client and the aws CLI:
a run's stdout in <prefix>/output, its stderr in <prefix>/error, one stream per run."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from glue.v1 import glue_pb2
from tests.conftest import Stack
from tests.gateway.conftest import REGION, aws_client
from tests.gateway.test_aws_cli import AWS_CLI
from tests.helpers.access_keys import ADMIN
from tests.helpers.scripts import write_script

pytestmark = pytest.mark.catalog_settings(http_listen="127.0.0.1:0")

# Five stdout lines and two stderr lines, each stream flushed line by line.
TALKS = """
import sys
for i in range(5):
    print(f"line {i}", flush=True)
    if i in (1, 3):
        print(f"warning {i}", file=sys.stderr, flush=True)
"""
STDOUT_LINES = [f"line {i}" for i in range(5)]
STDERR_LINES = ["warning 1", "warning 3"]
OUTPUT = "/aws-glue/python-jobs/output"
ERROR = "/aws-glue/python-jobs/error"


def logs_client(port: int, key_id: str = "AKIDTEST", secret: str = "secret") -> Any:
    """A boto3 CloudWatch Logs client for the gateway on ``port``."""
    return aws_client("logs", port, key_id, secret)


class Logs:
    """A logs client whose calls run off the event loop (the services run on it)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    async def __call__(self, operation: str, **params: Any) -> Any:
        return await asyncio.to_thread(getattr(self.client, operation), **params)

    async def error(self, operation: str, **params: Any) -> tuple[str, str]:
        try:
            await self(operation, **params)
        except self.client.exceptions.ClientError as exc:
            return exc.response["Error"]["Code"], exc.response["Error"]["Message"]
        raise AssertionError(f"{operation} succeeded; an error was expected")

    async def pages(self, operation: str, **params: Any) -> list[dict[str, Any]]:
        paginator = self.client.get_paginator(operation)
        return await asyncio.to_thread(lambda: list(paginator.paginate(**params)))


async def finished_run(stack: Stack, tmp_path: Path) -> str:
    await stack.create_job("talks", write_script(tmp_path, "talks.py", TALKS))
    run_id = await stack.start_run("talks")
    run = await stack.wait_run("talks", run_id)
    assert run.job_run_state == "SUCCEEDED", run.error_message
    # What AWS returns for a Python shell job: the group prefix, not a file.
    assert run.log_group_name == "/aws-glue/python-jobs"
    return run_id


async def finished_run_and_client(stack: Stack, tmp_path: Path) -> tuple[str, Logs]:
    """A finished run of TALKS, and a logs client for the gateway."""
    assert stack.catalog is not None
    run_id = await finished_run(stack, tmp_path)
    return run_id, Logs(await asyncio.to_thread(logs_client, stack.catalog.http_port))


def messages(response: dict[str, Any]) -> list[str]:
    return [event["message"] for event in response["events"]]


async def test_get_log_events_reads_stdout_and_stderr_apart_with_tokens(
    stack: Stack, tmp_path: Path
) -> None:
    run_id, logs = await finished_run_and_client(stack, tmp_path)
    stream = {"logGroupName": OUTPUT, "logStreamName": run_id}

    whole = await logs("get_log_events", **stream, startFromHead=True)
    assert messages(whole) == STDOUT_LINES
    assert all(isinstance(e["timestamp"], int) and e["timestamp"] > 0 for e in whole["events"])
    errors = await logs("get_log_events", logGroupName=ERROR, logStreamName=run_id)
    assert messages(errors) == STDERR_LINES

    # Forward in pages of two; at the end the token asked with comes back.
    pages, token = [], None
    while True:
        extra = {"nextToken": token} if token else {"startFromHead": True}
        page = await logs("get_log_events", **stream, limit=2, **extra)
        if page["nextForwardToken"] == token:
            assert page["events"] == []
            break
        pages.append(messages(page))
        token = page["nextForwardToken"]
        assert token.startswith("f/")
    assert pages == [["line 0", "line 1"], ["line 2", "line 3"], ["line 4"], []][: len(pages)]
    assert [line for page in pages for line in page] == STDOUT_LINES

    # Without a token and startFromHead (boto3's default), the newest events; then backward.
    newest = await logs("get_log_events", **stream, limit=2)
    assert messages(newest) == ["line 3", "line 4"]
    back = await logs("get_log_events", **stream, limit=2, nextToken=newest["nextBackwardToken"])
    assert messages(back) == ["line 1", "line 2"]
    back = await logs("get_log_events", **stream, limit=2, nextToken=back["nextBackwardToken"])
    assert messages(back) == ["line 0"]
    start = await logs("get_log_events", **stream, nextToken=back["nextBackwardToken"])
    assert start["events"] == [] and start["nextBackwardToken"] == back["nextBackwardToken"]

    # startTime/endTime: endTime is exclusive on GetLogEvents.
    first = whole["events"][0]["timestamp"]
    assert messages(await logs("get_log_events", **stream, endTime=first)) == []
    later = await logs("get_log_events", **stream, startTime=whole["events"][-1]["timestamp"])
    assert "line 4" in messages(later)

    # The same run through glue.v1's GetJobRunLog, one stream picked.
    chunks = [
        chunk.data
        async for chunk in stack.glue.GetJobRunLog(
            glue_pb2.GetJobRunLogRequest(job_name="talks", run_id=run_id, stream="stderr")
        )
    ]
    assert b"".join(chunks).decode().splitlines() == STDERR_LINES
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        async for _ in stack.glue.GetJobRunLog(
            glue_pb2.GetJobRunLogRequest(job_name="talks", run_id=run_id, stream="both")
        ):
            pass
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "Stream" in (refused.value.details() or "")

    # Input is checked against botocore's logs model (boto3 checks it too, so sent raw).
    status, body = await signed_post(
        stack.catalog.http_port,
        "Logs_20140328.GetLogEvents",
        "logs",
        {"logGroupName": OUTPUT, "logStreamName": run_id, "limit": 0},
    )
    assert (status, body["__type"]) == (400, "InvalidParameterException")
    assert "limit" in body["message"]

    # Errors as CloudWatch words them.
    assert await logs.error("get_log_events", logGroupName="/nope", logStreamName=run_id) == (
        "ResourceNotFoundException",
        "The specified log group does not exist.",
    )
    missing = ("ResourceNotFoundException", "The specified log stream does not exist.")
    assert await logs.error("get_log_events", logGroupName=OUTPUT, logStreamName="jr_x") == missing
    # A Python shell run has no stream in the Spark jobs' groups.
    assert (
        await logs.error(
            "get_log_events", logGroupName="/aws-glue/jobs/output", logStreamName=run_id
        )
        == missing
    )
    code, message = await logs.error("get_log_events", **stream, nextToken="x/1")
    assert (code, message) == ("InvalidParameterException", "The specified nextToken is invalid.")
    code, message = await logs.error(
        "put_log_events",
        logGroupName=OUTPUT,
        logStreamName=run_id,
        logEvents=[{"timestamp": 1, "message": "x"}],
    )
    assert code == "UnknownOperationException" and "GetLogEvents" in message


async def test_filter_and_describe_as_airflow_and_the_console_use_them(
    stack: Stack, tmp_path: Path
) -> None:
    run_id, logs = await finished_run_and_client(stack, tmp_path)

    # Airflow's GlueJobHook: the paginator over one stream, from a token.
    pages = await logs(
        "filter_log_events", logGroupName=OUTPUT, logStreamNames=[run_id], startTime=0
    )
    assert messages(pages) == STDOUT_LINES and "nextToken" not in pages
    assert {e["logStreamName"] for e in pages["events"]} == {run_id}
    assert len({e["eventId"] for e in pages["events"]}) == 5
    paged = await logs.pages(
        "filter_log_events", logGroupName=ERROR, logStreamNames=[run_id], limit=1
    )
    assert [m for page in paged for m in messages(page)] == STDERR_LINES
    after = pages["events"][-1]["timestamp"] + 1
    assert messages(await logs("filter_log_events", logGroupName=OUTPUT, startTime=after)) == []
    assert messages(
        await logs("filter_log_events", logGroupName=OUTPUT, filterPattern='"line 3"')
    ) == ["line 3"]

    streams = await logs("describe_log_streams", logGroupName=OUTPUT)
    assert [s["logStreamName"] for s in streams["logStreams"]] == [run_id]
    entry = streams["logStreams"][0]
    assert entry["arn"].endswith(f":log-group:{OUTPUT}:log-stream:{run_id}")
    assert entry["firstEventTimestamp"] <= entry["lastEventTimestamp"]
    newest = await logs(
        "describe_log_streams", logGroupName=OUTPUT, orderBy="LastEventTime", descending=True
    )
    assert [s["logStreamName"] for s in newest["logStreams"]] == [run_id]
    spark = await logs("describe_log_streams", logGroupName="/aws-glue/jobs/output")
    assert spark["logStreams"] == []

    groups = await logs.pages("describe_log_groups", limit=1)
    assert [g["logGroupName"] for page in groups for g in page["logGroups"]] == [
        "/aws-glue/jobs/error",
        "/aws-glue/jobs/output",
        "/aws-glue/python-jobs/error",
        "/aws-glue/python-jobs/output",
    ]
    python = await logs("describe_log_groups", logGroupNamePrefix="/aws-glue/python-jobs/")
    assert [g["logGroupName"] for g in python["logGroups"]] == [ERROR, OUTPUT]


async def test_streams_and_events_of_several_runs_page_through(
    stack: Stack, tmp_path: Path
) -> None:
    assert stack.catalog is not None
    await stack.create_job(
        "talks",
        write_script(tmp_path, "talks.py", TALKS),
        execution_property=glue_pb2.ExecutionProperty(max_concurrent_runs=3),
    )
    run_ids = [await stack.start_run("talks") for _ in range(3)]
    for run_id in run_ids:
        assert (await stack.wait_run("talks", run_id)).job_run_state == "SUCCEEDED"
    logs = Logs(await asyncio.to_thread(logs_client, stack.catalog.http_port))

    by_name = await logs.pages("describe_log_streams", logGroupName=OUTPUT, limit=2)
    assert [len(page["logStreams"]) for page in by_name] == [2, 1]
    assert [s["logStreamName"] for p in by_name for s in p["logStreams"]] == sorted(run_ids)
    by_time = await logs.pages(
        "describe_log_streams",
        logGroupName=OUTPUT,
        orderBy="LastEventTime",
        descending=True,
        limit=1,
    )
    assert [s["logStreamName"] for p in by_time for s in p["logStreams"]] == run_ids[::-1]
    code, _ = await logs.error(
        "describe_log_streams",
        logGroupName=OUTPUT,
        orderBy="LastEventTime",
        logStreamNamePrefix="jr_",
    )
    assert code == "InvalidParameterException"

    # The whole group, three events a page: every run's lines, run after run, once each.
    pages = await logs.pages("filter_log_events", logGroupName=ERROR, limit=3)
    seen = [(e["logStreamName"], e["message"]) for page in pages for e in page["events"]]
    assert seen == [(run_id, line) for run_id in sorted(run_ids) for line in STDERR_LINES]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # the database is not the point
async def test_aws_cli_get_log_events(stack: Stack, tmp_path: Path) -> None:
    assert stack.catalog is not None
    run_id = await finished_run(stack, tmp_path)
    process = await asyncio.create_subprocess_exec(
        str(AWS_CLI),
        "logs",
        "get-log-events",
        "--endpoint-url",
        f"http://127.0.0.1:{stack.catalog.http_port}",
        "--output",
        "json",
        "--log-group-name",
        ERROR,
        "--log-stream-name",
        run_id,
        "--start-from-head",
        env={
            "PATH": os.environ["PATH"],
            "HOME": str(tmp_path),
            "AWS_ACCESS_KEY_ID": "AKIDCLI",
            "AWS_SECRET_ACCESS_KEY": "secret",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_MAX_ATTEMPTS": "1",
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    assert messages(json.loads(out)) == STDERR_LINES


LOG_READER_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": "logs:*",
            "Resource": f"arn:aws:logs:*:*:log-group:{OUTPUT}:*",
        },
        {"Effect": "Deny", "Action": "logs:GetLogEvents", "Resource": "*"},
    ],
}


async def signed_post(
    port: int, target: str, service: str, body: dict[str, Any]
) -> tuple[int, Any]:
    """POST a JSON body signed by the admin key with ``service`` in its credential scope."""
    url = f"http://127.0.0.1:{port}/"
    data = json.dumps(body).encode()
    request = AWSRequest(
        "POST",
        url,
        data=data,
        headers={"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1"},
    )
    SigV4Auth(Credentials("AKIDADMIN", "admin-secret"), service, REGION).add_auth(request)
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=data, headers=dict(request.headers)) as response,
    ):
        return response.status, await response.json(content_type=None)


async def test_signatures_are_scoped_to_logs_and_policies_name_log_groups(
    stack: Stack, tmp_path: Path
) -> None:
    run_id = await finished_run(stack, tmp_path)
    keys = tmp_path / "keys.json"
    keys.write_text(
        json.dumps(
            {
                "keys": [
                    {"access_key_id": "AKIDADMIN", "secret_access_key": "admin-secret",
                     "identity": "admin"},
                    {"access_key_id": "AKIDREADER", "secret_access_key": "reader-secret",
                     "identity": "arn:aws:iam::123456789012:user/reader",
                     "policy": LOG_READER_POLICY},
                ]
            }
        )
    )  # fmt: skip
    keys.chmod(0o600)
    await stack.stop_catalog()
    stack.catalog_settings = dataclasses.replace(stack.catalog_settings, access_keys=keys)
    stack.credentials = ADMIN
    await stack.start_catalog()
    assert stack.catalog is not None
    port = stack.catalog.http_port

    admin = Logs(await asyncio.to_thread(logs_client, port, "AKIDADMIN", "admin-secret"))
    stream = {"logGroupName": OUTPUT, "logStreamName": run_id, "startFromHead": True}
    assert messages(await admin("get_log_events", **stream)) == STDOUT_LINES
    wrong = await asyncio.to_thread(logs_client, port, "AKIDADMIN", "not-the-secret")
    code, _ = await Logs(wrong).error("describe_log_groups")
    assert code == "InvalidSignatureException"

    # A signature scoped to glue is not one for logs, nor the other way round.
    status, body = await signed_post(port, "Logs_20140328.DescribeLogGroups", "glue", {})
    assert status == 400 and body["__type"] == "InvalidSignatureException"
    assert "scoped to correct service: 'logs'" in body["message"]
    status, body = await signed_post(port, "AWSGlue.GetJobs", "logs", {})
    assert status == 400 and "scoped to correct service: 'glue'" in body["message"]
    status, body = await signed_post(port, "Logs_20140328.DescribeLogGroups", "logs", {})
    assert status == 200 and len(body["logGroups"]) == 4

    reader = Logs(await asyncio.to_thread(logs_client, port, "AKIDREADER", "reader-secret"))
    code, message = await reader.error("get_log_events", **stream)
    assert code == "AccessDeniedException"
    assert "logs:GetLogEvents on resource: arn:aws:logs:" in message
    assert f":log-group:{OUTPUT}:log-stream:{run_id}" in message
    filtered = await reader("filter_log_events", logGroupName=OUTPUT, logStreamNames=[run_id])
    assert messages(filtered) == STDOUT_LINES
    code, _ = await reader.error("filter_log_events", logGroupName=ERROR)
    assert code == "AccessDeniedException"
    groups = await reader("describe_log_groups")
    assert [g["logGroupName"] for g in groups["logGroups"]] == [OUTPUT]


# Airflow's Amazon provider lives in a virtualenv of its own (`make airflow-venv`): it needs a
# newer botocore than the one this project pins.
AIRFLOW_PYTHON = Path(__file__).resolve().parents[2] / ".venv-airflow" / "bin" / "python"
AIRFLOW_SCRIPT = Path(__file__).resolve().parents[1] / "helpers" / "airflow_glue_verbose.py"


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # the database is not the point
async def test_airflow_glue_job_hook_verbose_shows_the_jobs_output(
    stack: Stack, tmp_path: Path
) -> None:
    assert stack.catalog is not None
    assert AIRFLOW_PYTHON.exists(), "run `make airflow-venv` (make test does) first"
    run_id = await finished_run(stack, tmp_path)
    connection = {
        "conn_type": "aws",
        "login": "AKIDAIRFLOW",
        "password": "secret",
        "extra": {
            "endpoint_url": f"http://127.0.0.1:{stack.catalog.http_port}",
            "region_name": REGION,
        },
    }
    process = await asyncio.create_subprocess_exec(
        str(AIRFLOW_PYTHON),
        str(AIRFLOW_SCRIPT),
        "talks",
        run_id,
        env={
            "PATH": os.environ["PATH"],
            "HOME": str(tmp_path),
            "AIRFLOW_HOME": str(tmp_path / "airflow"),
            "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(connection),
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    text = out.decode()
    assert process.returncode == 0, text + err.decode()
    assert f"Glue Job Run {OUTPUT} Logs:" in text
    assert f"Glue Job Run {ERROR} Logs:" in text
    for line in STDOUT_LINES + STDERR_LINES:
        assert f"\t{line}\n" in text
    assert '"JobRunState": "SUCCEEDED"' in text
