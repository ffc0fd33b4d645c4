"""The catalog's stored state as the property tests see it, and the outcomes it explains.

Shared by the property tests of both front doors (tests/gateway/test_properties.py over HTTP,
tests/catalog/test_grpc_properties.py over gRPC): ``CatalogWorld`` sets up a few jobs, runs and
triggers through the door under test and reads the stored state from the catalog's tables;
``expected_outcomes`` and ``check_success`` say what a model-valid request may answer and do.
Requests and answers here are in Glue form (PascalCase members, JSON values).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from catalog_service import tables
from catalog_service.trigger_rules import check_trigger, normalized
from glue.v1 import glue_pb2
from glue_vocabulary.shapes import to_glue
from servicekit.errors import InvalidInputException
from tests.conftest import Stack

REGION = "eu-west-1"
ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/glue"
TERMINAL = frozenset({"STOPPED", "SUCCEEDED", "FAILED", "TIMEOUT", "ERROR", "EXPIRED"})
# Errors any operation may answer besides the ones its model lists: the domain errors of this
# service, AWS JSON's SerializationException (docs/glue-semantics.md §5) and the
# ValidationException of AWS's request framework (docs/glue-fidelity.md).
GENERAL_ERRORS = frozenset(
    {
        "InvalidInputException",
        "ValidationException",
        "EntityNotFoundException",
        "AlreadyExistsException",
        "ConcurrentRunsExceededException",
        "SerializationException",
    }
)

Json = Any


# ---------------------------------------------------------------------------------------------
# The stored state, and the world that holds it


@dataclass(frozen=True)
class Snapshot:
    """What the catalog stores, minus what moves by itself (run states, trigger runs)."""

    jobs: dict[str, tuple[int, bytes, dict[str, str]]]
    triggers: dict[str, tuple[int, bytes, str | None, dict[str, str]]]
    runs: dict[str, str]
    """run id -> job name, for runs no trigger started."""
    all_runs: dict[str, tuple[str, str]]
    """run id -> (job name, state), every run."""

    def stored(self) -> dict[tuple[str, str], object]:
        """Everything compared, keyed by (kind, name)."""
        out: dict[tuple[str, str], object] = {}
        out.update({("job", k): v for k, v in self.jobs.items()})
        out.update({("trigger", k): v for k, v in self.triggers.items()})
        out.update({("run", k): v for k, v in self.runs.items()})
        return out

    def changed(self, other: Snapshot) -> set[tuple[str, str]]:
        """The keys whose stored value differs between the two snapshots."""
        mine, theirs = self.stored(), other.stored()
        return {k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k)}

    def runs_of(self, job: str) -> list[str]:
        return [run_id for run_id, (name, _) in self.all_runs.items() if name == job]


class CatalogWorld:
    """The stack under test, and what the test knows about it; a subclass says how a request
    reaches the catalog (``call``).

    A plain class, not a dataclass: Hypothesis prints a dataclass argument field by field in
    a falsifying example, and this one holds the whole stack.
    """

    def __init__(
        self, stack: Stack, engine: AsyncEngine, ok_script: Path, sleep_script: Path
    ) -> None:
        self.stack = stack
        self.engine = engine
        self.ok_script = ok_script
        self.sleep_script = sleep_script
        self.last: Snapshot | None = None
        """The latest snapshot (what the generators draw names from)."""
        self.serial = 0
        """Numbers fresh names for creates."""
        self.tokens: list[str] = []
        """NextTokens the catalog handed out (any listing), for requests to pass back."""

    async def call(self, operation: str, **params: Json) -> Json:
        """A request that must succeed (setup and teardown); the answer in Glue form."""
        raise NotImplementedError

    async def snapshot(self) -> Snapshot:
        async with self.engine.connect() as conn:
            job_rows = (
                await conn.execute(
                    select(
                        tables.jobs.c.name,
                        tables.jobs.c.version,
                        tables.jobs.c.definition,
                        tables.jobs.c.tags,
                    )
                )
            ).all()
            trigger_rows = (
                await conn.execute(
                    select(
                        tables.triggers.c.name,
                        tables.triggers.c.version,
                        tables.triggers.c.definition,
                        tables.triggers.c.pending,
                        tables.triggers.c.tags,
                    )
                )
            ).all()
            run_rows = (
                await conn.execute(
                    select(
                        tables.job_runs.c.run_id,
                        tables.job_runs.c.job_name,
                        tables.job_runs.c.state,
                        tables.job_runs.c.snapshot,
                    )
                )
            ).all()
        runs: dict[str, str] = {}
        all_runs: dict[str, tuple[str, str]] = {}
        for row in run_rows:
            all_runs[row.run_id] = (row.job_name, row.state)
            if not glue_pb2.JobRun.FromString(row.snapshot).trigger_name:
                runs[row.run_id] = row.job_name
        snap = Snapshot(
            jobs={
                r.name: (int(r.version), bytes(r.definition), json.loads(r.tags)) for r in job_rows
            },
            triggers={
                r.name: (int(r.version), bytes(r.definition), r.pending, json.loads(r.tags))
                for r in trigger_rows
            },
            runs=runs,
            all_runs=all_runs,
        )
        self.last = snap
        return snap

    async def run_state(self, run_id: str) -> str | None:
        async with self.engine.connect() as conn:
            state = await conn.scalar(
                select(tables.job_runs.c.state).where(tables.job_runs.c.run_id == run_id)
            )
        return None if state is None else str(state)

    async def setup(self) -> None:
        """Two jobs (one with a run in flight), three triggers, a tag."""
        await self.call(
            "CreateJob",
            Name="alpha",
            Role=ROLE,
            Command={"Name": "pythonshell", "ScriptLocation": str(self.ok_script)},
            ExecutionProperty={"MaxConcurrentRuns": 3},
            Tags={"team": "data"},
        )
        await self.call(
            "CreateJob",
            Name="busy",
            Role=ROLE,
            Command={"Name": "pythonshell", "ScriptLocation": str(self.sleep_script)},
            DefaultArguments={"--seconds": "30"},
        )
        await self.call("StartJobRun", JobName="busy")
        await self.call("StartJobRun", JobName="alpha")
        await self.call(
            "CreateTrigger",
            Name="nightly",
            Type="SCHEDULED",
            Schedule="cron(0 3 * * ? *)",
            Actions=[{"JobName": "alpha"}],
        )
        await self.call(
            "CreateTrigger", Name="manual", Type="ON_DEMAND", Actions=[{"JobName": "alpha"}]
        )
        await self.call(
            "CreateTrigger",
            Name="watch",
            Type="CONDITIONAL",
            Predicate={
                "Conditions": [
                    {"LogicalOperator": "EQUALS", "JobName": "busy", "State": "SUCCEEDED"}
                ]
            },
            Actions=[{"JobName": "alpha"}],
            Tags={"env": "test"},
        )
        await self.snapshot()

    async def stop_runs(self) -> None:
        """Stop every run still in flight, so no job process outlives the test."""
        snap = await self.snapshot()
        by_job: dict[str, list[str]] = {}
        for run_id, (job, state) in snap.all_runs.items():
            if state not in TERMINAL:
                by_job.setdefault(job, []).append(run_id)
        for job, ids in by_job.items():
            for start in range(0, len(ids), 25):
                await self.call("BatchStopJobRun", JobName=job, JobRunIds=ids[start : start + 25])


# ---------------------------------------------------------------------------------------------
# What the stored state explains


_ARN_TARGET = re.compile(r"arn:aws:glue:[a-z0-9-]+:[0-9]{12}:(job|trigger)/(.+)", re.DOTALL)
_ANY_TARGET = re.compile(r".*?:(job|trigger)/(.+)", re.DOTALL)


def trigger_rule_broken(operation: str, params: dict[str, Json], before: Snapshot) -> bool:
    """Whether the trigger rules (beyond the model) refuse this request, as stored now."""
    now = datetime.now(UTC)
    try:
        if operation == "CreateTrigger":
            definition = normalized(
                {
                    k: v
                    for k, v in params.items()
                    if k not in ("Tags", "StartOnCreation") and v is not None
                }
            )
            check_trigger(
                definition,
                start_on_creation=bool(params.get("StartOnCreation")),
                schedule_fires_after=now,
            )
            return False
        changes = normalized({k: v for k, v in params["TriggerUpdate"].items() if v is not None})
        if changes.get("Name", params["Name"]) != params["Name"]:
            return True
        changes.pop("Name", None)
        stored = before.triggers.get(params["Name"])
        if stored is None:
            return False
        merged = {**to_glue(glue_pb2.Trigger.FromString(stored[1])), **changes}
        check_trigger(merged, schedule_fires_after=now if "Schedule" in changes else None)
        return False
    except InvalidInputException:
        return True


def expected_outcomes(
    operation: str, params: dict[str, Json], before: Snapshot
) -> tuple[set[str], set[tuple[str, str]]]:
    """For a model-valid request: the outcomes the state explains ("OK" or an error code),
    and the stored keys a success may change."""
    jobs, triggers = before.jobs, before.triggers
    if operation == "CreateJob":
        return ({"AlreadyExistsException"} if params["Name"] in jobs else {"OK"}), {
            ("job", params["Name"])
        }
    if operation == "UpdateJob":
        name = params["JobName"]
        return ({"OK"} if name in jobs else {"EntityNotFoundException"}), {("job", name)}
    if operation == "StartJobRun":
        name = params["JobName"]
        if name not in jobs:
            return {"EntityNotFoundException"}, set()
        previous = params.get("JobRunId")
        if previous and before.all_runs.get(previous, ("",))[0] != name:
            return {"EntityNotFoundException"}, set()
        return {"OK", "ConcurrentRunsExceededException"}, {("run", "*")}
    if operation == "GetJobRuns":
        outcomes = {"OK"} if params["JobName"] in jobs else {"EntityNotFoundException"}
        if params.get("NextToken"):
            outcomes.add("InvalidInputException")
        return outcomes, set()
    if operation in ("GetJobs", "ListJobs", "GetTriggers"):
        return ({"OK", "InvalidInputException"} if params.get("NextToken") else {"OK"}), set()
    if operation in ("BatchGetJobs", "BatchStopJobRun"):
        return {"OK"}, set()
    if operation in ("CreateTrigger", "UpdateTrigger"):
        name = params["Name"]
        update = params["TriggerUpdate"] if operation == "UpdateTrigger" else params
        actions = update.get("Actions") or []
        missing_jobs = {a.get("JobName") for a in actions if a.get("JobName")} - set(jobs)
        if trigger_rule_broken(operation, params, before):
            outcomes = {"InvalidInputException"}
            if operation == "UpdateTrigger" and name not in triggers:
                outcomes.add("EntityNotFoundException")
        elif operation == "CreateTrigger":
            if name in triggers:
                outcomes = {"AlreadyExistsException"}
            elif missing_jobs:
                outcomes = {"EntityNotFoundException"}
            else:
                outcomes = {"OK"}
        else:
            outcomes = (
                {"EntityNotFoundException"} if name not in triggers or missing_jobs else {"OK"}
            )
        return outcomes, {("trigger", name)}
    if operation in ("TagResource", "UntagResource", "GetTags"):
        arn = params["ResourceArn"]
        loose = _ANY_TARGET.fullmatch(arn)
        touched = {(loose[1], loose[2])} if loose else set()
        target = _ARN_TARGET.fullmatch(arn)
        if target is None:
            # Another partition, no region, a workflow ...: refused, or taken like a job's.
            return {"OK", "InvalidInputException", "EntityNotFoundException"}, touched
        kind, name = target[1], target[2]
        stored = jobs if kind == "job" else triggers
        if name not in stored:
            # A name no job or trigger can have (NUL ...) may also be refused outright.
            return {"EntityNotFoundException", "InvalidInputException"}, touched
        if operation == "TagResource":
            held = stored[name][-1]
            assert isinstance(held, dict)
            if len({**held, **params["TagsToAdd"]}) > 50:
                return {"InvalidInputException"}, touched
        return {"OK"}, touched
    raise AssertionError(f"no expectations for {operation}")


def check_success(
    operation: str,
    params: dict[str, Json],
    body: Json,
    before: Snapshot,
    after: Snapshot,
    where: str,
) -> None:
    """Light checks of what a success says (``body``, in Glue form) and did."""
    if operation == "CreateJob":
        assert body == {"Name": params["Name"]}, where
        assert after.jobs[params["Name"]][2] == (params.get("Tags") or {}), where
        stored = to_glue(glue_pb2.Job.FromString(after.jobs[params["Name"]][1]))
        sent = {k: v for k, v in params.items() if k != "Tags"}
        assert_echoes(sent, stored, "Job", where)
    elif operation == "UpdateJob":
        stored = to_glue(glue_pb2.Job.FromString(after.jobs[params["JobName"]][1]))
        assert_echoes(params["JobUpdate"], stored, "Job", where)
        for member in set(to_glue(glue_pb2.Job.FromString(before.jobs[params["JobName"]][1]))):
            # UpdateJob replaces the definition: what it leaves out is gone (or a default).
            if member not in params["JobUpdate"] and member not in DEFAULTED:
                # CreatedBy is not Glue's: who created the job stays recorded.
                assert member in ("Name", "CreatedOn", "LastModifiedOn", "CreatedBy") or (
                    member not in stored
                ), f"UpdateJob kept {member}, which the update left out:{where}"
    elif operation == "CreateTrigger":
        stored = to_glue(glue_pb2.Trigger.FromString(after.triggers[params["Name"]][1]))
        sent = {k: v for k, v in params.items() if k not in ("Tags", "StartOnCreation")}
        assert_echoes(normalized(sent), stored, "Trigger", where)
    elif operation == "StartJobRun":
        run_id = body.get("JobRunId")
        assert isinstance(run_id, str) and re.fullmatch(r"jr_[0-9a-f]{64}", run_id), where
        assert after.runs.get(run_id) == params["JobName"], f"run not stored:{where}"
    elif operation == "BatchStopJobRun":
        ids = [s["JobRunId"] for s in body["SuccessfulSubmissions"]]
        ids += [e["JobRunId"] for e in body["Errors"]]
        assert sorted(ids) == sorted(params["JobRunIds"]), f"ids lost or invented:{where}"
        for ok in body["SuccessfulSubmissions"]:
            assert before.all_runs.get(ok["JobRunId"], ("",))[0] == params["JobName"], where
    elif operation == "BatchGetJobs":
        asked = list(dict.fromkeys(params["JobNames"]))
        found = [j["Name"] for j in body["Jobs"]]
        assert found == [n for n in asked if n in before.jobs], where
        assert body["JobsNotFound"] == [n for n in asked if n not in before.jobs], where
    elif operation == "GetJobRuns":
        for run in body["JobRuns"]:
            assert run["JobName"] == params["JobName"], where
            assert run["Id"] in after.all_runs, where
    elif operation == "ListJobs":
        wanted = params.get("Tags") or {}
        for name in body["JobNames"]:
            tags = after.jobs[name][2]
            assert all(tags.get(k) == v for k, v in wanted.items()), where
    elif operation == "TagResource":
        kind, name = _ANY_TARGET.fullmatch(params["ResourceArn"]).groups()  # type: ignore[union-attr]
        held = (before.jobs if kind == "job" else before.triggers)[name][-1]
        now = (after.jobs if kind == "job" else after.triggers)[name][-1]
        assert now == {**held, **params["TagsToAdd"]}, where  # type: ignore[dict-item]
    elif operation == "UntagResource":
        kind, name = _ANY_TARGET.fullmatch(params["ResourceArn"]).groups()  # type: ignore[union-attr]
        held = (before.jobs if kind == "job" else before.triggers)[name][-1]
        now = (after.jobs if kind == "job" else after.triggers)[name][-1]
        removed = set(params["TagsToRemove"])
        assert isinstance(held, dict)
        assert now == {k: v for k, v in held.items() if k not in removed}, where
    elif operation == "UpdateTrigger":
        assert body["Trigger"]["Name"] == params["Name"], where
        changes = {k: v for k, v in params["TriggerUpdate"].items() if v is not None}
        stored = to_glue(glue_pb2.Trigger.FromString(after.triggers[params["Name"]][1]))
        assert_echoes(normalized(changes), stored, "Trigger", where)
        assert_echoes(normalized(changes), body["Trigger"], "the answer's Trigger", where)


# Job members GetJob shows with a default when a definition leaves them out.
# The members a job takes AWS's default for when left out (catalog_service/glue_defaults.py,
# docs/glue-fidelity.md).
DEFAULTED = frozenset(
    {
        "Timeout",
        "MaxRetries",
        "ExecutionProperty",
        "GlueVersion",
        "JobMode",
        "ExecutionClass",
        "AllocatedCapacity",
        "MaxCapacity",
    }
)


def assert_echoes(sent: Json, stored: Json, path: str, where: str) -> None:
    """Every member a request set is stored as sent (absent, null and empty are alike)."""
    if isinstance(sent, dict) and isinstance(stored, dict):
        for key, value in sent.items():
            if value is None or value in ({}, []):
                continue
            assert key in stored, f"{path}.{key} was sent but not stored:{where}"
            if isinstance(value, dict) and key not in MAP_MEMBERS:
                assert_echoes(value, stored[key], f"{path}.{key}", where)
            elif isinstance(value, list) and value and isinstance(value[0], dict):
                assert len(value) == len(stored[key]), f"{path}.{key} lost items:{where}"
                for index, (one, other) in enumerate(zip(value, stored[key], strict=True)):
                    assert_echoes(one, other, f"{path}.{key}[{index}]", where)
            else:
                assert stored[key] == value, (
                    f"{path}.{key}: sent {value!r:.200}, stored {stored[key]!r:.200}:{where}"
                )
    else:
        assert stored == sent, f"{path}: sent {sent!r:.200}, stored {stored!r:.200}:{where}"


# Members whose value is a map (compared whole), not a structure (compared member by member).
MAP_MEMBERS = frozenset(
    {"DefaultArguments", "NonOverridableArguments", "Arguments", "CodeGenConfigurationNodes"}
)


async def check_run_leaves_starting(world: CatalogWorld, run_id: str, where: str) -> None:
    """An admitted run must start, wait or end; a run stuck in STARTING holds a slot forever."""
    deadline = time.monotonic() + 8
    state = None
    while time.monotonic() < deadline:
        state = await world.run_state(run_id)
        if state not in (None, "STARTING"):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} still {state} after 8 s:{where}")
