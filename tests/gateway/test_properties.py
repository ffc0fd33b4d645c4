"""Property tests of the HTTP gateway: requests generated from botocore's Glue input shapes.

Hypothesis walks each operation's input shape (structures, lists, maps, strings with their
enums, patterns and lengths, integers with their bounds, doubles, booleans) and builds requests
that are valid per the model, then (about half the time) breaks one thing in them on purpose: a
wrong JSON type, a string too long or too short, a number out of range, a bad enum value, a
broken pattern, a list or map too large, an unknown member, a missing (or null) required
member. Every request goes out as raw HTTP on the test's loop (aiohttp, not boto3, which would
refuse invalid input before sending it), JSON-escaped or as raw UTF-8.

Names are drawn mostly from a small pool of jobs, triggers and runs that exist (made by the
``world`` fixture: two jobs, one with a run in flight, three triggers, tags), so that valid
requests often hit existing entities; creates mostly get fresh names; ScriptLocation often
names a real script, so StartJobRun starts real, short processes. NextTokens are real ones the
gateway handed out, forged ones (right or wrong listing, odd keys) or junk.

Checked for every request (``exercise``):
- never a 5xx; every response has x-amzn-RequestId, the AWS JSON 1.1 Content-Type and a JSON
  object body; every error body has ``__type`` and ``message``; the status is 200 or 400, and a
  400's ``__type`` is one the operation's model lists or one of GENERAL_ERRORS;
- a request the model rejects (``catalog_service.validation.find_violations`` is not empty, and
  every deliberately broken request must be such a one) gets 400 InvalidInputException and
  changes nothing in the catalog; one holding a lone surrogate (valid JSON, not Unicode) may
  also get SerializationException;
- a request the model accepts succeeds or fails with the error the stored state explains
  (``expected_outcomes``: unknown job, trigger or run, name taken, concurrency, a trigger rule
  per ``catalog_service.trigger_rules``, a NextToken of another listing ...); when it fails
  nothing changes, and when it succeeds only its own job, trigger or run changes, the stored
  definition holds every member the request set, and the answer agrees with the state;
- a run StartJobRun admitted leaves STARTING (it runs, waits or ends) within seconds.

``test_bodies_that_are_not_requests`` sends bodies that are not JSON objects, or not JSON:
400 SerializationException, nothing changes. ``test_found_cases`` keeps every request the
generators found a bug with as a plain case, checked the same way.

The stored state is read from the catalog's tables (jobs with their tags and versions,
triggers, the ids of runs started by StartJobRun); run states are left out because runs move
on by themselves, and runs a trigger started are left out because schedules fire on their own.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import botocore.session
import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from catalog_service import tables
from catalog_service.trigger_rules import check_trigger, normalized
from catalog_service.validation import find_violations
from glue.v1 import glue_pb2
from servicekit.errors import InvalidInputException
from servicekit.glue_shapes import to_glue
from tests.conftest import Stack
from tests.helpers.scripts import SLEEP, SUCCEED, write_script

MODEL = botocore.session.get_session().get_service_model("glue")
REGION = "eu-west-1"
ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/glue"
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
TERMINAL = frozenset({"STOPPED", "SUCCEEDED", "FAILED", "TIMEOUT", "ERROR", "EXPIRED"})
# Errors any operation may answer besides the ones its model lists: the domain errors of this
# service and AWS JSON's SerializationException (GLUE-SEMANTICS.md section 5).
GENERAL_ERRORS = frozenset(
    {
        "InvalidInputException",
        "EntityNotFoundException",
        "AlreadyExistsException",
        "ConcurrentRunsExceededException",
        "SerializationException",
    }
)
NOT_REPRESENTABLE = frozenset({"InvalidInputException", "SerializationException"})

GROUPS: dict[str, tuple[str, ...]] = {
    "jobs": ("CreateJob", "UpdateJob", "GetJobs", "ListJobs", "BatchGetJobs", "StartJobRun"),
    "runs": ("StartJobRun", "GetJobRuns", "BatchStopJobRun", "StartJobRun", "UpdateJob"),
    "triggers": ("CreateTrigger", "UpdateTrigger", "GetTriggers"),
    "tags": ("TagResource", "UntagResource", "GetTags"),
}
ALL_OPERATIONS = tuple(op for ops in GROUPS.values() for op in ops)

# Fixed examples by default, so that the suite's verdict on a commit does not depend on luck;
# GLUE_PROPERTY_EXPLORE=N runs N fresh random examples per case instead, to look for new bugs.
EXPLORE = int(os.environ.get("GLUE_PROPERTY_EXPLORE", "0"))
SETTINGS = settings(
    max_examples=EXPLORE or 150,
    deadline=None,
    database=None,
    derandomize=not EXPLORE,
    # No explain phase: it replays an example hundreds of times, each a real request (and
    # often a real run), for little insight into a stateful system.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)

# Pools the names are drawn from (besides whatever exists): some exist, some do not (yet).
JOB_POOL = ("alpha", "busy", "beta", "gamma", "Ünïcödé job ✓", "tab\there", "x" * 255)
TRIGGER_POOL = ("nightly", "manual", "watch", "t-new", "t-ünï", "y" * 255)
TAG_KEYS = ("team", "env", "owner", "k")
CRON_POOL = (
    "cron(0 10 * * ? *)",
    "cron(15 12 * * ? *)",
    "cron(0 18 ? * MON-FRI *)",
    "cron(0 8 1 * ? *)",
    "cron(0/15 * * * ? *)",
    "cron(0/5 8-17 ? * MON-FRI *)",
    "cron(0 12 L * ? *)",
    "cron(0 12 15W * ? *)",
    "cron(0 12 ? * 6#3 *)",
    "cron(0 12 ? * 6L *)",
    "cron(0 0 29 2 ? *)",
    "cron(0 0 30 2 ? *)",
    "cron(0 0 1 1 ? 1999)",
    "cron(* * * * ? *)",
    "cron(0 10 * * * *)",
    "cron(0 10 1 * 2 *)",
    "cron(0 10 * *)",
    "cron(61 10 * * ? *)",
    "cron(0 10 ? * 8 *)",
    "cron(0 10 ? * 6#6 *)",
    "cron(0 10 * * ? 2200)",
    "0 10 * * ? *",
    "rate(5 minutes)",
    "cron()",
    "CRON(0 10 * * ? *)",
    " cron(0 10 * * ? *) ",
)
CRON_TOKENS = (
    "*", "?", "0", "5", "59", "60", "0/5", "*/10", "1-5", "5-1", "1,2,3", "L", "5L", "15W",
    "LW", "3#2", "MON-FRI", "JAN", "jan-dec", "SUN", "2030", "1969", "-1", "/", ",", "-",
    "99999999999999999999", "1/0", "0/0", "#", "W", "L-3", "", "٣",
)  # fmt: skip

# Characters a Glue name may hold (the NameString pattern), and what breaks it.
NAME_CHARS = st.characters(exclude_categories=("Cc", "Cs", "Cn")) | st.just("\t")
NAME_BREAKERS = ("\n", "\r", "\x00", "\x1f", "\x7f\n", "\ufffe", "\uffff", "\ud800")
DESCRIPTION_BREAKERS = ("\x00", "\x0b", "\x1b", "\ufffe", "\udfff")
NAME_PATTERN = MODEL.shape_for("NameString").metadata["pattern"]
DESCRIPTION_PATTERN = MODEL.shape_for("DescriptionString").metadata["pattern"]

Json = Any
Draw = Callable[[st.SearchStrategy[Any]], Any]


# ---------------------------------------------------------------------------------------------
# The world: the stack, an HTTP session on its gateway, and a view of the stored state


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


@dataclass
class Answer:
    """One HTTP exchange."""

    operation: str
    body: bytes
    status: int
    headers: dict[str, str]
    raw: bytes
    payload: Json = None

    def describe(self) -> str:
        sent = self.body if len(self.body) <= 1500 else self.body[:1500] + b"...(cut)"
        got = self.raw if len(self.raw) <= 1500 else self.raw[:1500] + b"...(cut)"
        return (
            f"\nPOST / X-Amz-Target: AWSGlue.{self.operation}\n  body: {sent!r}\n"
            f"  -> HTTP {self.status} {got!r}"
        )

    @property
    def error(self) -> str | None:
        if self.status == 200 or not isinstance(self.payload, dict):
            return None
        code = self.payload.get("__type")
        return code if isinstance(code, str) else None


class World:
    """The stack under test, and what the test knows about it.

    A plain class, not a dataclass: Hypothesis prints a dataclass argument field by field in
    a falsifying example, and this one holds the whole stack.
    """

    def __init__(
        self,
        stack: Stack,
        engine: AsyncEngine,
        session: aiohttp.ClientSession,
        port: int,
        ok_script: Path,
        sleep_script: Path,
    ) -> None:
        self.stack = stack
        self.engine = engine
        self.session = session
        self.port = port
        self.ok_script = ok_script
        self.sleep_script = sleep_script
        self.last: Snapshot | None = None
        """The latest snapshot (what the generators draw names from)."""
        self.serial = 0
        """Numbers fresh names for creates."""
        self.tokens: list[str] = []
        """NextTokens the gateway handed out (any listing), for requests to pass back."""

    def __repr__(self) -> str:
        return f"World(gateway on port {self.port})"

    async def post(self, operation: str, body: bytes) -> Answer:
        async with self.session.post(
            f"http://127.0.0.1:{self.port}/",
            # aiohttp warns about (and so, here, fails on) large bodies passed as bytes.
            data=io.BytesIO(body) if len(body) > 2**18 else body,
            headers={
                "X-Amz-Target": f"AWSGlue.{operation}",
                "Content-Type": "application/x-amz-json-1.1",
            },
        ) as response:
            raw = await response.read()
            answer = Answer(
                operation,
                body,
                response.status,
                {k.lower(): v for k, v in response.headers.items()},
                raw,
            )
        try:
            answer.payload = json.loads(raw)
        except ValueError:
            answer.payload = None
        return answer

    async def call(self, operation: str, **params: Json) -> Json:
        """A request that must succeed (setup and teardown)."""
        answer = await self.post(operation, json.dumps(params).encode())
        assert answer.status == 200, answer.describe()
        return answer.payload

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
                body = json.dumps({"JobName": job, "JobRunIds": ids[start : start + 25]})
                await self.post("BatchStopJobRun", body.encode())


@pytest.fixture
async def world(stack: Stack, tmp_path: Path) -> AsyncIterator[World]:
    """The stack with its gateway, set up with a few jobs, runs and triggers."""
    assert stack.catalog is not None
    assert stack.catalog.http_port, "mark the test with catalog_settings(http_listen=...)"
    engine = create_async_engine(stack.catalog_url)
    session = aiohttp.ClientSession()
    w = World(
        stack=stack,
        engine=engine,
        session=session,
        port=stack.catalog.http_port,
        ok_script=write_script(tmp_path, "ok.py", SUCCEED),
        sleep_script=write_script(tmp_path, "sleep.py", SLEEP),
    )
    try:
        await w.setup()
        yield w
    finally:
        try:
            await w.stop_runs()
        finally:
            await session.close()
            await engine.dispose()


# ---------------------------------------------------------------------------------------------
# Generators: valid values per shape, with the names biased toward what exists


def chance(draw: Draw, percent: int) -> bool:
    """True about ``percent`` % of the time; shrinks toward False."""
    return bool(draw(st.integers(0, 99)) >= 100 - percent)


def exact_length(length: int, chars: str = "aé😀\t") -> st.SearchStrategy[str]:
    """A string of exactly ``length`` code points (cheap for the long limits)."""
    return st.sampled_from(chars if length <= 10_000 else "a").map(lambda c: c * length)


def name_text(min_size: int = 1, max_size: int = 255) -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(NAME_CHARS, min_size=min_size, max_size=min(max_size, 12)),
        exact_length(max_size),
    )


def generic_text(min_size: int = 0, max_size: int | None = None) -> st.SearchStrategy[str]:
    """Text for a string with no pattern: any code point, NUL and other controls included."""
    cap = 16 if max_size is None else min(max_size, 16)
    cap = max(cap, min_size)
    choices = [
        st.text(st.characters(codec="ascii"), min_size=min_size, max_size=cap),
        st.text(min_size=min_size, max_size=cap),
    ]
    if max_size is not None:
        choices.append(exact_length(max_size, "aé😀\x00"))
    text = st.one_of(choices)
    if min_size > 1:
        return text
    # Now and then a lone surrogate: JSON carries one (as a \udXXX escape), Unicode does not.
    return st.integers(0, 99).flatmap(lambda n: lone_surrogate_text() if n >= 96 else text)


def lone_surrogate_text() -> st.SearchStrategy[str]:
    """Text JSON can carry (as \\udXXX escapes) but that is not Unicode: a lone surrogate."""
    return st.tuples(
        st.text(max_size=3), st.characters(categories=["Cs"]), st.text(max_size=3)
    ).map("".join)


def cron_text() -> st.SearchStrategy[str]:
    fields = st.lists(st.sampled_from(CRON_TOKENS), min_size=0, max_size=7)
    built = st.tuples(fields, st.sampled_from((" ", "  ", "\t"))).map(
        lambda parts: f"cron({parts[1].join(parts[0])})"
    )
    return st.one_of(
        st.sampled_from(CRON_POOL[:10]), st.sampled_from(CRON_POOL), built, generic_text()
    )


def pick(draw: Draw, items: Sequence[str]) -> str:
    """One of ``items`` (not empty), drawn the same way whatever their number.

    The pools grow as the test creates things; drawing an index from a fixed range keeps the
    draws of an example independent of the state (Hypothesis requires that).
    """
    return items[int(draw(st.integers(0, 1023))) % len(items)]


def pool(constants: Sequence[str], existing: Sequence[str]) -> list[str]:
    """The constant pool first (stable indexes), then whatever else exists."""
    return [*constants, *sorted(set(existing) - set(constants))]


def token_text(world: World, draw: Draw) -> str:
    """A NextToken: forged ones that decode (right or wrong listing, odd keys), or junk."""
    snap = world.last
    jobs = pool(JOB_POOL, sorted(snap.jobs) if snap else [])
    listing = draw(
        st.one_of(
            st.sampled_from(["jobs", "triggers", "runs:"]),
            generic_text(),
        )
    )
    if listing == "runs:":
        listing += pick(draw, jobs)
    scalar = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        generic_text(),
        st.sampled_from(JOB_POOL),
    )
    key = draw(
        st.one_of(
            st.lists(scalar, max_size=3),
            st.lists(
                st.lists(scalar, max_size=2)
                | st.dictionaries(st.text(max_size=2), scalar, max_size=2),
                max_size=2,
            ),
            scalar,
        )
    )
    which = draw(st.sampled_from(["forged", "real", "junk"]))
    index = int(draw(st.integers(0, 1023)))
    junk = str(draw(generic_text(min_size=1)))
    if which == "real" and world.tokens:
        return world.tokens[index % len(world.tokens)]
    if which == "junk":
        return junk
    raw = json.dumps({"l": listing, "k": key}).encode()
    text = base64.urlsafe_b64encode(raw).decode()
    return text.rstrip("=") if chance(draw, 50) else text


@dataclass
class Generator:
    """Valid values for the Glue shapes, biased toward the world's names."""

    world: World
    draw: Draw

    # -- names -------------------------------------------------------------------------------

    def job_name(self, *, new: bool = False) -> str:
        snap = self.world.last
        return self.name(JOB_POOL, sorted(snap.jobs) if snap else [], new=new)

    def trigger_name(self, *, new: bool = False) -> str:
        snap = self.world.last
        return self.name(TRIGGER_POOL, sorted(snap.triggers) if snap else [], new=new)

    def name(self, constants: Sequence[str], existing: Sequence[str], *, new: bool) -> str:
        """Mostly a name that exists, else one of the pool (which may not), else any name;
        for a create (``new``), mostly one of the pool or any name."""
        which = self.draw(st.integers(0, 99))
        index = int(self.draw(st.integers(0, 1023)))
        # Hypothesis often repeats an example with small changes; a create that succeeded
        # once would then only ever meet AlreadyExists. A serial number keeps some fresh.
        fresh = new and chance(self.draw, 50)
        names = pool(constants, existing)
        if which >= (65 if new else 85):
            name = str(self.draw(name_text()))
        elif which >= (25 if new else 60) or not existing:
            name = names[index % len(names)]
        else:
            name = existing[index % len(existing)]
        if fresh:
            self.world.serial += 1
            suffix = f"-{self.world.serial}"
            name = name[: 255 - len(suffix)] + suffix
        return name

    def run_id(self, job: str | None = None) -> str:
        snap = self.world.last
        runs = sorted(snap.all_runs) if snap else []
        mine = sorted(snap.runs_of(job)) if snap and job else []
        which = self.draw(st.sampled_from(["of the job", "any", "new"]))
        # Every branch draws the same things, whatever exists (see ``pick``).
        index = int(self.draw(st.integers(0, 1023)))
        fresh = str(
            self.draw(
                st.one_of(
                    st.text("0123456789abcdef", min_size=64, max_size=64).map(lambda h: "jr_" + h),
                    name_text(),
                )
            )
        )
        if which == "of the job" and mine:
            return mine[index % len(mine)]
        if which != "new" and runs:
            return runs[index % len(runs)]
        return fresh

    def arn(self) -> str:
        kind = self.draw(st.sampled_from(["job", "trigger", "job", "trigger", "job", "workflow"]))
        name = self.job_name() if kind == "job" else self.trigger_name()
        if chance(self.draw, 80):
            return f"arn:aws:glue:{REGION}:{ACCOUNT}:{kind}/{name}"
        return str(
            self.draw(
                st.one_of(
                    st.just(f"arn:aws-cn:glue:cn-north-1:{ACCOUNT}:{kind}/{name}"),
                    st.just(f"arn:aws:glue:::{kind}/{name}"),
                    st.just(f"arn:aws:glue:{REGION}:{ACCOUNT}:{kind}/"),
                    st.just(f"arn:aws:glue:{REGION}:{ACCOUNT}:{kind}"),
                    generic_text()
                    .filter(lambda t: "\n" not in t)
                    .map(lambda t: "arn:aws:glue:" + t),
                    st.just(f"arn:aws:glue:{REGION}:{ACCOUNT}:{kind}/{name}\x00"),
                    st.just("arn:aws:glue:" + "z" * 10227),
                )
            )
        )

    # -- values ------------------------------------------------------------------------------

    def value(self, shape: Any, member: str, owner: str, depth: int = 0) -> Json:
        """A valid value of ``shape`` for ``member`` of the structure ``owner``."""
        special = self.special(shape, member, owner)
        if special is not _NONE:
            return special
        kind = shape.type_name
        meta = shape.metadata
        if kind == "structure":
            return self.structure(shape, depth + 1)
        if kind == "list":
            low = int(meta.get("min", 0))
            high = int(meta.get("max", 4))
            if chance(self.draw, 3) and "max" in meta and high <= 500:
                size = high
            elif low == 0 and chance(self.draw, 12):
                size = 0
            else:
                size = self.draw(st.integers(max(low, 1), max(low, 1, min(high, 3))))
            return [self.value(shape.member, member, owner, depth + 1) for _ in range(size)]
        if kind == "map":
            low = int(meta.get("min", 0))
            high = int(meta.get("max", 4))
            if chance(self.draw, 3) and "max" in meta:
                size = high
            else:
                size = self.draw(st.integers(low, max(low, min(high, 3))))
            out: dict[str, Json] = {}
            for _ in range(size * 3):
                if len(out) >= size:
                    break
                key = self.value(shape.key, member + "#key", owner, depth + 1)
                out[key] = self.value(shape.value, member + "#value", owner, depth + 1)
            return out
        if kind == "string":
            return self.string(shape)
        if kind in ("integer", "long"):
            low, high = INT32 if kind == "integer" else INT64
            low = max(low, int(meta.get("min", low)))
            high = min(high, int(meta.get("max", high)))
            return self.draw(
                st.one_of(
                    st.sampled_from(sorted({low, high, min(low + 1, high)})),
                    st.integers(max(low, -3), min(high, max(low, -3) + 50)),
                    st.integers(low, high),
                )
            )
        if kind in ("double", "float"):
            return self.draw(
                st.one_of(
                    st.integers(0, 100),
                    st.floats(0, 1000, allow_nan=False, allow_infinity=False),
                    st.floats(allow_nan=False, allow_infinity=False),
                )
            )
        if kind == "boolean":
            return self.draw(st.booleans())
        if kind == "timestamp":
            return self.draw(st.floats(0, 4e9))
        raise AssertionError(f"no generator for {shape.name} ({kind})")

    def string(self, shape: Any) -> str:
        meta = shape.metadata
        low = int(meta.get("min", 0))
        high = int(meta["max"]) if "max" in meta else None
        if shape.enum:
            return str(self.draw(st.sampled_from(list(shape.enum))))
        pattern = meta.get("pattern")
        if pattern == NAME_PATTERN:
            return str(self.draw(name_text(max(low, 1), high or 255)))
        if pattern == DESCRIPTION_PATTERN:
            chars = NAME_CHARS | st.sampled_from("\r\n")
            return str(
                self.draw(
                    st.one_of(
                        st.text(chars, max_size=20),
                        exact_length(high or 2048, "a\n😀"),
                    )
                )
            )
        if shape.name == "GlueVersionString":
            return str(
                self.draw(
                    st.one_of(
                        st.sampled_from(["0.9", "1.0", "2.0", "3.0", "4.0", "5.0", "10.x_y.z"]),
                        st.from_regex(r"\A([A-Za-z0-9_]{1,3}\.){1,3}[A-Za-z0-9_]{1,3}\Z"),
                    )
                )
            )
        if shape.name == "PythonVersionString":
            return str(self.draw(st.sampled_from(["2", "3", "3.9"])))
        if shape.name == "MaintenanceWindow":
            day = self.draw(st.sampled_from(["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]))
            hour = self.draw(st.sampled_from(["0", "00", "7", "09", "13", "23"]))
            return f"{day}:{hour}"
        if shape.name == "NodeId":
            return str(self.draw(st.from_regex(r"\A[A-Za-z0-9_-]{0,8}\Z")))
        if shape.name == "GlueResourceArn":
            return self.arn()
        if pattern is not None and pattern != ".*":
            raise AssertionError(f"no generator for the pattern of {shape.name}: {pattern}")
        text = self.draw(generic_text(low, high))
        if pattern == ".*":
            text = text.replace("\n", " ")
        return str(text)

    def structure(self, shape: Any, depth: int = 0) -> dict[str, Json]:
        out: dict[str, Json] = {}
        # What a trigger's action and condition need to be usable, most of the time.
        required = set(shape.required_members) | set(USUALLY.get(shape.name, ()))
        members = shape.members
        percent = max(15, min(60, 160 // max(len(members), 1)))
        usually = chance(self.draw, 85)
        for name, member in members.items():
            if name in shape.required_members or (usually and name in required):
                out[name] = self.value(member, name, shape.name, depth)
                continue
            rare = name in RARE_MEMBERS or depth > 4
            if chance(self.draw, 4 if rare else MEMBER_PERCENT.get(name, percent)):
                if chance(self.draw, 4):
                    out[name] = None  # JSON null: the same as absent
                else:
                    out[name] = self.value(member, name, shape.name, depth)
        return out

    def special(self, shape: Any, member: str, owner: str) -> Json:
        """The biased generators, by member (and owning structure); _NONE when there is none."""
        draw = self.draw
        if owner == "CreateJobRequest" and member == "Name":
            return self.job_name(new=True)
        if owner == "CreateTriggerRequest" and member == "Name":
            return self.trigger_name(new=True)
        if owner in ("UpdateTriggerRequest", "TriggerUpdate") and member == "Name":
            return self.trigger_name()
        is_string = shape.type_name == "string"
        if member in ("JobName", "DependentJobName", "JobNames") and is_string:
            return self.job_name()
        if member in ("JobRunId", "JobRunIds") and is_string:
            return self.run_id()
        if member == "Role":
            return ROLE if chance(draw, 80) else self.string(shape)
        if owner == "JobCommand" and member == "Name":
            if chance(draw, 80):
                return str(draw(st.sampled_from(["pythonshell", "glueetl", "pythonshell"])))
            return self.string(shape)
        if member == "ScriptLocation":
            ok = str(self.world.ok_script)
            if chance(draw, 80):
                where = [ok, ok, "file://" + ok, "/no/such/script.py", "s3://b/x.py", ok + "\x00"]
                return str(draw(st.sampled_from(where)))
            return self.string(shape)
        if member == "Schedule":
            return str(draw(cron_text()))
        if member == "NextToken":
            return token_text(self.world, draw)
        if member == "Timeout":
            return draw(
                st.one_of(st.integers(1, 60), st.sampled_from([1, 10080, 10081, 2**31 - 1]))
            )
        if member == "MaxConcurrentRuns":
            return draw(st.one_of(st.integers(1, 4), st.sampled_from([0, 1000, 1001, -1])))
        if member in ("MaxRetries", "NumberOfWorkers", "AllocatedCapacity"):
            return draw(st.one_of(st.integers(0, 5), st.sampled_from([-1, 2**31 - 1])))
        if member == "MaxCapacity":
            return draw(
                st.one_of(st.floats(0, 100, allow_nan=False), st.sampled_from([-0.5, 0, 1e300]))
            )
        if member in ("Arguments", "DefaultArguments", "NonOverridableArguments") and (
            shape.type_name == "map"
        ):
            key = st.one_of(
                st.sampled_from(["--day", "day", "--seconds", "--JOB_NAME", "", "--", "--x y"]),
                generic_text(),
            )
            values = st.one_of(st.sampled_from(["0", "1", "a b", ""]), generic_text())
            return draw(st.dictionaries(key, values, max_size=3))
        if member == "TagsToRemove":
            keys = st.one_of(st.sampled_from(TAG_KEYS), generic_text(1, 128))
            return draw(st.lists(keys, max_size=3))
        if member in ("Tags", "TagsToAdd") and shape.type_name == "map":
            keys = st.one_of(st.sampled_from(TAG_KEYS), generic_text(1, 128))
            values = generic_text(0, 256)
            if chance(draw, 10):
                return {f"k{i}": "v" for i in range(draw(st.integers(45, 50)))}
            return draw(st.dictionaries(keys, values, max_size=3))
        if owner == "Condition" and member == "State":
            return str(
                draw(
                    st.one_of(
                        st.sampled_from(["SUCCEEDED", "FAILED", "STOPPED", "TIMEOUT"]),
                        st.sampled_from(list(shape.enum)),
                    )
                )
            )
        if member == "CodeGenConfigurationNodes":
            node = st.dictionaries(
                st.sampled_from(["S3CsvSource", "ApplyMapping", "Name"]),
                st.one_of(
                    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
                    st.text(max_size=4),
                ),
                max_size=2,
            )
            return draw(st.dictionaries(st.from_regex(r"\A[A-Za-z0-9_-]{1,6}\Z"), node, max_size=2))
        return _NONE

    def request(self, operation: str) -> dict[str, Json]:
        shape = MODEL.operation_model(operation).input_shape
        params = self.structure(shape)
        # Operation-specific nudges toward requests that can succeed.
        if operation == "StartJobRun" and chance(self.draw, 70):
            for noisy in ("AllocatedCapacity", "MaxCapacity", "WorkerType", "NumberOfWorkers"):
                params.pop(noisy, None)
            if params.get("JobRunId") and chance(self.draw, 70):
                params["JobRunId"] = self.run_id(params["JobName"])
        if operation == "BatchStopJobRun" and chance(self.draw, 50):
            params["JobRunIds"] = [self.run_id(params["JobName"]) for _ in params["JobRunIds"]]
        if operation in ("CreateJob", "UpdateJob") and chance(self.draw, 60):
            target = params if operation == "CreateJob" else params["JobUpdate"]
            if operation == "UpdateJob":
                target.setdefault("Role", ROLE)
                target.setdefault("Command", {})
            if isinstance(target.get("Command"), dict):
                target["Command"]["Name"] = "pythonshell"
                target["Command"]["ScriptLocation"] = str(self.world.ok_script)
            for noisy in (
                "MaxCapacity",
                "Timeout",
                "MaxRetries",
                "AllocatedCapacity",
                "NumberOfWorkers",
                "ExecutionProperty",
            ):
                target.pop(noisy, None)
        if operation in ("CreateTrigger", "UpdateTrigger") and chance(self.draw, 70):
            self.tidy_trigger(operation, params)
        return params

    def tidy_trigger(self, operation: str, params: dict[str, Json]) -> None:
        """Make a generated trigger definition mostly keep the trigger rules."""
        # Drawn whatever the type, so that the draws do not depend on the stored state.
        schedule = self.draw(cron_text())
        predicate = self.structure(MODEL.shape_for("Predicate"))
        rename = self.draw(st.sampled_from(["drop", "same", "keep"]))
        if operation == "CreateTrigger":
            target, kind = params, params.get("Type")
        else:
            target = params["TriggerUpdate"]
            stored = self.world.last.triggers.get(params["Name"]) if self.world.last else None
            kind = glue_pb2.Trigger.FromString(stored[1]).type if stored else None
            if rename == "drop":
                target.pop("Name", None)
            elif rename == "same":
                target["Name"] = params["Name"]
        actions = [a for a in target.get("Actions") or [] if isinstance(a, dict)]
        for action in actions:
            action.pop("CrawlerName", None)
            action["JobName"] = action.get("JobName") or "alpha"
        if actions:
            target["Actions"] = actions
        elif operation == "CreateTrigger":
            target["Actions"] = [{"JobName": "alpha"}]
        else:
            target.pop("Actions", None)
        started = {a["JobName"] for a in target.get("Actions", [])}
        if kind == "SCHEDULED":
            target.setdefault("Schedule", schedule)
        else:
            target.pop("Schedule", None)
        if kind == "CONDITIONAL" and (operation == "CreateTrigger" or "Predicate" in target):
            given = target.get("Predicate") or predicate
            conditions = []
            for condition in given.get("Conditions") or []:
                condition = {k: v for k, v in condition.items() if not k.startswith("Crawl")}
                condition["JobName"] = condition.get("JobName") or "busy"
                condition["LogicalOperator"] = "EQUALS"
                if condition.get("State") not in ("SUCCEEDED", "FAILED", "STOPPED", "TIMEOUT"):
                    condition["State"] = "SUCCEEDED"
                if condition["JobName"] not in started:
                    conditions.append(condition)
            if not conditions and "busy" not in started:
                conditions = [{"LogicalOperator": "EQUALS", "JobName": "busy", "State": "FAILED"}]
            target["Predicate"] = {**given, "Conditions": conditions}
            if len(conditions) > 1:
                target["Predicate"].setdefault("Logical", "ANY")
        else:
            target.pop("Predicate", None)
        if kind not in ("SCHEDULED", "CONDITIONAL"):
            target.pop("StartOnCreation", None)


_NONE: Any = object()
# Optional members a structure usually gets (its useful minimum).
USUALLY = {
    "Action": ("JobName",),
    "Condition": ("JobName", "LogicalOperator", "State"),
    "Predicate": ("Conditions",),
    "JobCommand": ("Name", "ScriptLocation"),
}
# How often some optional members are present (percent); the others depend on their number.
MEMBER_PERCENT = {"NextToken": 20, "JobRunId": 30, "MaxResults": 30}
# Members that are rarely worth generating (they mostly lead to one known refusal).
RARE_MEMBERS = frozenset(
    {"CrawlerName", "CrawlState", "CodeGenConfigurationNodes", "SourceControlDetails"}
)


# ---------------------------------------------------------------------------------------------
# Breaking a valid request in one place


@dataclass
class Site:
    """A place in a request: the container, the key in it, and the model shape there."""

    container: Any
    key: Any
    shape: Any
    path: str


def sites(value: Json, shape: Any, path: str, container: Any, key: Any) -> list[Site]:
    """Every present value in a request with its shape (the request itself first)."""
    found = [Site(container, key, shape, path)]
    if value is None:
        return found
    if shape.type_name == "structure" and isinstance(value, dict):
        if shape.name == "CodeGenConfigurationNodes":
            return found
        for name, member in shape.members.items():
            if value.get(name) is not None:
                found += sites(value[name], member, f"{path}.{name}", value, name)
    elif shape.type_name == "list" and isinstance(value, list):
        for index, item in enumerate(value):
            found += sites(item, shape.member, f"{path}[{index}]", value, index)
    elif (
        shape.type_name == "map"
        and isinstance(value, dict)
        and shape.name != "CodeGenConfigurationNodes"
    ):
        for item_key, item in value.items():
            found += sites(item, shape.value, f"{path}[{item_key!r}]", value, item_key)
    return found


def wrong_types(shape: Any) -> list[Json]:
    """JSON values of a type the shape does not accept."""
    kind = shape.type_name
    candidates: list[Json] = ["7", 7, 1.5, True, [], {}, ["x"], {"a": "b"}]
    if kind == "string":
        return [c for c in candidates if not isinstance(c, str)]
    if kind in ("integer", "long"):
        return [c for c in candidates if isinstance(c, str | float | bool | list | dict)] + [7.0]
    if kind in ("double", "float", "timestamp"):
        return [c for c in candidates if isinstance(c, str | bool | list | dict)]
    if kind == "boolean":
        return [c for c in candidates if not isinstance(c, bool)] + ["true", 0, 1]
    if kind == "structure":
        return [c for c in candidates if not isinstance(c, dict)]
    if kind == "list":
        return [c for c in candidates if not isinstance(c, list)]
    if kind == "map":
        return [c for c in candidates if not isinstance(c, dict)] + [{"k": 1}, {"k": None}]
    return candidates


def breakages(site: Site, value: Json) -> list[tuple[str, Callable[[], None]]]:
    """(what, apply) for every way to make the value at ``site`` invalid."""
    shape, meta = site.shape, site.shape.metadata
    out: list[tuple[str, Callable[[], None]]] = []

    def put(new: Json) -> Callable[[], None]:
        def apply() -> None:
            site.container[site.key] = new

        return apply

    if site.container is not None and shape.name != "CodeGenConfigurationNodes":
        out.extend((f"wrong type {bad!r}", put(bad)) for bad in wrong_types(shape))
    kind = shape.type_name
    if kind == "string" and isinstance(value, str):
        if "max" in meta:
            over = int(meta["max"]) + 1
            out.append((f"{over} characters", put("é" * over)))
        if int(meta.get("min", 0)) >= 1:
            out.append(("too short", put(value[: int(meta["min"]) - 1])))
        if shape.enum:
            out += [("bad enum", put(value.lower())), ("bad enum", put("BOGUS"))]
        pattern = meta.get("pattern")
        if pattern == NAME_PATTERN:
            out += [(f"name with {c!r}", put(value[:3] + c + value[3:])) for c in NAME_BREAKERS]
        elif pattern == DESCRIPTION_PATTERN:
            out += [(f"description with {c!r}", put(value + c)) for c in DESCRIPTION_BREAKERS]
        elif shape.name == "GlueVersionString":
            out += [
                ("bad pattern", put(v)) for v in ("4", "4.", ".4", "4.0 ", "4.0\n", "4..0", "é.1")
            ]
        elif shape.name == "PythonVersionString":
            out += [("bad pattern", put(v)) for v in ("3.10", "1", "3\n", "")]
        elif shape.name == "MaintenanceWindow":
            out += [("bad pattern", put(v)) for v in ("Sun:24", "sun:1", "Sun 1", "Sun:1\n")]
        elif shape.name == "GlueResourceArn":
            out += [
                ("bad pattern", put(v))
                for v in ("arn:aws:s3:::b", "job/alpha", "arn:aws:glue:a\nb", "arn:aws-xx:glue:")
            ]
    if kind in ("integer", "long") and isinstance(value, int):
        low, high = INT32 if kind == "integer" else INT64
        if "min" in meta:
            out.append(("below min", put(int(meta["min"]) - 1)))
        if "max" in meta:
            out.append(("above max", put(int(meta["max"]) + 1)))
        out += [("beyond the int range", put(high + 1)), ("beyond the int range", put(low - 1))]
        out.append(("huge", put(10**30)))
    if kind == "list" and isinstance(value, list):
        if "max" in meta:
            item = value[0] if value else None
            out.append(("too many items", put([item] * (int(meta["max"]) + 1))))
        if int(meta.get("min", 0)) > 0:
            out.append(("too few items", put([])))
        out.append(("null item", put([*value, None])))
    if kind == "map" and isinstance(value, dict) and "max" in meta:
        out.append(("too many entries", put({f"k{i}": "v" for i in range(int(meta["max"]) + 1)})))
    if (
        kind == "structure"
        and isinstance(value, dict)
        and shape.name != "CodeGenConfigurationNodes"
    ):
        members = list(shape.members)
        unknown = ["Bogus", "__proto__", "", "name\n", "x" * 300]
        if members:
            unknown.append(members[0].lower())
            unknown.append(members[0].upper())
        for name in unknown:
            out.append((f"unknown member {name[:20]!r}", _add(value, name)))
        for name in shape.required_members:
            out.append((f"missing {name}", _drop(value, name)))
            out.append((f"null {name}", _set(value, name, None)))
    return out


def _add(target: dict[str, Json], name: str) -> Callable[[], None]:
    def apply() -> None:
        target[name] = "x"

    return apply


def _drop(target: dict[str, Json], name: str) -> Callable[[], None]:
    def apply() -> None:
        target.pop(name, None)

    return apply


def _set(target: dict[str, Json], name: str, new: Json) -> Callable[[], None]:
    def apply() -> None:
        target[name] = new

    return apply


def break_request(draw: Draw, operation: str, params: dict[str, Json]) -> str:
    """Break ``params`` in one place (in place); returns what was broken."""
    shape = MODEL.operation_model(operation).input_shape
    every = sites(params, shape, operation, None, None)
    options: list[tuple[str, Callable[[], None]]] = []
    while not options:
        site = draw(st.sampled_from(every))
        value = params if site.container is None else site.container[site.key]
        options = breakages(site, value)
        options = [(f"{site.path}: {what}", apply) for what, apply in options]
    what, apply = draw(st.sampled_from(options))
    apply()
    return str(what)


# ---------------------------------------------------------------------------------------------
# Checks


def has_lone_surrogate(value: Json) -> bool:
    if isinstance(value, str):
        return any("\ud800" <= c <= "\udfff" for c in value)
    if isinstance(value, list):
        return any(has_lone_surrogate(v) for v in value)
    if isinstance(value, dict):
        return any(has_lone_surrogate(k) or has_lone_surrogate(v) for k, v in value.items())
    return False


def check_protocol(answer: Answer) -> None:
    """What every response must be, whatever was asked."""
    where = answer.describe()
    assert answer.status < 500, f"a 5xx for a client's request:{where}"
    assert answer.headers.get("x-amzn-requestid"), f"no x-amzn-RequestId:{where}"
    content_type = answer.headers.get("content-type", "")
    assert content_type.startswith("application/x-amz-json-1.1"), f"Content-Type:{where}"
    assert isinstance(answer.payload, dict), f"the body is not a JSON object:{where}"
    if answer.status != 200:
        assert isinstance(answer.payload.get("__type"), str), f"no __type:{where}"
        assert isinstance(answer.payload.get("message"), str), f"no message:{where}"
    assert answer.status in (200, 400), f"status neither 200 nor 400:{where}"
    if answer.status == 400:
        model = {e.name for e in MODEL.operation_model(answer.operation).error_shapes}
        assert answer.error in model | GENERAL_ERRORS, f"an error the model does not list:{where}"


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
    operation: str, params: dict[str, Json], answer: Answer, before: Snapshot, after: Snapshot
) -> None:
    """Light checks of what a 200 says and did."""
    where = answer.describe()
    body = answer.payload
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
                assert member in ("Name", "CreatedOn", "LastModifiedOn") or (
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
DEFAULTED = frozenset({"Timeout", "MaxRetries", "ExecutionProperty"})


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


async def check_run_leaves_starting(world: World, run_id: str, where: str) -> None:
    """An admitted run must start, wait or end; a run stuck in STARTING holds a slot forever."""
    deadline = time.monotonic() + 8
    state = None
    while time.monotonic() < deadline:
        state = await world.run_state(run_id)
        if state not in (None, "STARTING"):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} still {state} after 8 s:{where}")


def encode(draw: Draw, params: Json) -> bytes:
    """The body: JSON, ASCII-escaped or raw UTF-8 (which lone surrogates cannot be)."""
    if not has_lone_surrogate(params) and chance(draw, 50):
        return json.dumps(params, ensure_ascii=False).encode()
    return json.dumps(params).encode()


# ---------------------------------------------------------------------------------------------
# The tests


async def exercise(
    world: World,
    operation: str,
    params: dict[str, Json],
    body: bytes,
    *,
    before: Snapshot | None = None,
    broken: str | None = None,
) -> Answer:
    """Send one request and check every property of its answer and its effect."""
    before = before or await world.snapshot()
    violations = find_violations(operation, params)
    answer = await world.post(operation, body)
    kind = "broken" if broken else "model-invalid" if violations else "model-valid"
    detail = ""
    if kind == "model-valid" and answer.status == 400 and isinstance(answer.payload, dict):
        detail = str(answer.payload.get("message", ""))[:70]
    if currently_in_test_context():
        event(f"{operation} {kind}: {answer.status} {answer.error or ''} {detail}")
    check_protocol(answer)
    if answer.status == 200 and isinstance(answer.payload.get("NextToken"), str):
        world.tokens.append(answer.payload["NextToken"])
    after = await world.snapshot()
    where = answer.describe()
    if broken is not None:
        where += f"\n  broken on purpose: {broken}"
        assert violations, f"the validator accepts a request the model refuses:{where}"

    if violations or has_lone_surrogate(params):
        # A lone surrogate may also be refused while decoding the body, before validation.
        allowed = {"InvalidInputException"}
        if has_lone_surrogate(params):
            allowed |= NOT_REPRESENTABLE
        assert answer.status == 400 and answer.error in allowed, (
            f"expected 400 {' or '.join(sorted(allowed))} "
            f"({violations[0].message if violations else 'a lone surrogate'}):{where}"
        )
        changed = before.changed(after)
        assert not changed, f"a refused request changed {sorted(changed)}:{where}"
        return answer

    outcomes, touchable = expected_outcomes(operation, params, before)
    outcome = "OK" if answer.status == 200 else str(answer.error)
    assert outcome in outcomes, f"expected one of {sorted(outcomes)}, got {outcome}:{where}"
    changed = before.changed(after)
    if answer.status != 200:
        assert not changed, f"a failed request changed {sorted(changed)}:{where}"
        return answer
    if ("run", "*") in touchable:
        touchable = {("run", answer.payload.get("JobRunId", ""))}
    assert changed <= touchable, f"changed {sorted(changed - touchable)} too:{where}"
    check_success(operation, params, answer, before, after)
    if operation == "StartJobRun":
        await check_run_leaves_starting(world, answer.payload["JobRunId"], where)
    return answer


async def exercise_body(world: World, operation: str, body: bytes) -> None:
    """Send a body that may not be a request at all: SerializationException unless it is a
    JSON object (then the model decides), and nothing changes."""
    before = await world.snapshot()
    answer = await world.post(operation, body)
    check_protocol(answer)
    where = answer.describe()
    try:
        parsed = json.loads(body)
    except (ValueError, RecursionError):
        parsed = None
    if isinstance(parsed, dict):
        if find_violations(operation, parsed):
            assert answer.status == 400, where
            assert answer.error in NOT_REPRESENTABLE, where
    else:
        assert answer.status == 400, where
        assert answer.error == "SerializationException", where
    changed = before.changed(await world.snapshot())
    assert not changed, f"a refused request changed {sorted(changed)}:{where}"


@pytest.mark.slow
@pytest.mark.catalog_settings(http_listen="127.0.0.1:0")
@pytest.mark.parametrize("group", sorted(GROUPS))
@SETTINGS
@given(data=st.data())
async def test_generated_requests(world: World, group: str, data: st.DataObject) -> None:
    """Valid and broken requests of one group of operations: the properties in the docstring."""
    operation = data.draw(st.sampled_from(GROUPS[group]), label="operation")
    before = await world.snapshot()
    params = Generator(world, data.draw).request(operation)
    broken = None
    if chance(data.draw, 45):
        broken = break_request(data.draw, operation, params)
    data.draw(st.just(params), label="request")
    body = encode(data.draw, params)
    await exercise(world, operation, params, body, before=before, broken=broken)


def nested(depth: int, inner: str = "") -> str:
    return "[" * depth + inner + "]" * depth


MALFORMED_BODIES: Sequence[bytes] = (
    b"[]",
    b'[{"Name": "alpha"}]',
    b'"alpha"',
    b"1",
    b"null",
    b"true",
    b"{",
    b'{"Name":}',
    b'{"Name": "alpha",}',
    b"{'Name': 'alpha'}",
    b'{"Name": "\xff\xfe"}',
    b"\xef\xbb\xbf{}",
    b'{"Name": "a"} trailing',
    b'{"Timeout": 1e999}',
    b'{"Timeout": NaN}',
    b'{"Timeout": ' + b"9" * 5000 + b"}",
    nested(50).encode(),
    nested(100_000).encode(),
    b'{"Name": ' + nested(100_000).encode() + b"}",
    b'{"JobName": ' + nested(3000).encode() + b"}",
    b'{"A": ' + b'{"A": ' * 3000 + b"1" + b"}" * 3001,
)


@pytest.mark.slow
@pytest.mark.catalog_settings(http_listen="127.0.0.1:0")
@settings(SETTINGS, max_examples=100)
@given(data=st.data())
async def test_bodies_that_are_not_requests(world: World, data: st.DataObject) -> None:
    """Bodies that are not JSON objects, or not JSON: 400 SerializationException (or, for an
    object with a member of the wrong kind, InvalidInputException), and nothing changes."""
    operation = data.draw(st.sampled_from(ALL_OPERATIONS), label="operation")
    body = data.draw(
        st.one_of(
            st.sampled_from(MALFORMED_BODIES),
            st.binary(min_size=1, max_size=40).filter(lambda b: b.strip() not in (b"", b"{}")),
            st.recursive(
                st.none() | st.booleans() | st.integers() | st.text(max_size=5),
                lambda inner: st.lists(inner, max_size=3),
                max_leaves=8,
            ).map(lambda v: json.dumps(v).encode()),
        ),
        label="body",
    )
    await exercise_body(world, operation, body)


# ---------------------------------------------------------------------------------------------
# What the generators found, kept as plain cases (run on every backend, in this order)


def _token(listing: str, key: list[Json]) -> str:
    return base64.urlsafe_b64encode(json.dumps({"l": listing, "k": key}).encode()).decode()


_JOB_ARN = f"arn:aws:glue:{REGION}:{ACCOUNT}:job/alpha"
_TRIGGER_ARN = f"arn:aws:glue:{REGION}:{ACCOUNT}:trigger/manual"
# (id, [(operation, request or raw body), ...]); each step is checked like a generated one.
FOUND: list[tuple[str, list[tuple[str, dict[str, Json] | bytes]]]] = [
    # A required list or map sent empty is refused as missing (the proto round trip in the
    # gateway cannot tell [] / {} from absent), although the model allows it empty.
    ("empty-JobNames", [("BatchGetJobs", {"JobNames": []})]),
    ("empty-TagsToAdd", [("TagResource", {"ResourceArn": _JOB_ARN, "TagsToAdd": {}})]),
    ("empty-TagsToRemove", [("UntagResource", {"ResourceArn": _JOB_ARN, "TagsToRemove": []})]),
    # ... and an optional one sent empty is ignored, where the trigger rules refuse it.
    ("empty-Actions", [("UpdateTrigger", {"Name": "manual", "TriggerUpdate": {"Actions": []}})]),
    (
        "empty-Conditions",
        [("UpdateTrigger", {"Name": "watch", "TriggerUpdate": {"Predicate": {"Conditions": []}}})],
    ),
    # A NextToken that decodes but does not hold the key the listing expects: a 500.
    ("token-GetJobs-no-key", [("GetJobs", {"NextToken": _token("jobs", [])})]),
    ("token-ListJobs-no-key", [("ListJobs", {"NextToken": _token("jobs", [])})]),
    (
        "token-GetJobRuns-short-key",
        [("GetJobRuns", {"JobName": "alpha", "NextToken": _token("runs:alpha", [1])})],
    ),
    (
        "token-GetJobRuns-text-key",
        [("GetJobRuns", {"JobName": "alpha", "NextToken": _token("runs:alpha", ["x", "y"])})],
    ),
    (
        "token-GetJobRuns-null-key",
        [("GetJobRuns", {"JobName": "alpha", "NextToken": _token("runs:alpha", [None, "y"])})],
    ),
    # PostgreSQL: a NUL in a value that reaches a query (text cannot hold one there): a 500.
    ("nul-token-GetJobs", [("GetJobs", {"NextToken": _token("jobs", ["a\x00"])})]),
    ("nul-token-GetTriggers", [("GetTriggers", {"NextToken": _token("triggers", ["\x00"])})]),
    (
        "nul-token-GetJobRuns",
        [("GetJobRuns", {"JobName": "alpha", "NextToken": _token("runs:alpha", [1.0, "\x00"])})],
    ),
    ("nul-arn-GetTags", [("GetTags", {"ResourceArn": _JOB_ARN + "\x00"})]),
    (
        "nul-arn-UntagResource",
        [("UntagResource", {"ResourceArn": _TRIGGER_ARN + "\x00", "TagsToRemove": ["env"]})],
    ),
    # A lone surrogate (valid JSON escape, not Unicode) in a string with no pattern: a 500.
    ("surrogate-Role", [("CreateJob", {"Name": "s1", "Role": "\ud800", "Command": {}})]),
    (
        "surrogate-Arguments",
        [("StartJobRun", {"JobName": "alpha", "Arguments": {"--x": "\udc80"}})],
    ),
    ("surrogate-Tags", [("TagResource", {"ResourceArn": _JOB_ARN, "TagsToAdd": {"k": "\udfff"}})]),
    ("surrogate-arn", [("GetTags", {"ResourceArn": _JOB_ARN + "\udc00"})]),
    # Deeply nested JSON: RecursionError while decoding, a 500.
    ("nested-array", [("ListJobs", nested(1000).encode())]),
    ("nested-member", [("GetJobs", b'{"NextToken": ' + nested(1000).encode() + b"}")]),
    # A NUL in an argument: StartJobRun answers 200, the run never leaves STARTING.
    (
        "stuck-argument-value",
        [("StartJobRun", {"JobName": "alpha", "Arguments": {"--x": "a\x00"}})],
    ),
    ("stuck-argument-key", [("StartJobRun", {"JobName": "alpha", "Arguments": {"--x\x00": "1"}})]),
    # PostgreSQL: a NUL in ScriptLocation: the launch error cannot be recorded, so the run
    # never leaves STARTING (the scheduler retries recording it every second, forever).
    (
        "stuck-script",
        [
            (
                "CreateJob",
                {
                    "Name": "stuck-script",
                    "Role": ROLE,
                    "Command": {"Name": "pythonshell", "ScriptLocation": "/no/such\x00.py"},
                },
            ),
            ("StartJobRun", {"JobName": "stuck-script"}),
        ],
    ),
]


FAMILIES = sorted({case.split("-", 1)[0] for case, _ in FOUND})


@pytest.mark.catalog_settings(http_listen="127.0.0.1:0")
@pytest.mark.parametrize("family", FAMILIES)
async def test_found_cases(world: World, family: str) -> None:
    """Requests the generators found a bug with, checked the same way; one stack per family
    (the case id's first word), every case of it checked and every failure reported."""
    failures = []
    for case, steps in FOUND:
        if case.split("-", 1)[0] != family:
            continue
        try:
            for operation, request in steps:
                if isinstance(request, bytes):
                    await exercise_body(world, operation, request)
                else:
                    await exercise(world, operation, request, json.dumps(request).encode())
        except AssertionError as exc:
            failures.append(f"[{case}] {str(exc).split(chr(10) + 'assert ')[0]}")
    assert not failures, "\n\n".join(failures)
