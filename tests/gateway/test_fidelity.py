"""What a Glue user sees, against AWS's known answers (docs/glue-fidelity.md), on both databases.

One test per row of the doc's defaults table (the members GetJob and GetJobRun return when a
request left them out) and per AWS error text the doc lists, through the real boto3 client and
the HTTP gateway; one over gRPC for the field that ErrorInfo keeps naming.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from glue.v1 import glue_pb2
from tests.gateway.conftest import ROLE, Aws
from tests.gateway.test_boto3 import wait_run
from tests.helpers.scripts import SLEEP, SUCCEED, write_script

pytestmark = pytest.mark.catalog_settings(http_listen="127.0.0.1:0")

SPARK = {"Name": "glueetl", "ScriptLocation": "/nowhere/etl.py"}


def shell(script: Path) -> dict[str, str]:
    return {"Name": "pythonshell", "ScriptLocation": str(script)}


async def created_job(aws: Aws, name: str, **members: Any) -> dict[str, Any]:
    """Create a job with only the members given (plus Role), return GetJob's Job."""
    members.setdefault("Command", SPARK)
    await aws("create_job", Name=name, Role=ROLE, **members)
    job: dict[str, Any] = (await aws("get_job", JobName=name))["Job"]
    return job


# -- Defaults table: jobs ------------------------------------------------------------------------

# (row id, CreateJob members, the members GetJob must show). Sources in docs/glue-fidelity.md.
JOB_ROWS = [
    pytest.param({}, {"JobMode": "SCRIPT"}, id="JobMode"),
    pytest.param({}, {"ExecutionClass": "STANDARD"}, id="ExecutionClass"),
    pytest.param({}, {"GlueVersion": "6.0", "Timeout": 480}, id="GlueVersion-spark"),
    pytest.param(
        {"Command": {"Name": "pythonshell", "ScriptLocation": "/nowhere/s.py"}},
        {"GlueVersion": "1.0", "Timeout": 2880},
        id="GlueVersion-pythonshell",
    ),
    pytest.param({"GlueVersion": "4.0"}, {"Timeout": 2880}, id="Timeout-glue-4"),
    pytest.param({"GlueVersion": "auto"}, {"GlueVersion": "auto", "Timeout": 480}, id="auto"),
    pytest.param(
        {}, {"MaxRetries": 0, "ExecutionProperty": {"MaxConcurrentRuns": 1}}, id="retries"
    ),
    pytest.param({}, {"Command": {**SPARK, "PythonVersion": "3"}}, id="PythonVersion"),
    pytest.param(
        {"Command": {"Name": "pythonshell", "ScriptLocation": "/nowhere/s.py"}},
        {"MaxCapacity": 0.0625, "AllocatedCapacity": 0},
        id="capacity-pythonshell",
    ),
    pytest.param({}, {"MaxCapacity": 10.0, "AllocatedCapacity": 10}, id="capacity-spark"),
    pytest.param(
        {"WorkerType": "G.2X", "NumberOfWorkers": 5},
        {"MaxCapacity": 10.0, "AllocatedCapacity": 10},
        id="capacity-workers",
    ),
    pytest.param(
        {"WorkerType": "G.025X", "NumberOfWorkers": 2},
        {"MaxCapacity": 0.5, "AllocatedCapacity": 0},
        id="capacity-fractional-workers",
    ),
    pytest.param({"MaxCapacity": 4.0}, {"AllocatedCapacity": 4}, id="capacity-max"),
]


@pytest.mark.parametrize(("given", "shown"), JOB_ROWS)
async def test_get_job_returns_awss_defaults(
    aws: Aws, given: dict[str, Any], shown: dict[str, Any]
) -> None:
    job = await created_job(aws, "defaults", **given)
    assert {member: job.get(member) for member in shown} == shown
    # GetJobs and BatchGetJobs show the same stored job.
    assert (await aws("get_jobs"))["Jobs"] == [job]
    assert (await aws("batch_get_jobs", JobNames=["defaults"]))["Jobs"] == [job]


async def test_a_given_member_is_never_replaced_by_a_default(aws: Aws) -> None:
    job = await created_job(
        aws,
        "given",
        Command={**SPARK, "PythonVersion": "3.9"},
        GlueVersion="3.0",
        ExecutionClass="FLEX",
        JobMode="NOTEBOOK",
        Timeout=60,
    )
    assert (job["Command"]["PythonVersion"], job["GlueVersion"], job["ExecutionClass"]) == (
        "3.9",
        "3.0",
        "FLEX",
    )
    assert (job["JobMode"], job["Timeout"]) == ("NOTEBOOK", 60)


# -- Defaults table: runs ------------------------------------------------------------------------


@pytest.mark.slow
async def test_get_job_run_returns_awss_members(aws: Aws, tmp_path: Path) -> None:
    script = write_script(tmp_path, "ok.py", SUCCEED)
    await aws("create_job", Name="runs", Role=ROLE, Command=shell(script))
    run_id = (await aws("start_job_run", JobName="runs"))["JobRunId"]
    early = (await aws("get_job_run", JobName="runs", RunId=run_id))["JobRun"]
    # Before the run has used any time AWS already shows ExecutionTime 0.
    assert isinstance(early["ExecutionTime"], int)
    run = await wait_run(aws, "runs", run_id)
    assert run["JobRunState"] == "SUCCEEDED"
    assert run["PredecessorRuns"] == []
    assert {m: run.get(m) for m in ("AllocatedCapacity", "MaxCapacity", "GlueVersion")} == {
        "AllocatedCapacity": 0,
        "MaxCapacity": 0.0625,
        "GlueVersion": "1.0",
    }
    assert (run["ExecutionClass"], run["JobMode"]) == ("STANDARD", "SCRIPT")
    # Whole seconds, as AWS counts them, and no more than the run's wall time.
    assert isinstance(run["ExecutionTime"], int)
    wall = (run["CompletedOn"] - run["StartedOn"]).total_seconds()
    assert 0 <= run["ExecutionTime"] <= round(wall) + 1
    listed = (await aws("get_job_runs", JobName="runs"))["JobRuns"]
    assert listed[0]["PredecessorRuns"] == []


# -- AWS's error texts ---------------------------------------------------------------------------


def conditional(*conditions: dict[str, Any], actions: list[dict[str, Any]] | None = None) -> Any:
    return {
        "Name": "cond",
        "Type": "CONDITIONAL",
        "Actions": actions or [{"JobName": "target"}],
        "Predicate": {"Logical": "ANY", "Conditions": list(conditions)},
    }


WATCH = {"JobName": "watched", "State": "SUCCEEDED", "LogicalOperator": "EQUALS"}


def aws_text(
    row: str, request: dict[str, Any], message: str, code: str = "InvalidInputException"
) -> Any:
    """A row of AWS_TEXTS: CreateTrigger with ``request`` fails with ``code`` and ``message``."""
    return pytest.param(request, code, message, id=row)


# (CreateTrigger request, code, AWS's message). Sources in docs/glue-fidelity.md.
AWS_TEXTS = [
    aws_text(
        "no-predicate",
        {"Name": "c", "Type": "CONDITIONAL", "Actions": [{"JobName": "target"}]},
        "Predicate cannot be null or empty",
    ),
    aws_text(
        "no-logical-operator",
        conditional({"JobName": "watched", "State": "SUCCEEDED"}),
        "Logical operator cannot be null or empty",
    ),
    aws_text(
        "bad-logical-operator",
        conditional(WATCH, {"JobName": "watched", "State": "SUCCEEDED", "LogicalOperator": "X"}),
        "1 validation error detected: Value 'X' at 'predicate.conditions.2.member."
        "logicalOperator' failed to satisfy constraint: Member must satisfy enum value set: "
        "[Equals]",
        code="ValidationException",
    ),
    aws_text(
        "no-state",
        conditional({"JobName": "watched", "LogicalOperator": "EQUALS"}),
        "State cannot be null or empty, choose from one of the following job state: "
        "[SUCCEEDED, STOPPED, FAILED, TIMEOUT]",
    ),
    aws_text(
        "no-name",
        conditional({"LogicalOperator": "EQUALS", "State": "SUCCEEDED"}),
        "JobName or CrawlerName in condition cannot be null or empty",
    ),
    aws_text(
        "job-and-crawler",
        {
            "Name": "c",
            "Type": "ON_DEMAND",
            "Actions": [{"JobName": "target", "CrawlerName": "crawler"}],
        },
        "Both JobName and CrawlerName cannot be set together in an action",
    ),
    aws_text(
        "watches-what-it-starts",
        conditional(WATCH, actions=[{"JobName": "watched"}]),
        "Job cannot be a Predicate and Action for Conditional Trigger",
    ),
]


@pytest.mark.parametrize(("request_", "code", "message"), AWS_TEXTS)
async def test_trigger_errors_read_as_awss(
    aws: Aws, request_: dict[str, Any], code: str, message: str
) -> None:
    for job in ("watched", "target"):
        await aws("create_job", Name=job, Role=ROLE, Command=SPARK)
    assert await aws.error("create_trigger", **request_) == (code, message, 400)


async def test_model_violations_read_as_awss_framework(aws: Aws) -> None:
    assert await aws.error("get_jobs", MaxResults=5000) == (
        "ValidationException",
        (
            "1 validation error detected: Value '5000' at 'maxResults' failed to satisfy "
            "constraint: Member must have value less than or equal to 1000"
        ),
        400,
    )
    # Every violation of the request, as AWS lists them.
    assert await aws.error(
        "create_job", Name="x" * 256, Role=ROLE, Command=SPARK, WorkerType="G.3X"
    ) == (
        "ValidationException",
        "2 validation errors detected: Value '" + "x" * 64 + "...' at 'name' failed to satisfy "
        "constraint: Member must have length less than or equal to 255; Value 'G.3X' at "
        "'workerType' failed to satisfy constraint: Member must satisfy enum value set: ["
        + ", ".join(aws.client.meta.service_model.shape_for("WorkerType").enum)
        + "]",
        400,
    )


@pytest.mark.slow
async def test_concurrent_runs_exceeded_reads_as_awss(aws: Aws, tmp_path: Path) -> None:
    script = write_script(tmp_path, "sleep.py", SLEEP)
    await aws("create_job", Name="busy", Role=ROLE, Command=shell(script))
    run_id = (await aws("start_job_run", JobName="busy"))["JobRunId"]
    try:
        assert await aws.error("start_job_run", JobName="busy") == (
            "ConcurrentRunsExceededException",
            "Concurrent runs exceeded for busy",
            400,
        )
    finally:
        await aws("batch_stop_job_run", JobName="busy", JobRunIds=[run_id])
        await wait_run(aws, "busy", run_id)


# -- gRPC keeps the field ------------------------------------------------------------------------


def error_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    return info


@pytest.mark.parametrize(
    ("condition", "reason", "field", "message"),
    [
        pytest.param(
            glue_pb2.Condition(job_name="watched", state="SUCCEEDED"),
            "InvalidInputException",
            "Predicate.Conditions[0].LogicalOperator",
            "Logical operator cannot be null or empty",
            id="rule",
        ),
        pytest.param(
            glue_pb2.Condition(job_name="watched", state="SUCCEEDED", logical_operator="X"),
            "ValidationException",
            "Predicate.Conditions[0].LogicalOperator",
            "1 validation error detected: Value 'X' at 'predicate.conditions.1.member."
            "logicalOperator' failed to satisfy constraint: Member must satisfy enum value set: "
            "[Equals]",
            id="model",
        ),
    ],
)
async def test_grpc_errors_carry_awss_text_and_name_the_field(
    aws: Aws, condition: glue_pb2.Condition, reason: str, field: str, message: str
) -> None:
    for job in ("watched", "target"):
        await aws("create_job", Name=job, Role=ROLE, Command=SPARK)
    request = glue_pb2.CreateTriggerRequest(
        name="cond",
        type="CONDITIONAL",
        actions=[glue_pb2.Action(job_name="target")],
        predicate=glue_pb2.Predicate(conditions=[condition]),
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await aws.stack.glue.CreateTrigger(request)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == message
    info = error_info(caught.value)
    assert (info.reason, info.metadata["field"]) == (reason, field)
