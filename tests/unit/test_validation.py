"""Unit tests for catalog_service.validation, against botocore's real Glue model (no mocks)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import botocore.session
import pytest
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from catalog_service import validation
from catalog_service.validation import (
    containers,
    find_violations,
    model,
    preload,
    scalars,
    validate_request,
    validate_shape,
)
from catalog_service.validation.violations import Violation
from glue.v1 import glue_pb2
from glue_vocabulary.shapes import message_members, pascal
from servicekit.errors import InvalidInputException, ValidationException

EMOJI = "\U0001f600"  # one code point, two UTF-16 units, four UTF-8 bytes
NAME_ERROR = "must be a single line with no control characters"
WORKER_TYPES = (
    "Standard, G.1X, G.2X, G.4X, G.8X, G.025X, Z.2X, G.12X, G.16X, R.1X, R.2X, R.4X, R.8X, "
    "G.1X.GRAVITON, G.2X.GRAVITON, G.4X.GRAVITON, G.8X.GRAVITON, G.12X.GRAVITON, "
    "G.16X.GRAVITON, R.1X.GRAVITON, R.2X.GRAVITON, R.4X.GRAVITON, R.8X.GRAVITON"
)
MAX_TIMEOUT = "must be at most 10080 minutes, which is 7 days"
REPLACES = "is required (UpdateJob replaces the whole job definition)"
CAPACITY_CLASH = "set either MaxCapacity or WorkerType and NumberOfWorkers"

MODEL = botocore.session.get_session().get_service_model("glue")


def create_job(**members: Any) -> dict[str, Any]:
    """A minimal valid CreateJob request, with ``members`` on top."""
    request: dict[str, Any] = {
        "Name": "nightly-orders",
        "Role": "arn:aws:iam::123456789012:role/GlueJobRole",
        "Command": {"Name": "pythonshell", "ScriptLocation": "file:///jobs/orders.py"},
    }
    request.update(members)
    return request


def job_update(**members: Any) -> dict[str, Any]:
    """A minimal valid UpdateJob request, with ``members`` on top of its JobUpdate."""
    update: dict[str, Any] = {
        "Role": "arn:aws:iam::123456789012:role/GlueJobRole",
        "Command": {"Name": "pythonshell", "ScriptLocation": "file:///jobs/orders.py"},
    }
    update.update(members)
    return {"JobName": "nightly-orders", "JobUpdate": update}


def start_job_run(**members: Any) -> dict[str, Any]:
    """A minimal valid StartJobRun request, with ``members`` on top."""
    return {"JobName": "nightly-orders", **members}


def action(**members: Any) -> dict[str, Any]:
    """A minimal valid CreateTrigger request with one action, with ``members`` on the action."""
    return {"Name": "t", "Type": "ON_DEMAND", "Actions": [{"JobName": "j", **members}]}


FULL_JOB_DEFINITION: dict[str, Any] = {
    "JobMode": "SCRIPT",
    "JobRunQueuingEnabled": False,
    "Description": "Loads orders.\r\nRuns nightly;\ttab-separated notes.",
    "LogUri": "file:///var/log/glue",
    "Role": "arn:aws:iam::123456789012:role/GlueJobRole",
    "ExecutionProperty": {"MaxConcurrentRuns": 3},
    "Command": {
        "Name": "glueetl",
        "ScriptLocation": "s3://bucket/scripts/orders.py",
        "PythonVersion": "3",
        "Runtime": "Ray2.4",
    },
    "DefaultArguments": {"--job-language": "python", "--TempDir": "s3://bucket/tmp/"},
    "NonOverridableArguments": {"--env": "prod"},
    "Connections": {"Connections": ["warehouse", "lake"]},
    "MaxRetries": 2,
    "AllocatedCapacity": 0,
    "Timeout": 2880,
    "SecurityConfiguration": "default-sec",
    "NotificationProperty": {"NotifyDelayAfter": 15},
    "GlueVersion": "4.0",
    "NumberOfWorkers": 10,
    "WorkerType": "G.1X",
    "CodeGenConfigurationNodes": {"node-1": {"S3CsvSource": {"Name": "src"}}},
    "ExecutionClass": "STANDARD",
    "SourceControlDetails": {
        "Provider": "GITHUB",
        "Repository": "etl",
        "Owner": "data-team",
        "Branch": "main",
        "Folder": "jobs",
        "LastCommitId": "0123abcd",
        "AuthStrategy": "PERSONAL_ACCESS_TOKEN",
        "AuthToken": "ghp_secret",
    },
    "MaintenanceWindow": "Sun:10",
}

VALID = [
    pytest.param("CreateJob", create_job(), id="CreateJob-minimal"),
    pytest.param(
        "CreateJob",
        {"Name": "full", **FULL_JOB_DEFINITION, "Tags": {"team": "data", "env": ""}},
        id="CreateJob-every-member",
    ),
    pytest.param("CreateJob", create_job(MaxCapacity=0.0625), id="CreateJob-pythonshell-dpu"),
    pytest.param("CreateJob", create_job(MaxCapacity=1), id="CreateJob-int-for-double"),
    pytest.param("CreateJob", create_job(Name=EMOJI * 255), id="CreateJob-name-255-emoji"),
    pytest.param("CreateJob", create_job(Name="é" * 255), id="CreateJob-name-255-accents"),
    pytest.param("CreateJob", create_job(Name="a\tb"), id="CreateJob-name-tab"),
    pytest.param("CreateJob", create_job(Name="x" * 255), id="CreateJob-name-255"),
    pytest.param("CreateJob", create_job(Description="a\nb\r\nc\t"), id="CreateJob-desc-newlines"),
    pytest.param("CreateJob", create_job(Description=""), id="CreateJob-desc-empty"),
    pytest.param("CreateJob", create_job(Description="d" * 2048), id="CreateJob-desc-2048"),
    pytest.param("CreateJob", create_job(Timeout=10080), id="CreateJob-timeout-7-days"),
    pytest.param("CreateJob", create_job(Timeout=1, MaxRetries=0), id="CreateJob-lowest"),
    pytest.param("CreateJob", create_job(MaxRetries=10), id="CreateJob-retries-ceiling"),
    pytest.param(
        "CreateJob",
        create_job(ExecutionProperty={"MaxConcurrentRuns": 1000}),
        id="CreateJob-concurrency-ceiling",
    ),
    pytest.param("CreateJob", create_job(Timeout=None), id="CreateJob-null-is-absent"),
    pytest.param("CreateJob", create_job(Tags={f"k{i}": "v" for i in range(50)}), id="tags-50"),
    pytest.param("CreateJob", create_job(CodeGenConfigurationNodes={}), id="CreateJob-no-nodes"),
    pytest.param("CreateJob", create_job(MaintenanceWindow="Sat:23"), id="CreateJob-window"),
    pytest.param("CreateJob", create_job(GlueVersion="5.0"), id="CreateJob-glue-5"),
    pytest.param("UpdateJob", job_update(), id="UpdateJob-minimal"),
    pytest.param("UpdateJob", job_update(**FULL_JOB_DEFINITION), id="UpdateJob-every-member"),
    pytest.param("StartJobRun", start_job_run(), id="StartJobRun-minimal"),
    pytest.param(
        "StartJobRun",
        start_job_run(
            JobRunQueuingEnabled=True,
            JobRunId="jr_" + "0" * 64,
            Arguments={"--day": "2024-01-01", "--empty": ""},
            Timeout=60,
            SecurityConfiguration="sec",
            NotificationProperty={"NotifyDelayAfter": 1},
            WorkerType="G.2X",
            NumberOfWorkers=2,
            ExecutionClass="FLEX",
            ExecutionRoleSessionPolicy="{}",
        ),
        id="StartJobRun-every-member",
    ),
    pytest.param("StartJobRun", start_job_run(AllocatedCapacity=5), id="StartJobRun-dpus"),
    pytest.param("StartJobRun", start_job_run(MaxCapacity=2.0), id="StartJobRun-max-capacity"),
    pytest.param("GetJobRuns", {"JobName": "j"}, id="GetJobRuns-minimal"),
    pytest.param(
        "GetJobRuns", {"JobName": "j", "MaxResults": 200, "NextToken": "t"}, id="GetJobRuns-200"
    ),
    pytest.param("GetJobRuns", {"JobName": "j", "MaxResults": 1}, id="GetJobRuns-1"),
    pytest.param("GetJobs", {}, id="GetJobs-empty"),
    pytest.param("GetJobs", {"MaxResults": 1}, id="GetJobs-1"),
    pytest.param("GetJobs", {"MaxResults": 1000, "NextToken": "abc"}, id="GetJobs-1000"),
    pytest.param("BatchStopJobRun", {"JobName": "j", "JobRunIds": ["jr_1"]}, id="stop-1"),
    pytest.param(
        "BatchStopJobRun",
        {"JobName": "j", "JobRunIds": [f"jr_{i}" for i in range(25)]},
        id="BatchStopJobRun-25",
    ),
    pytest.param("GetJob", {"JobName": "j"}, id="GetJob"),
    pytest.param("DeleteJob", {"JobName": "j"}, id="DeleteJob"),
    pytest.param(
        "GetJobRun", {"JobName": "j", "RunId": "r", "PredecessorsIncluded": True}, id="run"
    ),
    pytest.param("BatchGetJobs", {"JobNames": ["a", "b"]}, id="BatchGetJobs"),
    pytest.param("ListJobs", {"MaxResults": 10, "Tags": {"team": "data"}}, id="ListJobs"),
    pytest.param(
        "CreateTrigger",
        {
            "Name": "after-load",
            "Type": "CONDITIONAL",
            "Predicate": {
                "Logical": "ANY",
                "Conditions": [
                    {"LogicalOperator": "EQUALS", "JobName": "load", "State": "SUCCEEDED"},
                    {"LogicalOperator": "EQUALS", "CrawlerName": "c", "CrawlState": "FAILED"},
                ],
            },
            "Actions": [{"JobName": "report", "Arguments": {"--x": "1"}, "Timeout": 10080}],
            "Description": "multi\nline",
            "StartOnCreation": True,
            "Tags": {"team": "data"},
            "EventBatchingCondition": {"BatchSize": 100, "BatchWindow": 900},
        },
        id="CreateTrigger-every-member",
    ),
    pytest.param("GetJobBookmark", {"JobName": "nightly"}, id="GetJobBookmark"),
    pytest.param(
        "ResetJobBookmark", {"JobName": "nightly\twith tab", "RunId": "jr_1"}, id="ResetJobBookmark"
    ),
]


@pytest.mark.parametrize(("operation", "params"), VALID)
def test_valid_requests_pass(operation: str, params: dict[str, Any]) -> None:
    validate_request(operation, params)
    assert find_violations(operation, params) == []


INVALID = [
    # --- CreateJob: required members
    pytest.param("CreateJob", {"Role": "r", "Command": {}}, "Name", "is required", id="no-name"),
    pytest.param(
        "CreateJob", {"Name": "n", "Command": {}}, "Role", "is required", id="CreateJob-no-role"
    ),
    pytest.param("CreateJob", {"Name": "n", "Role": "r"}, "Command", "is required", id="no-cmd"),
    pytest.param("CreateJob", create_job(Name=None), "Name", "is required", id="CreateJob-null"),
    pytest.param(
        "CreateJob",
        create_job(Name=""),
        "Name",
        "must be at least 1 character long (got 0)",
        id="empty-name",
    ),
    # Role has no min length in the model; required strings must still be non-empty.
    pytest.param("CreateJob", create_job(Role=""), "Role", "must not be empty", id="empty-role"),
    # --- string lengths, in code points
    pytest.param(
        "CreateJob",
        create_job(Name="x" * 300),
        "Name",
        "must be at most 255 characters long (got 300)",
        id="CreateJob-name-300",
    ),
    pytest.param(
        "CreateJob",
        create_job(Name=EMOJI * 256),
        "Name",
        "must be at most 255 characters long (got 256)",
        id="CreateJob-name-256-emoji",
    ),
    pytest.param(
        "CreateJob",
        create_job(Description="d" * 2049),
        "Description",
        "must be at most 2048 characters long (got 2049)",
        id="CreateJob-description-2049",
    ),
    pytest.param(
        "CreateJob",
        create_job(SecurityConfiguration=""),
        "SecurityConfiguration",
        "must be at least 1 character long (got 0)",
        id="CreateJob-optional-name-empty",
    ),
    pytest.param(
        "CreateJob",
        create_job(Command={"Runtime": "r" * 65}),
        "Command.Runtime",
        "must be at most 64 characters long (got 65)",
        id="CreateJob-runtime-65",
    ),
    pytest.param(
        "CreateJob",
        create_job(ExecutionClass="X" * 17),
        "ExecutionClass",
        "must be at most 16 characters long (got 17)",
        id="CreateJob-execution-class-17",
    ),
    # --- patterns
    pytest.param("CreateJob", create_job(Name="a\nb"), "Name", NAME_ERROR, id="name-lf"),
    pytest.param("CreateJob", create_job(Name="a\rb"), "Name", NAME_ERROR, id="name-cr"),
    pytest.param("CreateJob", create_job(Name="a\x00b"), "Name", NAME_ERROR, id="name-nul"),
    pytest.param("CreateJob", create_job(Name="a\x1b"), "Name", NAME_ERROR, id="esc"),
    pytest.param("CreateJob", create_job(Name="\ufffe"), "Name", NAME_ERROR, id="name-nonchar"),
    pytest.param("CreateJob", create_job(Name="\ud800"), "Name", NAME_ERROR, id="lone-surrogate"),
    pytest.param(
        "CreateJob",
        create_job(Description="ring\x07"),
        "Description",
        "must not contain control characters other than tab, carriage return and line feed",
        id="CreateJob-description-bell",
    ),
    pytest.param(
        "CreateJob",
        create_job(GlueVersion="4"),
        "GlueVersion",
        r"must match the pattern ^((\w+\.)+\w+|auto)$ (got '4')",
        id="CreateJob-glue-version",
    ),
    pytest.param(
        "CreateJob",
        create_job(MaintenanceWindow="Funday:10"),
        "MaintenanceWindow",
        "must match the pattern ^(Sun|Mon|Tue|Wed|Thu|Fri|Sat):([01]?[0-9]|2[0-3])$ "
        "(got 'Funday:10')",
        id="CreateJob-maintenance-window",
    ),
    pytest.param(
        "CreateJob",
        create_job(Command={"PythonVersion": "3.11"}),
        "Command.PythonVersion",
        "must match the pattern ^([2-3]|3[.]9)$ (got '3.11')",
        id="CreateJob-python-version",
    ),
    # --- enums
    pytest.param(
        "CreateJob",
        create_job(WorkerType="G.9X"),
        "WorkerType",
        f"'G.9X' is not one of {WORKER_TYPES}",
        id="CreateJob-worker-type",
    ),
    pytest.param(
        "CreateJob",
        create_job(WorkerType="g.1x"),
        "WorkerType",
        f"'g.1x' is not one of {WORKER_TYPES}",
        id="CreateJob-worker-type-case",
    ),
    pytest.param(
        "CreateJob",
        create_job(ExecutionClass="flex"),
        "ExecutionClass",
        "'flex' is not one of FLEX, STANDARD",
        id="CreateJob-execution-class",
    ),
    pytest.param(
        "CreateJob",
        create_job(JobMode="GUI"),
        "JobMode",
        "'GUI' is not one of SCRIPT, VISUAL, NOTEBOOK",
        id="CreateJob-job-mode",
    ),
    pytest.param(
        "CreateJob",
        create_job(SourceControlDetails={"Provider": "SVN"}),
        "SourceControlDetails.Provider",
        "'SVN' is not one of GITHUB, GITLAB, BITBUCKET, AWS_CODE_COMMIT",
        id="CreateJob-source-control-provider",
    ),
    # --- integer bounds (model)
    pytest.param(
        "CreateJob", create_job(Timeout=0), "Timeout", "must be at least 1 (got 0)", id="tmo-0"
    ),
    pytest.param(
        "CreateJob",
        create_job(NotificationProperty={"NotifyDelayAfter": 0}),
        "NotificationProperty.NotifyDelayAfter",
        "must be at least 1 (got 0)",
        id="CreateJob-notify-delay-0",
    ),
    pytest.param(
        "CreateJob",
        create_job(MaxRetries=2**31),
        "MaxRetries",
        "must be at most 2147483647 (got 2147483648)",
        id="CreateJob-int32-overflow",
    ),
    # --- types
    pytest.param(
        "CreateJob",
        create_job(Timeout="60"),
        "Timeout",
        "must be an integer (got a string)",
        id="CreateJob-timeout-str",
    ),
    pytest.param(
        "CreateJob",
        create_job(Timeout=True),
        "Timeout",
        "must be an integer (got a boolean)",
        id="CreateJob-timeout-bool",
    ),
    pytest.param(
        "CreateJob",
        create_job(Timeout=60.0),
        "Timeout",
        "must be an integer (got a number)",
        id="CreateJob-timeout-float",
    ),
    pytest.param(
        "CreateJob",
        create_job(Name=5),
        "Name",
        "must be a string (got an integer)",
        id="CreateJob-name-int",
    ),
    pytest.param(
        "CreateJob",
        create_job(MaxCapacity="2"),
        "MaxCapacity",
        "must be a number (got a string)",
        id="CreateJob-max-capacity-str",
    ),
    pytest.param(
        "CreateJob",
        create_job(MaxCapacity=False),
        "MaxCapacity",
        "must be a number (got a boolean)",
        id="CreateJob-max-capacity-bool",
    ),
    pytest.param(
        "CreateJob",
        create_job(MaxCapacity=float("nan")),
        "MaxCapacity",
        "must be a finite number (got nan)",
        id="CreateJob-max-capacity-nan",
    ),
    pytest.param(
        "CreateJob",
        create_job(JobRunQueuingEnabled="true"),
        "JobRunQueuingEnabled",
        "must be a boolean (got a string)",
        id="CreateJob-bool-str",
    ),
    pytest.param(
        "CreateJob",
        create_job(JobRunQueuingEnabled=1),
        "JobRunQueuingEnabled",
        "must be a boolean (got an integer)",
        id="CreateJob-bool-int",
    ),
    pytest.param(
        "CreateJob",
        create_job(Command="glueetl"),
        "Command",
        "must be an object (got a string)",
        id="CreateJob-command-str",
    ),
    pytest.param(
        "CreateJob",
        create_job(DefaultArguments=["--x", "1"]),
        "DefaultArguments",
        "must be an object (got a list)",
        id="CreateJob-arguments-list",
    ),
    pytest.param(
        "CreateJob",
        create_job(DefaultArguments={"--ok": "1", "--x": 1}),
        'DefaultArguments["--x"]',
        "must be a string (got an integer)",
        id="CreateJob-argument-int",
    ),
    pytest.param(
        "CreateJob",
        create_job(NonOverridableArguments={"--x": None}),
        'NonOverridableArguments["--x"]',
        "must be a string (got null)",
        id="CreateJob-argument-null",
    ),
    pytest.param(
        "CreateJob",
        create_job(Connections={"Connections": "warehouse"}),
        "Connections.Connections",
        "must be a list (got a string)",
        id="CreateJob-connections-str",
    ),
    # --- maps and lists
    pytest.param(
        "CreateJob",
        create_job(Tags={f"k{i}": "v" for i in range(51)}),
        "Tags",
        "must contain at most 50 entries (got 51)",
        id="CreateJob-tags-51",
    ),
    pytest.param(
        "CreateJob",
        create_job(Tags={"": "v"}),
        'Tags[""]',
        "key must be at least 1 character long (got 0)",
        id="CreateJob-tag-key-empty",
    ),
    pytest.param(
        "CreateJob",
        create_job(Tags={"k" * 129: "v"}),
        'Tags["' + "k" * 64 + '..."]',
        "key must be at most 128 characters long (got 129)",
        id="CreateJob-tag-key-129",
    ),
    pytest.param(
        "CreateJob",
        create_job(Tags={"team": "v" * 257}),
        'Tags["team"]',
        "must be at most 256 characters long (got 257)",
        id="CreateJob-tag-value-257",
    ),
    pytest.param(
        "CreateJob",
        create_job(Connections={"Connections": ["c"] * 1001}),
        "Connections.Connections",
        "must contain at most 1000 items (got 1001)",
        id="CreateJob-connections-1001",
    ),
    pytest.param(
        "CreateJob",
        create_job(Connections={"Connections": ["ok", "c" * 256]}),
        "Connections.Connections[1]",
        "must be at most 255 characters long (got 256)",
        id="CreateJob-connection-256",
    ),
    # --- unknown members
    pytest.param(
        "CreateJob",
        create_job(Foo=1),
        "Foo",
        "is not a member of CreateJobRequest",
        id="CreateJob-unknown",
    ),
    pytest.param(
        "CreateJob",
        create_job(workerType="G.1X", Bar=1),
        "workerType",
        "is not a member of CreateJobRequest (did you mean WorkerType?) (also unknown: Bar)",
        id="CreateJob-unknown-several",
    ),
    pytest.param(
        "CreateJob",
        create_job(Command={"Name": "glueetl", "Script": "x.py"}),
        "Command.Script",
        "is not a member of JobCommand",
        id="CreateJob-unknown-nested",
    ),
    # --- CodeGenConfigurationNodes: a JSON object of objects, not checked against its shape
    pytest.param(
        "CreateJob",
        create_job(CodeGenConfigurationNodes="{not json"),
        "CodeGenConfigurationNodes",
        "must be a JSON object whose values are objects (got text that is not a JSON object)",
        id="CreateJob-nodes-text",
    ),
    pytest.param(
        "CreateJob",
        create_job(CodeGenConfigurationNodes=[{"S3CsvSource": {}}]),
        "CodeGenConfigurationNodes",
        "must be a JSON object whose values are objects (got a list)",
        id="CreateJob-nodes-list",
    ),
    pytest.param(
        "CreateJob",
        create_job(CodeGenConfigurationNodes={"node-1": {}, "node-2": "S3CsvSource"}),
        'CodeGenConfigurationNodes["node-2"]',
        "must be an object (got a string)",
        id="CreateJob-node-str",
    ),
    # --- CreateJob: rules beyond the model
    pytest.param(
        "CreateJob",
        create_job(Timeout=10081),
        "Timeout",
        f"{MAX_TIMEOUT} (got 10081)",
        id="CreateJob-timeout-10081",
    ),
    pytest.param(
        "CreateJob",
        create_job(MaxRetries=-1),
        "MaxRetries",
        "must be at least 0 (got -1)",
        id="CreateJob-max-retries-negative",
    ),
    pytest.param(
        "CreateJob",
        create_job(MaxRetries=11),
        "MaxRetries",
        "must be at most 10, the most AWS Glue documents for a job's retries (got 11)",
        id="CreateJob-max-retries-11",
    ),
    pytest.param(
        "CreateJob",
        create_job(DefaultArguments={"--ok": "1", "--JOB_N": "evil"}),
        'DefaultArguments["--JOB_N"]',
        "is reserved: job scripts read their arguments with getResolvedOptions, which uses "
        "argparse, and argparse accepts any unambiguous prefix of an option, so a script would "
        "read this key as --JOB_NAME, overriding the job's own name",
        id="CreateJob-reserved-argument-prefix",
    ),
    pytest.param(
        "CreateJob",
        create_job(ExecutionProperty={"MaxConcurrentRuns": 0}),
        "ExecutionProperty.MaxConcurrentRuns",
        "must be at least 1 (got 0)",
        id="CreateJob-concurrency-0",
    ),
    pytest.param(
        "CreateJob",
        create_job(ExecutionProperty={"MaxConcurrentRuns": 1001}),
        "ExecutionProperty.MaxConcurrentRuns",
        "must be at most 1000, the per-job ceiling of this service (got 1001)",
        id="CreateJob-concurrency-1001",
    ),
    pytest.param(
        "CreateJob",
        create_job(NumberOfWorkers=0),
        "NumberOfWorkers",
        "must be at least 1 (got 0)",
        id="CreateJob-workers-0",
    ),
    pytest.param(
        "CreateJob",
        create_job(AllocatedCapacity=-1),
        "AllocatedCapacity",
        "must be at least 0 (got -1)",
        id="CreateJob-allocated-negative",
    ),
    pytest.param(
        "CreateJob",
        create_job(MaxCapacity=-0.5),
        "MaxCapacity",
        "must be at least 0 (got -0.5)",
        id="CreateJob-max-capacity-negative",
    ),
    pytest.param(
        "CreateJob",
        create_job(MaxCapacity=2.0, WorkerType="G.1X"),
        "MaxCapacity",
        f"cannot be set together with WorkerType; {CAPACITY_CLASH}",
        id="CreateJob-max-capacity-and-worker-type",
    ),
    pytest.param(
        "CreateJob",
        create_job(MaxCapacity=2.0, NumberOfWorkers=2),
        "MaxCapacity",
        f"cannot be set together with NumberOfWorkers; {CAPACITY_CLASH}",
        id="CreateJob-max-capacity-and-workers",
    ),
    # --- UpdateJob
    pytest.param("UpdateJob", {"JobName": "j"}, "JobUpdate", "is required", id="no-update"),
    pytest.param(
        "UpdateJob", {"JobUpdate": job_update()["JobUpdate"]}, "JobName", "is required", id="no-jn"
    ),
    pytest.param(
        "UpdateJob",
        {"JobName": "j", "JobUpdate": {"Command": {}}},
        "JobUpdate.Role",
        REPLACES,
        id="UpdateJob-no-role",
    ),
    pytest.param(
        "UpdateJob",
        {"JobName": "j", "JobUpdate": {"Role": "r"}},
        "JobUpdate.Command",
        REPLACES,
        id="UpdateJob-no-command",
    ),
    pytest.param(
        "UpdateJob", job_update(Role=""), "JobUpdate.Role", REPLACES, id="UpdateJob-empty-role"
    ),
    pytest.param(
        "UpdateJob",
        job_update(Name="renamed"),
        "JobUpdate.Name",
        "is not a member of JobUpdate",
        id="UpdateJob-name-not-in-update",
    ),
    pytest.param(
        "UpdateJob",
        job_update(Tags={"a": "b"}),
        "JobUpdate.Tags",
        "is not a member of JobUpdate",
        id="UpdateJob-tags-not-in-update",
    ),
    pytest.param(
        "UpdateJob",
        job_update(Command={"ScriptLocation": 5}),
        "JobUpdate.Command.ScriptLocation",
        "must be a string (got an integer)",
        id="UpdateJob-script-location-int",
    ),
    pytest.param(
        "UpdateJob",
        job_update(Command={"ScriptLocation": "s" * 400_001}),
        "JobUpdate.Command.ScriptLocation",
        "must be at most 400000 characters long (got 400001)",
        id="UpdateJob-script-location-long",
    ),
    pytest.param(
        "UpdateJob",
        job_update(Timeout=20000),
        "JobUpdate.Timeout",
        f"{MAX_TIMEOUT} (got 20000)",
        id="UpdateJob-timeout",
    ),
    pytest.param(
        "UpdateJob",
        job_update(ExecutionProperty={"MaxConcurrentRuns": 5000}),
        "JobUpdate.ExecutionProperty.MaxConcurrentRuns",
        "must be at most 1000, the per-job ceiling of this service (got 5000)",
        id="UpdateJob-concurrency",
    ),
    pytest.param(
        "UpdateJob",
        job_update(MaxCapacity=10.0, WorkerType="G.2X", NumberOfWorkers=2),
        "JobUpdate.MaxCapacity",
        f"cannot be set together with WorkerType or NumberOfWorkers; {CAPACITY_CLASH}",
        id="UpdateJob-max-capacity-and-workers",
    ),
    pytest.param(
        "UpdateJob",
        job_update(WorkerType="G.9X"),
        "JobUpdate.WorkerType",
        f"'G.9X' is not one of {WORKER_TYPES}",
        id="UpdateJob-worker-type",
    ),
    pytest.param(
        "UpdateJob",
        job_update(CodeGenConfigurationNodes={"bad id": {}}),
        'JobUpdate.CodeGenConfigurationNodes["bad id"]',
        "key must match the pattern [A-Za-z0-9_-]* (got 'bad id')",
        id="UpdateJob-node-id",
    ),
    # --- StartJobRun
    pytest.param("StartJobRun", {}, "JobName", "is required", id="StartJobRun-no-job-name"),
    pytest.param(
        "StartJobRun",
        start_job_run(JobRunId=""),
        "JobRunId",
        "must be at least 1 character long (got 0)",
        id="StartJobRun-empty-run-id",
    ),
    pytest.param(
        "StartJobRun",
        start_job_run(Arguments={"--day": 20240101}),
        'Arguments["--day"]',
        "must be a string (got an integer)",
        id="StartJobRun-argument-int",
    ),
    pytest.param(
        "StartJobRun",
        start_job_run(Arguments={"--bad\nkey": 1}),
        'Arguments["--bad\\nkey"]',
        "must be a string (got an integer)",
        id="StartJobRun-argument-key-escaped",
    ),
    pytest.param(
        "StartJobRun",
        start_job_run(Timeout=10081),
        "Timeout",
        f"{MAX_TIMEOUT} (got 10081)",
        id="StartJobRun-timeout",
    ),
    pytest.param(
        "StartJobRun",
        start_job_run(NumberOfWorkers=0),
        "NumberOfWorkers",
        "must be at least 1 (got 0)",
        id="StartJobRun-workers-0",
    ),
    pytest.param(
        "StartJobRun",
        start_job_run(ExecutionRoleSessionPolicy="{"),
        "ExecutionRoleSessionPolicy",
        "must be at least 2 characters long (got 1)",
        id="StartJobRun-policy-short",
    ),
    pytest.param(
        "StartJobRun",
        start_job_run(WorkerType="Z.9X"),
        "WorkerType",
        f"'Z.9X' is not one of {WORKER_TYPES}",
        id="StartJobRun-worker-type",
    ),
    pytest.param(
        "StartJobRun",
        start_job_run(Timeout="1"),
        "Timeout",
        "must be an integer (got a string)",
        id="StartJobRun-timeout-str",
    ),
    pytest.param(
        "StartJobRun",
        start_job_run(JobName="a\nb"),
        "JobName",
        NAME_ERROR,
        id="StartJobRun-job-name-newline",
    ),
    pytest.param(
        "StartJobRun",
        start_job_run(MaxCapacity=2.0, WorkerType="G.1X"),
        "MaxCapacity",
        f"cannot be set together with WorkerType; {CAPACITY_CLASH}",
        id="StartJobRun-max-capacity-and-worker-type",
    ),
    # --- GetJobRuns
    pytest.param("GetJobRuns", {}, "JobName", "is required", id="GetJobRuns-no-job-name"),
    pytest.param(
        "GetJobRuns",
        {"JobName": "j", "MaxResults": 201},
        "MaxResults",
        "must be at most 200 (got 201)",
        id="GetJobRuns-201",
    ),
    pytest.param(
        "GetJobRuns",
        {"JobName": "j", "MaxResults": 0},
        "MaxResults",
        "must be at least 1 (got 0)",
        id="GetJobRuns-0",
    ),
    pytest.param(
        "GetJobRuns",
        {"JobName": "j", "MaxResults": "10"},
        "MaxResults",
        "must be an integer (got a string)",
        id="GetJobRuns-str",
    ),
    pytest.param(
        "GetJobRuns",
        {"JobName": "j" * 256},
        "JobName",
        "must be at most 255 characters long (got 256)",
        id="GetJobRuns-job-name-256",
    ),
    pytest.param(
        "GetJobRuns",
        {"JobName": "j", "NextToken": 3},
        "NextToken",
        "must be a string (got an integer)",
        id="GetJobRuns-token-int",
    ),
    # --- GetJobs
    pytest.param(
        "GetJobs", {"MaxResults": 0}, "MaxResults", "must be at least 1 (got 0)", id="GetJobs-0"
    ),
    pytest.param(
        "GetJobs",
        {"MaxResults": 1001},
        "MaxResults",
        "must be at most 1000 (got 1001)",
        id="GetJobs-1001",
    ),
    pytest.param(
        "GetJobs",
        {"MaxResults": 5000},
        "MaxResults",
        "must be at most 1000 (got 5000)",
        id="GetJobs-5000",
    ),
    pytest.param(
        "GetJobs",
        {"MaxResults": True},
        "MaxResults",
        "must be an integer (got a boolean)",
        id="GetJobs-bool",
    ),
    pytest.param(
        "GetJobs",
        {"JobName": "j"},
        "JobName",
        "is not a member of GetJobsRequest",
        id="GetJobs-unknown",
    ),
    # --- BatchStopJobRun
    pytest.param(
        "BatchStopJobRun",
        {"JobName": "j", "JobRunIds": []},
        "JobRunIds",
        "must contain at least 1 item (got 0)",
        id="BatchStopJobRun-0",
    ),
    pytest.param(
        "BatchStopJobRun",
        {"JobName": "j", "JobRunIds": [f"jr_{i}" for i in range(26)]},
        "JobRunIds",
        "must contain at most 25 items (got 26)",
        id="BatchStopJobRun-26",
    ),
    pytest.param(
        "BatchStopJobRun",
        {"JobName": "j"},
        "JobRunIds",
        "is required",
        id="BatchStopJobRun-no-ids",
    ),
    pytest.param(
        "BatchStopJobRun",
        {"JobName": "j", "JobRunIds": ["a", "b", "c", "d\n"]},
        "JobRunIds[3]",
        NAME_ERROR,
        id="BatchStopJobRun-id-newline",
    ),
    pytest.param(
        "BatchStopJobRun",
        {"JobName": "j", "JobRunIds": ["a", 7]},
        "JobRunIds[1]",
        "must be a string (got an integer)",
        id="BatchStopJobRun-id-int",
    ),
    pytest.param(
        "BatchStopJobRun",
        {"JobName": "j", "JobRunIds": "jr_1"},
        "JobRunIds",
        "must be a list (got a string)",
        id="BatchStopJobRun-ids-str",
    ),
    # --- CreateTrigger: model-level checks only (trigger rules live with triggers)
    pytest.param(
        "CreateTrigger",
        {"Name": "t", "Actions": []},
        "Type",
        "is required",
        id="CreateTrigger-no-type",
    ),
    pytest.param(
        "CreateTrigger",
        {"Name": "t", "Type": "HOURLY", "Actions": []},
        "Type",
        "'HOURLY' is not one of SCHEDULED, CONDITIONAL, ON_DEMAND, EVENT",
        id="CreateTrigger-type",
    ),
    pytest.param(
        "CreateTrigger",
        action(Timeout=0),
        "Actions[0].Timeout",
        "must be at least 1 (got 0)",
        id="CreateTrigger-action-timeout-0",
    ),
    pytest.param(
        "CreateTrigger",
        action(Timeout=10081),
        "Actions[0].Timeout",
        f"{MAX_TIMEOUT} (got 10081)",
        id="CreateTrigger-action-timeout-10081",
    ),
    pytest.param(
        "CreateTrigger",
        {**action(), "EventBatchingCondition": {"BatchWindow": 5}},
        "EventBatchingCondition.BatchSize",
        "is required",
        id="CreateTrigger-batch-size-missing",
    ),
    pytest.param(
        "CreateTrigger",
        {**action(), "EventBatchingCondition": {"BatchSize": 101}},
        "EventBatchingCondition.BatchSize",
        "must be at most 100 (got 101)",
        id="CreateTrigger-batch-size-101",
    ),
    pytest.param(
        "CreateTrigger",
        {**action(), "Predicate": {"Conditions": [{}, {"State": "DONE"}]}},
        "Predicate.Conditions[1].State",
        "'DONE' is not one of STARTING, RUNNING, STOPPING, STOPPED, SUCCEEDED, FAILED, "
        "TIMEOUT, ERROR, WAITING, EXPIRED",
        id="CreateTrigger-condition-state",
    ),
    pytest.param(
        "CreateTrigger",
        {**action(), "Predicate": {"Logical": "OR"}},
        "Predicate.Logical",
        "'OR' is not one of AND, ANY",
        id="CreateTrigger-logical",
    ),
    # --- the bookmark operations: plain strings in the model, held to the usual name shapes
    pytest.param(
        "GetJobBookmark", {"JobName": "x\ny"}, "JobName", NAME_ERROR, id="bookmark-name-newline"
    ),
    pytest.param(
        "ResetJobBookmark",
        {"JobName": "x" * 256},
        "JobName",
        "must be at most 255 characters long (got 256)",
        id="bookmark-name-256",
    ),
    pytest.param(
        "GetJobBookmark",
        {"JobName": "j", "RunId": ""},
        "RunId",
        "must be at least 1 character long (got 0)",
        id="bookmark-empty-run-id",
    ),
    pytest.param(
        "ResetJobBookmark",
        {"JobName": "j", "RunId": "jr\r"},
        "RunId",
        NAME_ERROR,
        id="bookmark-run-id-cr",
    ),
]


@pytest.mark.parametrize(("operation", "params", "field", "text"), INVALID)
def test_invalid_requests_raise_one_error_naming_the_field(
    operation: str, params: dict[str, Any], field: str, text: str
) -> None:
    with pytest.raises(InvalidInputException) as caught:
        validate_request(operation, params)
    assert caught.value.field == field
    first = find_violations(operation, params)[0]
    assert (first.field, first.text) == (field, text)
    if isinstance(caught.value, ValidationException):
        # A model constraint: AWS's framework words, naming the member in AWS's path style.
        assert first.constraint is not None
        assert re.match(r"\d+ validation errors? detected: Value", caught.value.message)
        assert first.aws_clause in caught.value.message
    else:
        assert caught.value.message == f"{field}: {text}"
    assert str(caught.value) == caught.value.message


@pytest.mark.parametrize(
    ("params", "field"),
    [
        pytest.param(start_job_run(AllocatedCapacity=5, MaxCapacity=2.0), "MaxCapacity", id="run"),
    ],
)
def test_verbatim_aws_message(params: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInputException) as caught:
        validate_request("StartJobRun", params)
    assert caught.value.message == "Please set only Allocated Capacity or Max Capacity"
    assert caught.value.field == field


def test_find_violations_lists_all_in_order() -> None:
    params = {
        "Name": "x" * 300,
        "Role": "r",
        "Timeout": "60",
        "Typo": 1,
        "Tags": {"a": 1, "b": "ok", "c": None},
    }
    violations = find_violations("CreateJob", params)
    assert [v.field for v in violations] == [
        "Typo",
        "Command",
        "Name",
        "Timeout",
        'Tags["a"]',
        'Tags["c"]',
    ]
    assert all(isinstance(v, Violation) for v in violations)


def test_operation_rules_run_only_after_the_model_checks_pass() -> None:
    # Timeout 20000 breaks an operation rule, but the model violation is all that is reported.
    violations = find_violations("CreateJob", create_job(Name="", Timeout=20000))
    assert [v.message for v in violations] == [
        (
            "1 validation error detected: Value '' at 'name' failed to satisfy constraint: "
            "Member must have length greater than or equal to 1"
        )
    ]
    # With the model satisfied, every rule runs and reports.
    violations = find_violations("CreateJob", create_job(Timeout=20000, MaxRetries=-1))
    assert [v.field for v in violations] == ["Timeout", "MaxRetries"]


@pytest.mark.parametrize(
    ("operation", "params"),
    [
        pytest.param("CreateJob", create_job(WorkerType="G" * 100_000), id="enum"),
        pytest.param("CreateJob", create_job(GlueVersion="v" * 200), id="pattern"),
        pytest.param("CreateJob", create_job(DefaultArguments={"k" * 100_000: 1}), id="map-key"),
        pytest.param("CreateJob", create_job(**{"Z" * 100_000: 1}), id="unknown-member"),
        pytest.param("CreateJob", create_job(MaxRetries=10**5000), id="huge-int"),
    ],
)
def test_huge_values_are_never_echoed_in_full(operation: str, params: dict[str, Any]) -> None:
    with pytest.raises(InvalidInputException) as caught:
        validate_request(operation, params)
    # The value is cut; AWS's enum wording lists the whole set (23 worker types), so not < 400.
    assert len(caught.value.message) < 600


def test_sensitive_values_are_not_echoed() -> None:
    # TransactionIdString is not sensitive; CodeGenConfigurationNodes is, and its text never
    # appears. (The model marks no job string as sensitive.)
    with pytest.raises(InvalidInputException) as caught:
        validate_request("CreateJob", create_job(CodeGenConfigurationNodes="secret-ish{"))
    assert "secret-ish" not in caught.value.message


def test_a_request_that_is_not_an_object() -> None:
    with pytest.raises(InvalidInputException) as caught:
        validate_request("CreateJob", ["Name"])  # type: ignore[arg-type]
    assert caught.value.message == "CreateJob request must be an object (got a list)"
    assert caught.value.field is None


def test_any_mapping_is_accepted_as_the_request() -> None:
    validate_request("CreateJob", MappingProxyType(create_job()))


def test_an_unknown_operation_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="CreateJobs"):
        validate_request("CreateJobs", {})


@pytest.mark.parametrize(
    ("when", "violations"),
    [
        pytest.param(datetime(2024, 1, 1, tzinfo=UTC), [], id="datetime"),
        pytest.param(1_704_067_200, [], id="epoch-seconds"),
        pytest.param(
            "yesterday", ["QueryAsOfTime: must be a timestamp (got a string)"], id="string"
        ),
    ],
)
def test_timestamps(when: object, violations: list[str]) -> None:
    # No job operation takes a timestamp as input; GetTables is the simplest one that does.
    found = find_violations("GetTables", {"DatabaseName": "db", "QueryAsOfTime": when})
    assert [v.message for v in found] == violations


# ---------------------------------------------------------------------------------------------
# Pattern translation and compilation over the whole model


def _model_patterns() -> list[str]:
    return sorted(
        {
            MODEL.shape_for(name).metadata["pattern"]
            for name in MODEL.shape_names
            if "pattern" in MODEL.shape_for(name).metadata
        }
    )


@pytest.mark.parametrize("pattern", _model_patterns())
def test_every_model_pattern_translates(pattern: str) -> None:
    match = scalars._compile_pattern(pattern)
    assert callable(match)


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("plain", True),
        ("tab\there", True),
        (EMOJI * 3, True),
        ("\U0010ffff", True),
        ("\ue000\ufffd", True),
        ("", True),
        ("line\nbreak", False),
        ("carriage\rreturn", False),
        ("\x1f", False),
        ("\ufffe", False),
        ("\udc00", False),
    ],
)
def test_name_pattern_is_whole_string_and_code_point_based(text: str, ok: bool) -> None:
    match = scalars._compile_pattern(scalars._NAME_PATTERN)
    assert (match(text) is not None) is ok


@pytest.mark.parametrize(
    ("text", "ok"),
    [("abc-123.", True), ("", True), ("é", True), ("a b", False), ("a\n", False)],
)
def test_unicode_category_pattern(text: str, ok: bool) -> None:
    # [\p{L}\p{N}\p{P}]* has no Python re spelling; it is translated to a category test.
    match = scalars._compile_pattern("[\\p{L}\\p{N}\\p{P}]*")
    assert (match(text) is not None) is ok


def test_every_operation_compiles_and_is_cached() -> None:
    preload()
    for name in MODEL.operation_names:
        assert validation._operation(name) is validation._operation(name)
    # One validator per shape: CreateJob and UpdateJob share GenericMap's and JobCommand's.
    create = validation._operation("CreateJob").root
    update = validation._operation("UpdateJob").root
    job_update_validator = update._members["JobUpdate"]
    assert isinstance(job_update_validator, containers._Structure)
    for member in ("DefaultArguments", "Command", "Timeout"):
        assert create._members[member] is job_update_validator._members[member]


def test_glue_model_is_loaded_once_and_is_botocores() -> None:
    assert model.glue_model() is model.glue_model()
    # The pinned data alone, which is what a plain botocore session reads here too.
    assert model.glue_model()._service_description == MODEL._service_description


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("x" * 256, "ResourceArn: the job name must be at most 255 characters long (got 256)"),
        ("a\nb", f"ResourceArn: the job name {NAME_ERROR}"),
        (7, "ResourceArn: the job name must be a string (got an integer)"),
    ],
)
def test_validate_shape_names_the_member_that_carried_the_value(
    value: object, message: str
) -> None:
    with pytest.raises(InvalidInputException) as caught:
        validate_shape("NameString", value, field="ResourceArn", subject="the job name")
    assert (str(caught.value), caught.value.field) == (message, "ResourceArn")


def test_validate_shape_passes_a_valid_value_and_shares_the_shapes_validator() -> None:
    validate_shape("NameString", "nightly\twith tab", field="ResourceArn")
    job_name = validation._operation("CreateJob").root._members["Name"]
    assert model._named_shape("NameString").required() is job_name
    with pytest.raises(InvalidInputException, match=f"^Name: {NAME_ERROR}$"):
        validate_shape("NameString", "a\x00", field="Name")


# ---------------------------------------------------------------------------------------------
# The proto carries every Glue member, and nothing else


PROTO_SHAPES: list[tuple[type[Message], str]] = [
    (glue_pb2.CreateJobRequest, "CreateJobRequest"),
    (glue_pb2.CreateJobResponse, "CreateJobResponse"),
    (glue_pb2.UpdateJobRequest, "UpdateJobRequest"),
    (glue_pb2.UpdateJobResponse, "UpdateJobResponse"),
    (glue_pb2.DeleteJobRequest, "DeleteJobRequest"),
    (glue_pb2.DeleteJobResponse, "DeleteJobResponse"),
    (glue_pb2.GetJobRequest, "GetJobRequest"),
    (glue_pb2.GetJobResponse, "GetJobResponse"),
    (glue_pb2.GetJobsRequest, "GetJobsRequest"),
    (glue_pb2.GetJobsResponse, "GetJobsResponse"),
    (glue_pb2.ListJobsRequest, "ListJobsRequest"),
    (glue_pb2.ListJobsResponse, "ListJobsResponse"),
    (glue_pb2.BatchGetJobsRequest, "BatchGetJobsRequest"),
    (glue_pb2.BatchGetJobsResponse, "BatchGetJobsResponse"),
    (glue_pb2.StartJobRunRequest, "StartJobRunRequest"),
    (glue_pb2.StartJobRunResponse, "StartJobRunResponse"),
    (glue_pb2.GetJobRunRequest, "GetJobRunRequest"),
    (glue_pb2.GetJobRunResponse, "GetJobRunResponse"),
    (glue_pb2.GetJobRunsRequest, "GetJobRunsRequest"),
    (glue_pb2.GetJobRunsResponse, "GetJobRunsResponse"),
    (glue_pb2.BatchStopJobRunRequest, "BatchStopJobRunRequest"),
    (glue_pb2.BatchStopJobRunResponse, "BatchStopJobRunResponse"),
    (glue_pb2.BatchStopJobRunSuccessfulSubmission, "BatchStopJobRunSuccessfulSubmission"),
    (glue_pb2.BatchStopJobRunError, "BatchStopJobRunError"),
    (glue_pb2.GetJobBookmarkRequest, "GetJobBookmarkRequest"),
    (glue_pb2.GetJobBookmarkResponse, "GetJobBookmarkResponse"),
    (glue_pb2.ResetJobBookmarkRequest, "ResetJobBookmarkRequest"),
    (glue_pb2.ResetJobBookmarkResponse, "ResetJobBookmarkResponse"),
    (glue_pb2.JobBookmarkEntry, "JobBookmarkEntry"),
    (glue_pb2.ErrorDetail, "ErrorDetail"),
    (glue_pb2.Job, "Job"),
    (glue_pb2.JobUpdate, "JobUpdate"),
    (glue_pb2.JobRun, "JobRun"),
    (glue_pb2.Predecessor, "Predecessor"),
    (glue_pb2.JobCommand, "JobCommand"),
    (glue_pb2.ExecutionProperty, "ExecutionProperty"),
    (glue_pb2.NotificationProperty, "NotificationProperty"),
    (glue_pb2.ConnectionsList, "ConnectionsList"),
    (glue_pb2.AutoUpgradeMetadata, "AutoUpgradeMetadata"),
    (glue_pb2.SourceControlDetails, "SourceControlDetails"),
    (glue_pb2.Trigger, "Trigger"),
    (glue_pb2.Action, "Action"),
    (glue_pb2.Predicate, "Predicate"),
    (glue_pb2.Condition, "Condition"),
    (glue_pb2.EventBatchingCondition, "EventBatchingCondition"),
    (glue_pb2.CreateTriggerRequest, "CreateTriggerRequest"),
    (glue_pb2.CreateTriggerResponse, "CreateTriggerResponse"),
    (glue_pb2.UpdateTriggerRequest, "UpdateTriggerRequest"),
    (glue_pb2.UpdateTriggerResponse, "UpdateTriggerResponse"),
    (glue_pb2.DeleteTriggerRequest, "DeleteTriggerRequest"),
    (glue_pb2.DeleteTriggerResponse, "DeleteTriggerResponse"),
    (glue_pb2.GetTriggerRequest, "GetTriggerRequest"),
    (glue_pb2.GetTriggerResponse, "GetTriggerResponse"),
    (glue_pb2.GetTriggersRequest, "GetTriggersRequest"),
    (glue_pb2.GetTriggersResponse, "GetTriggersResponse"),
    (glue_pb2.ListTriggersRequest, "ListTriggersRequest"),
    (glue_pb2.ListTriggersResponse, "ListTriggersResponse"),
    (glue_pb2.BatchGetTriggersRequest, "BatchGetTriggersRequest"),
    (glue_pb2.BatchGetTriggersResponse, "BatchGetTriggersResponse"),
    (glue_pb2.StartTriggerRequest, "StartTriggerRequest"),
    (glue_pb2.StartTriggerResponse, "StartTriggerResponse"),
    (glue_pb2.StopTriggerRequest, "StopTriggerRequest"),
    (glue_pb2.StopTriggerResponse, "StopTriggerResponse"),
    (glue_pb2.TriggerUpdate, "TriggerUpdate"),
    (glue_pb2.TagResourceRequest, "TagResourceRequest"),
    (glue_pb2.TagResourceResponse, "TagResourceResponse"),
    (glue_pb2.UntagResourceRequest, "UntagResourceRequest"),
    (glue_pb2.UntagResourceResponse, "UntagResourceResponse"),
    (glue_pb2.GetTagsRequest, "GetTagsRequest"),
    (glue_pb2.GetTagsResponse, "GetTagsResponse"),
]
# Messages that are ours, not Glue's.
NOT_GLUE_MESSAGES = {
    "GetJobRunLogRequest",
    "GetJobRunLogResponse",
    "FireTriggerRequest",
    "FireTriggerResponse",
    "GetTriggerFiresRequest",
    "GetTriggerFiresResponse",
    "TriggerFire",
    "GetRecentJobRunsRequest",
    "GetRecentJobRunsResponse",
}
# Fields that are ours in Glue's messages (field number 100 and up; the gateway leaves them out).
NOT_GLUE_MEMBERS = {
    "Job": {"CreatedBy"},
    "Trigger": {"CreatedBy"},
    "JobRun": {"StartedBy", "JobDeleted"},
}


@pytest.mark.parametrize(
    ("message_type", "shape_name"), [pytest.param(m, s, id=s) for m, s in PROTO_SHAPES]
)
def test_proto_members_equal_model_members(message_type: type[Message], shape_name: str) -> None:
    members = message_members(message_type)
    shape = MODEL.shape_for(shape_name)
    assert len(members) == len(set(members)), "two proto fields map to one Glue member"
    missing = set(shape.members) - set(members)
    extra = set(members) - set(shape.members) - NOT_GLUE_MEMBERS.get(shape_name, set())
    assert (missing, extra) == (set(), set())


def _message_name(field: Any) -> str:
    """The proto message name of a message-typed field."""
    return str(field.message_type.name)


def _proto_kind(field: Any) -> str:
    """The Glue model type a proto field corresponds to."""
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        if field.message_type.GetOptions().map_entry:
            return "map"
        if field.message_type.full_name == "google.protobuf.Timestamp":
            return "timestamp"
    if field.is_repeated:
        return "list"
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return "structure"
    scalars = {
        FieldDescriptor.TYPE_STRING: "string",
        FieldDescriptor.TYPE_INT32: "integer",
        FieldDescriptor.TYPE_INT64: "long",
        FieldDescriptor.TYPE_DOUBLE: "double",
        FieldDescriptor.TYPE_BOOL: "boolean",
    }
    return scalars[field.type]


@pytest.mark.parametrize(
    ("message_type", "shape_name"), [pytest.param(m, s, id=s) for m, s in PROTO_SHAPES]
)
def test_proto_field_kinds_match_model(message_type: type[Message], shape_name: str) -> None:
    shape = MODEL.shape_for(shape_name)
    for field in message_type.DESCRIPTOR.fields:
        if pascal(field.name) in NOT_GLUE_MEMBERS.get(shape_name, set()):
            assert field.number >= 100, "fields that are not Glue's are numbered from 100"
            continue
        member = shape.members[pascal(field.name)]
        kind = _proto_kind(field)
        if member.name == "CodeGenConfigurationNodes":
            assert kind == "string", "CodeGenConfigurationNodes travels as JSON text"
            continue
        assert kind == member.type_name, field.full_name
        if kind == "structure":
            assert _message_name(field) == member.name, field.full_name
        if kind == "list" and member.member.type_name == "structure":
            assert _message_name(field) == member.member.name, field.full_name


def test_every_glue_message_in_the_proto_is_checked() -> None:
    checked = {m.DESCRIPTOR.name for m, _ in PROTO_SHAPES}
    assert set(glue_pb2.DESCRIPTOR.message_types_by_name) - NOT_GLUE_MESSAGES == checked


def test_request_messages_are_the_operations_input_shapes() -> None:
    for rpc in glue_pb2.DESCRIPTOR.services_by_name["Glue"].methods:
        if rpc.input_type.name in NOT_GLUE_MESSAGES:
            continue
        operation = MODEL.operation_model(rpc.name)
        assert operation.input_shape.name == rpc.input_type.name
        assert operation.output_shape.name == rpc.output_type.name
