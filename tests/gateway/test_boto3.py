"""The HTTP gateway driven by the real boto3 Glue client, on SQLite and PostgreSQL.

Every jobs / runs / triggers / tags operation, the error types a client can meet, boto3's
paginators (Glue has no waiters in botocore), and the wire details boto3 relies on: epoch
timestamps, NextToken left out at the end, x-amzn-RequestId, 400 vs 500.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.gateway.conftest import ROLE, Aws
from tests.helpers.scripts import FAIL, SLEEP, SUCCEED, write_script

pytestmark = pytest.mark.catalog_settings(http_listen="127.0.0.1:0")


def command(script: Path) -> dict[str, str]:
    return {"Name": "pythonshell", "ScriptLocation": str(script)}


async def wait_run(aws: Aws, job: str, run_id: str, timeout: float = 20.0) -> dict[str, Any]:
    """Poll GetJobRun (through boto3) until the run is terminal."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            run: dict[str, Any] = (await aws("get_job_run", JobName=job, RunId=run_id))["JobRun"]
        except aws.client.exceptions.EntityNotFoundException:
            run = {"JobRunState": "NOT YET"}
        if run["JobRunState"] in {"SUCCEEDED", "FAILED", "TIMEOUT", "STOPPED", "ERROR"}:
            return run
        assert asyncio.get_running_loop().time() < deadline, f"run {run_id} stuck: {run}"
        await asyncio.sleep(0.05)


async def raw(aws: Aws, target: str | None, body: bytes, method: str = "POST") -> Any:
    """One raw HTTP request to the gateway: (status, headers, parsed body)."""
    assert aws.stack.catalog is not None
    headers = {"Content-Type": "application/x-amz-json-1.1"}
    if target is not None:
        headers["X-Amz-Target"] = target
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method, f"http://127.0.0.1:{aws.stack.catalog.http_port}/", data=body, headers=headers
        ) as response,
    ):
        return response.status, response.headers, json.loads(await response.read())


async def test_job_lifecycle(aws: Aws, tmp_path: Path) -> None:
    script = write_script(tmp_path, "ok.py", SUCCEED)
    created = await aws(
        "create_job",
        Name="etl",
        Role=ROLE,
        Command=command(script),
        DefaultArguments={"--day": "1"},
        MaxRetries=2,
        Tags={"team": "data"},
    )
    assert created["Name"] == "etl"
    job = (await aws("get_job", JobName="etl"))["Job"]
    assert job["DefaultArguments"] == {"--day": "1"}
    assert job["MaxRetries"] == 2
    # botocore parsed epoch seconds into aware datetimes: they must be now-ish, not 1970.
    assert abs((datetime.now(UTC) - job["CreatedOn"]).total_seconds()) < 60
    updated = await aws(
        "update_job",
        JobName="etl",
        JobUpdate={"Role": ROLE, "Command": command(script), "Description": "nightly"},
    )
    assert updated["JobName"] == "etl"
    job = (await aws("get_job", JobName="etl"))["Job"]
    assert job["Description"] == "nightly"
    assert "DefaultArguments" not in job  # UpdateJob replaces the whole definition, as Glue
    assert job["LastModifiedOn"] >= job["CreatedOn"]

    await aws("create_job", Name="other", Role=ROLE, Command=command(script))
    assert (await aws("list_jobs"))["JobNames"] == ["etl", "other"]
    assert (await aws("list_jobs", Tags={"team": "data"}))["JobNames"] == ["etl"]
    assert [j["Name"] for j in (await aws("get_jobs"))["Jobs"]] == ["etl", "other"]
    batch = await aws("batch_get_jobs", JobNames=["etl", "ghost"])
    assert [j["Name"] for j in batch["Jobs"]] == ["etl"]
    assert batch["JobsNotFound"] == ["ghost"]

    assert (await aws("delete_job", JobName="etl"))["JobName"] == "etl"
    assert (await aws("delete_job", JobName="etl"))["JobName"] == "etl"  # idempotent
    assert (await aws("list_jobs"))["JobNames"] == ["other"]


async def test_empty_listings_have_their_members(aws: Aws) -> None:
    # Code written for Glue indexes these without .get(); Glue sends them empty.
    assert (await aws("get_jobs"))["Jobs"] == []
    assert (await aws("list_jobs"))["JobNames"] == []
    assert (await aws("get_triggers"))["Triggers"] == []
    assert (await aws("list_triggers"))["TriggerNames"] == []
    batch = await aws("batch_get_jobs", JobNames=["a"])
    assert (batch["Jobs"], batch["JobsNotFound"]) == ([], ["a"])


async def test_runs(aws: Aws, tmp_path: Path) -> None:
    ok = write_script(tmp_path, "ok.py", SUCCEED)
    bad = write_script(tmp_path, "bad.py", FAIL)
    await aws("create_job", Name="ok", Role=ROLE, Command=command(ok))
    await aws("create_job", Name="bad", Role=ROLE, Command=command(bad))
    run_id = (await aws("start_job_run", JobName="ok", Arguments={"--x": "1"}))["JobRunId"]
    run = await wait_run(aws, "ok", run_id)
    assert run["JobRunState"] == "SUCCEEDED"
    assert run["Arguments"] == {"--x": "1"}
    assert run["CompletedOn"] >= run["StartedOn"]
    assert isinstance(run["ExecutionTime"], int)
    failed = await wait_run(aws, "bad", (await aws("start_job_run", JobName="bad"))["JobRunId"])
    assert failed["JobRunState"] == "FAILED"
    assert failed["ErrorMessage"]
    runs = (await aws("get_job_runs", JobName="ok"))["JobRuns"]
    assert [r["Id"] for r in runs] == [run_id]
    stop = await aws("batch_stop_job_run", JobName="ok", JobRunIds=[run_id, "jr_ghost"])
    # A finished run and an unknown one: both are per-id errors, the call itself succeeds.
    assert stop["SuccessfulSubmissions"] == [] or stop["SuccessfulSubmissions"][0]["JobRunId"]
    assert {e["JobRunId"] for e in stop["Errors"]} >= {"jr_ghost"}
    for error in stop["Errors"]:
        assert error["ErrorDetail"]["ErrorCode"]


async def test_stop_and_concurrency_errors(aws: Aws, tmp_path: Path) -> None:
    slow = write_script(tmp_path, "slow.py", SLEEP)
    await aws(
        "create_job",
        Name="slow",
        Role=ROLE,
        Command=command(slow),
        ExecutionProperty={"MaxConcurrentRuns": 1},
        DefaultArguments={"--seconds": "30"},
    )
    run_id = (await aws("start_job_run", JobName="slow"))["JobRunId"]
    code, message, status = await aws.error("start_job_run", JobName="slow")
    assert (code, status) == ("ConcurrentRunsExceededException", 400)
    assert "slow" in message
    with pytest.raises(aws.client.exceptions.ConcurrentRunsExceededException):
        await aws("start_job_run", JobName="slow")
    stop = await aws("batch_stop_job_run", JobName="slow", JobRunIds=[run_id])
    assert stop["SuccessfulSubmissions"] == [{"JobName": "slow", "JobRunId": run_id}]
    assert (await wait_run(aws, "slow", run_id))["JobRunState"] == "STOPPED"


async def test_error_types(aws: Aws, tmp_path: Path) -> None:
    script = write_script(tmp_path, "ok.py", SUCCEED)
    await aws("create_job", Name="j", Role=ROLE, Command=command(script))
    assert await aws.error("get_job", JobName="nope") == (
        "EntityNotFoundException",
        "Job nope not found.",
        400,
    )
    code, message, status = await aws.error(
        "create_job", Name="j", Role=ROLE, Command=command(script)
    )
    assert (code, status) == ("AlreadyExistsException", 400)
    # boto3 checks only required members and minimums; the rest is the service's to refuse.
    code, message, status = await aws.error(
        "create_job", Name="k", Role=ROLE, Command=command(script), WorkerType="G.9000X"
    )
    # A model constraint: AWS's framework code and words (docs/glue-fidelity.md).
    assert (code, status) == ("ValidationException", 400)
    assert "Value 'G.9000X' at 'workerType' failed to satisfy constraint" in message
    code, message, _ = await aws.error(
        "create_job", Name="k" * 300, Role=ROLE, Command=command(script)
    )
    assert code == "ValidationException"
    assert "at 'name' failed to satisfy constraint" in message
    code, message, _ = await aws.error("get_job_run", JobName="j", RunId="jr_nope")
    assert code == "EntityNotFoundException"
    code, message, _ = await aws.error("get_job_bookmark", JobName="j")
    assert (code, message) == (
        "EntityNotFoundException",
        "Job j has no job bookmark: none of its runs has committed one.",
    )
    code, message, _ = await aws.error("get_crawler", Name="c")
    assert code == "OperationNotSupportedException"
    assert "GetCrawler" in message
    with pytest.raises(aws.client.exceptions.EntityNotFoundException):
        await aws("get_trigger", Name="nope")
    # Nothing of the refused creates exists.
    assert (await aws("list_jobs"))["JobNames"] == ["j"]


async def test_scheduler_down_is_a_retryable_500(aws: Aws, tmp_path: Path) -> None:
    script = write_script(tmp_path, "ok.py", SUCCEED)
    await aws("create_job", Name="j", Role=ROLE, Command=command(script))
    await aws.stack.stop_scheduler()
    code, _, status = await aws.error("start_job_run", JobName="j")
    assert (code, status) == ("InternalServiceException", 500)
    await aws.stack.start_scheduler()
    assert (await aws("get_job_runs", JobName="j"))["JobRuns"] == []


async def test_protocol_errors(aws: Aws) -> None:
    status, headers, body = await raw(aws, "AWSGlue.ListJobs", b"{not json")
    assert (status, body["__type"]) == (400, "SerializationException")
    assert headers["x-amzn-RequestId"]
    status, _, body = await raw(aws, "AWSGlue.ListJobs", b"[1, 2]")
    assert (status, body["__type"]) == (400, "SerializationException")
    status, _, body = await raw(aws, "AWSGlue.NoSuchThing", b"{}")
    assert (status, body["__type"]) == (400, "UnknownOperationException")
    status, _, body = await raw(aws, None, b"{}")
    assert (status, body["__type"]) == (400, "UnknownOperationException")
    status, _, body = await raw(aws, "AWSGlue.ListJobs", b"", method="GET")
    assert (status, body["__type"]) == (400, "UnknownOperationException")
    status, _, body = await raw(aws, "AWSGlue.ListJobs", b'{"Bogus": 1}')
    assert (status, body["__type"]) == (400, "InvalidInputException")
    assert "Bogus" in body["message"]
    status, _, body = await raw(aws, "AWSGlue.ListJobs", b"")
    assert (status, body) == (200, {"JobNames": []})


async def test_wire_shapes(aws: Aws, tmp_path: Path) -> None:
    script = write_script(tmp_path, "ok.py", SUCCEED)
    body = json.dumps({"Name": "j", "Role": ROLE, "Command": command(script)}).encode()
    status, headers, created = await raw(aws, "AWSGlue.CreateJob", body)
    assert (status, created) == (200, {"Name": "j"})
    assert headers["Content-Type"] == "application/x-amz-json-1.1"
    assert len(headers["x-amzn-RequestId"]) == 36
    status, _, got = await raw(aws, "AWSGlue.GetJob", b'{"JobName": "j"}')
    assert isinstance(got["Job"]["CreatedOn"], float)  # epoch seconds, a JSON number
    status, _, listing = await raw(aws, "AWSGlue.ListJobs", b'{"MaxResults": 5}')
    assert "NextToken" not in listing  # the end of a listing: no token at all


async def test_null_members_are_absent(aws: Aws, tmp_path: Path) -> None:
    """A structure member sent as JSON null means "not given", at any depth."""
    script = write_script(tmp_path, "ok.py", SUCCEED)
    await aws("create_job", Name="j", Role=ROLE, Command=command(script))
    body = b'{"Name": "t", "Type": "ON_DEMAND", "Description": null,'
    body += b' "Actions": [{"JobName": "j", "Timeout": null}]}'
    status, _, created = await raw(aws, "AWSGlue.CreateTrigger", body)
    assert (status, created) == (200, {"Name": "t"})
    body = b'{"Name": "t", "TriggerUpdate": {"Name": null, "Description": "now described"}}'
    status, _, updated = await raw(aws, "AWSGlue.UpdateTrigger", body)
    assert status == 200, updated
    assert updated["Trigger"]["Description"] == "now described"
    assert updated["Trigger"]["Actions"] == [{"JobName": "j"}]
    # A null map value is a value, and not a string: refused, naming the entry.
    body = b'{"JobName": "j", "Arguments": {"--k": null}}'
    status, _, refused = await raw(aws, "AWSGlue.StartJobRun", body)
    assert (status, refused["__type"]) == (400, "InvalidInputException")
    assert "Arguments" in refused["message"]


async def test_paginators(aws: Aws, tmp_path: Path) -> None:
    script = write_script(tmp_path, "ok.py", SUCCEED)
    names = [f"job-{i:02d}" for i in range(7)]
    for name in names:
        await aws("create_job", Name=name, Role=ROLE, Command=command(script))
        await aws(
            "create_trigger",
            Name=f"t-{name}",
            Type="ON_DEMAND",
            Actions=[{"JobName": name}],
        )

    def pages(operation: str, key: str, **params: Any) -> list[list[Any]]:
        paginator = aws.client.get_paginator(operation)
        config = {"PageSize": 3}
        return [page[key] for page in paginator.paginate(PaginationConfig=config, **params)]

    jobs = await asyncio.to_thread(pages, "get_jobs", "Jobs")
    assert [len(p) for p in jobs] == [3, 3, 1]
    assert [j["Name"] for p in jobs for j in p] == names
    listed = await asyncio.to_thread(pages, "list_jobs", "JobNames")
    assert [n for p in listed for n in p] == names
    triggers = await asyncio.to_thread(pages, "get_triggers", "Triggers")
    assert [t["Name"] for p in triggers for t in p] == [f"t-{n}" for n in names]
    trigger_names = await asyncio.to_thread(pages, "list_triggers", "TriggerNames")
    assert [n for p in trigger_names for n in p] == [f"t-{n}" for n in names]
    run_ids = [(await aws("start_job_run", JobName="job-00"))["JobRunId"]]
    await wait_run(aws, "job-00", run_ids[0])
    for _ in range(3):
        run_ids.append((await aws("start_job_run", JobName="job-00"))["JobRunId"])
        await wait_run(aws, "job-00", run_ids[-1])
    runs = await asyncio.to_thread(pages, "get_job_runs", "JobRuns", JobName="job-00")
    assert [r["Id"] for p in runs for r in p] == run_ids[::-1]


async def test_triggers(aws: Aws, tmp_path: Path) -> None:
    script = write_script(tmp_path, "ok.py", SUCCEED)
    for name in ("a", "b", "c"):
        await aws("create_job", Name=name, Role=ROLE, Command=command(script))
    await aws(
        "create_trigger",
        Name="nightly",
        Type="SCHEDULED",
        Schedule="cron(0 3 * * ? *)",
        Actions=[{"JobName": "a", "Arguments": {"--mode": "full"}}],
        StartOnCreation=True,
        Tags={"env": "prod"},
    )
    trigger = (await aws("get_trigger", Name="nightly"))["Trigger"]
    assert (trigger["Type"], trigger["State"]) == ("SCHEDULED", "ACTIVATED")
    assert trigger["Actions"] == [{"JobName": "a", "Arguments": {"--mode": "full"}}]
    await aws(
        "create_trigger",
        Name="then-b-and-c",
        Type="CONDITIONAL",
        Predicate={
            "Conditions": [{"LogicalOperator": "EQUALS", "JobName": "a", "State": "SUCCEEDED"}]
        },
        Actions=[{"JobName": "b"}, {"JobName": "c"}],
        StartOnCreation=True,
    )
    await aws("create_trigger", Name="go", Type="ON_DEMAND", Actions=[{"JobName": "a"}])
    # DependentJobName: the triggers that can start that job.
    assert (await aws("list_triggers", DependentJobName="a"))["TriggerNames"] == ["go", "nightly"]
    assert (await aws("list_triggers", DependentJobName="c"))["TriggerNames"] == ["then-b-and-c"]
    batch = await aws("batch_get_triggers", TriggerNames=["go", "ghost"])
    assert [t["Name"] for t in batch["Triggers"]] == ["go"]
    assert batch["TriggersNotFound"] == ["ghost"]

    # A chain from one on-demand start: a, then b and c with a as their predecessor.
    assert (await aws("start_trigger", Name="go"))["Name"] == "go"
    finished: dict[str, dict[str, Any]] = {}
    deadline = asyncio.get_running_loop().time() + 30
    while len(finished) < 3:
        assert asyncio.get_running_loop().time() < deadline, finished
        for job in ("a", "b", "c"):
            for run in (await aws("get_job_runs", JobName=job))["JobRuns"]:
                if run["JobRunState"] == "SUCCEEDED":
                    finished[job] = run
        await asyncio.sleep(0.1)
    assert finished["a"]["TriggerName"] == "go"
    assert finished["b"]["TriggerName"] == "then-b-and-c"
    full = await aws(
        "get_job_run", JobName="b", RunId=finished["b"]["Id"], PredecessorsIncluded=True
    )
    assert full["JobRun"]["PredecessorRuns"] == [{"JobName": "a", "RunId": finished["a"]["Id"]}]

    assert (await aws("stop_trigger", Name="nightly"))["Name"] == "nightly"
    assert (await aws("get_trigger", Name="nightly"))["Trigger"]["State"] == "DEACTIVATED"
    code, message, _ = await aws.error("stop_trigger", Name="go")
    assert code == "InvalidInputException"
    updated = await aws(
        "update_trigger",
        Name="nightly",
        TriggerUpdate={"Schedule": "cron(30 4 * * ? *)", "Description": "later"},
    )
    assert updated["Trigger"]["Schedule"] == "cron(30 4 * * ? *)"
    code, message, _ = await aws.error(
        "update_trigger", Name="nightly", TriggerUpdate={"Schedule": "cron(99 4 * * ? *)"}
    )
    assert code == "InvalidInputException"
    assert "Schedule" in message
    assert (await aws("start_trigger", Name="nightly"))["Name"] == "nightly"
    assert (await aws("delete_trigger", Name="nightly"))["Name"] == "nightly"
    with pytest.raises(aws.client.exceptions.EntityNotFoundException):
        await aws("get_trigger", Name="nightly")


async def test_tags(aws: Aws, tmp_path: Path) -> None:
    script = write_script(tmp_path, "ok.py", SUCCEED)
    await aws("create_job", Name="j", Role=ROLE, Command=command(script), Tags={"a": "1"})
    await aws("create_trigger", Name="t", Type="ON_DEMAND", Actions=[{"JobName": "j"}])
    job, trigger = aws.arn("job", "j"), aws.arn("trigger", "t")
    await aws("tag_resource", ResourceArn=job, TagsToAdd={"b": "2", "a": "one"})
    assert (await aws("get_tags", ResourceArn=job))["Tags"] == {"a": "one", "b": "2"}
    await aws("untag_resource", ResourceArn=job, TagsToRemove=["a", "not-there"])
    assert (await aws("get_tags", ResourceArn=job))["Tags"] == {"b": "2"}
    assert (await aws("get_tags", ResourceArn=trigger))["Tags"] == {}
    await aws("tag_resource", ResourceArn=trigger, TagsToAdd={"env": "dev"})
    assert (await aws("list_triggers", Tags={"env": "dev"}))["TriggerNames"] == ["t"]
    assert (await aws("list_jobs", Tags={"b": "2"}))["JobNames"] == ["j"]
    # Tags never change the definition a GetJob returns.
    assert "Tags" not in (await aws("get_job", JobName="j"))["Job"]

    code, _, _ = await aws.error("get_tags", ResourceArn=aws.arn("job", "ghost"))
    assert code == "EntityNotFoundException"
    code, message, _ = await aws.error(
        "tag_resource", ResourceArn="not-an-arn", TagsToAdd={"x": "y"}
    )
    assert (code, "at 'resourceArn'" in message) == ("ValidationException", True)
    code, message, _ = await aws.error(
        "get_tags", ResourceArn="arn:aws:glue:eu-west-1:123456789012:crawler/c"
    )
    assert code == "InvalidInputException"
    assert "crawler" in message
    many = {f"k{i}": "v" for i in range(50)}
    code, message, _ = await aws.error("tag_resource", ResourceArn=job, TagsToAdd=many)
    assert code == "InvalidInputException"
    assert "50" in message
    assert (await aws("get_tags", ResourceArn=job))["Tags"] == {"b": "2"}  # unchanged


async def test_tag_arns_take_any_name_a_job_can_have_and_refuse_others(
    aws: Aws, tmp_path: Path
) -> None:
    """The name in a tag operation's ARN follows the job name rule (the model's NameString)."""
    script = write_script(tmp_path, "ok.py", SUCCEED)
    await aws("create_job", Name="with\ttab", Role=ROLE, Command=command(script))
    job = aws.arn("job", "with\ttab")
    await aws("tag_resource", ResourceArn=job, TagsToAdd={"a": "1"})
    assert (await aws("get_tags", ResourceArn=job))["Tags"] == {"a": "1"}
    code, _, _ = await aws.error("get_tags", ResourceArn=aws.arn("job", "x" * 255))
    assert code == "EntityNotFoundException"
    for name, why in [("x" * 256, "at most 255 characters"), ("a\x01b", "single line")]:
        code, message, _ = await aws.error("get_tags", ResourceArn=aws.arn("trigger", name))
        assert code == "InvalidInputException"
        assert message.startswith("ResourceArn: the resource name must be "), message
        assert why in message
