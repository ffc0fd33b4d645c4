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
  every deliberately broken request must be such a one) gets 400 ValidationException (model
  constraints) or InvalidInputException and
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
The generators live in tests/helpers/glue_requests.py and the state, with what it explains, in
tests/helpers/catalog_state.py: tests/catalog/test_grpc_properties.py runs them over gRPC.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from catalog_service.validation import find_violations
from catalog_service.validation.violations import to_exception
from tests.conftest import Stack
from tests.helpers.catalog_state import (
    ACCOUNT,
    GENERAL_ERRORS,
    REGION,
    ROLE,
    CatalogWorld,
    Json,
    Snapshot,
    check_run_leaves_starting,
    check_success,
    expected_outcomes,
)
from tests.helpers.glue_requests import (
    ALL_OPERATIONS,
    GROUPS,
    MODEL,
    SETTINGS,
    Draw,
    Generator,
    break_request,
    chance,
    has_lone_surrogate,
)
from tests.helpers.scripts import SLEEP, SUCCEED, write_script

NOT_REPRESENTABLE = frozenset({"InvalidInputException", "SerializationException"})


# ---------------------------------------------------------------------------------------------
# The world: the stack and an HTTP session on its gateway


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


class World(CatalogWorld):
    """The stack with its HTTP gateway, and what the test knows about it."""

    def __init__(
        self,
        stack: Stack,
        engine: AsyncEngine,
        session: aiohttp.ClientSession,
        port: int,
        ok_script: Path,
        sleep_script: Path,
    ) -> None:
        super().__init__(stack, engine, ok_script, sleep_script)
        self.session = session
        self.port = port

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
# Checks


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
        # Model constraints alone: ValidationException; anything else: InvalidInputException.
        allowed = {to_exception(violations).reason} if violations else {"InvalidInputException"}
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
    check_success(operation, params, answer.payload, before, after, where)
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
