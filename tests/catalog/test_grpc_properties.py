"""Property tests of the gRPC door (glue.v1.Glue) with and without credentials.

Requests come from the gateway property test's generators (tests/helpers/glue_requests.py:
valid per botocore's Glue model, names biased toward what exists, about half broken in one
place on purpose) and go out as glue.v1 messages (``glue_vocabulary.shapes.from_glue``) on a
raw channel call, so that any bytes can be sent. The catalog has ``--access-keys``; each request
is sent as one of five callers: no credentials, wrong credentials (unknown key, wrong secret),
a malformed ``authorization`` header (another scheme, no secret, no scheme, two headers), the
admin key (no policy), or a key whose policy allows ``glue:*`` only on
``arn:aws:glue:*:*:job/team-a-*`` and ``.../trigger/team-a-*`` (names get that prefix half the
time, so the restricted key is often allowed too).

What a proto can carry decides what is sent (``carry``):
- a request a proto carries exactly goes out as is; proto3 cannot tell an empty list or map
  from an absent one, so the model is asked about the Glue form the servicer will see
  (``to_glue`` of the message), not about the generated dict;
- a lone surrogate (valid JSON, not Unicode) goes out as malformed bytes: the message with the
  surrogate encoded as UTF-8 would encode it (ED A0 80 ...), which protobuf refuses to decode;
- a wrong JSON type, a null list item or an unknown member cannot be put in a typed message at
  all: such a breakage is skipped for gRPC and the request goes out unbroken (the typed schema
  is the gRPC analogue of those checks; ``test_bytes_that_are_not_requests`` sends bytes that
  are not a request of the method's type).

Checked for every request (``exercise``):
- never INTERNAL or UNKNOWN; every error carries a google.rpc ErrorInfo whose reason is a Glue
  exception, the one the operation's model lists or a general or access one, with that
  exception's gRPC code;
- no or malformed credentials: UNAUTHENTICATED (MissingAuthenticationTokenException or
  UnrecognizedClientException), nothing changes;
- the restricted key on a job or trigger its policy does not allow (for CreateTrigger and
  UpdateTrigger also a job the trigger's actions start): PERMISSION_DENIED
  AccessDeniedException, nothing changes;
- a request the model rejects: INVALID_ARGUMENT ValidationException for model constraints,
  InvalidInputException otherwise (after the errors above),
  nothing changes;
- otherwise, as in the gateway's test: an outcome the stored state explains; a failure changes
  nothing, a success only its own job, trigger or run, with what it set stored; an admitted run
  leaves STARTING;
- list results under the restricted key (GetJobs, ListJobs, BatchGetJobs, GetTriggers) hold
  only names its policy allows, and an unpaged listing holds every one of them.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.message import DecodeError, Message
from hypothesis import event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from catalog_service.validation import find_violations
from catalog_service.validation.violations import to_exception
from clients.credentials import Credentials
from glue.v1 import glue_pb2
from glue_vocabulary.shapes import from_glue, pascal, to_glue
from servicekit.errors import error_reason, from_rpc_error
from tests.conftest import Stack
from tests.helpers.access_keys import ADMIN, TEAM_A, restart_with_keys
from tests.helpers.catalog_state import (
    GENERAL_ERRORS,
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
)
from tests.helpers.scripts import SLEEP, SUCCEED, write_script

# The restricted key's policy allows every action on jobs and triggers named with this prefix.
ALLOWED_PREFIX = "team-a-"
CALLERS = ("none", "wrong", "malformed", "admin", "restricted")
WRONG_KEYS = (
    Credentials(ADMIN.access_key_id, "wrong-secret"),
    Credentials("AKIDUNKNOWN", ADMIN.secret_access_key),
    Credentials(TEAM_A.access_key_id, ADMIN.secret_access_key),
    Credentials(ADMIN.access_key_id, ""),
)
_ADMIN_HEADER = ADMIN.metadata[0][1]
MALFORMED_HEADERS: tuple[tuple[tuple[str, str], ...], ...] = (
    (("authorization", "Basic QUtJREFETUlOOmFkbWluLXNlY3JldA=="),),
    (("authorization", f"Bearer {ADMIN.access_key_id}"),),
    (("authorization", "Bearer"),),
    (("authorization", "Bearer :"),),
    (("authorization", f"{ADMIN.access_key_id}:{ADMIN.secret_access_key}"),),
    (("authorization", _ADMIN_HEADER.replace(" ", "", 1)),),
    (("authorization", f"Token {ADMIN.access_key_id}:{ADMIN.secret_access_key}"),),
    (("authorization", _ADMIN_HEADER), ("authorization", _ADMIN_HEADER)),
)
UNAUTHENTICATED = frozenset({"MissingAuthenticationTokenException", "UnrecognizedClientException"})
ACCESS_ERRORS = UNAUTHENTICATED | {"AccessDeniedException"}
# The member naming the one job or trigger an operation acts on (tag operations name an ARN;
# the listings are filtered instead).
RESOURCE_MEMBER = {
    "CreateJob": "Name",
    "UpdateJob": "JobName",
    "StartJobRun": "JobName",
    "GetJobRuns": "JobName",
    "BatchStopJobRun": "JobName",
    "CreateTrigger": "Name",
    "UpdateTrigger": "Name",
}
LISTINGS = frozenset({"GetJobs", "ListJobs", "BatchGetJobs", "GetTriggers"})
TIMEOUT = 30.0


# ---------------------------------------------------------------------------------------------
# What a proto carries


@dataclass(frozen=True)
class Carried:
    """A request as it goes on the wire."""

    data: bytes
    params: dict[str, Json] | None
    """The Glue form the servicer sees; None when the bytes do not decode (a lone surrogate)."""


def request_type(operation: str) -> type[Message]:
    """The glue.v1 request message of an operation."""
    cls: type[Message] = getattr(glue_pb2, f"{operation}Request")
    return cls


def response_type(operation: str) -> type[Message]:
    """The glue.v1 response message of an operation."""
    cls: type[Message] = getattr(glue_pb2, f"{operation}Response")
    return cls


def carry(operation: str, params: dict[str, Json]) -> Carried | None:
    """The request as glue.v1 bytes, or None when no message of that type can hold it."""
    swapped: dict[str, str] = {}
    clean = _swap_surrogates(params, swapped)
    try:
        message = from_glue(clean, request_type(operation))
    except (TypeError, ValueError, AttributeError, KeyError):
        return None
    if not _same(clean, to_glue(message)):
        return None
    data = message.SerializeToString()
    if not swapped:
        return Carried(data, to_glue(message))
    for stand_in, surrogate in swapped.items():
        data = data.replace(stand_in.encode(), surrogate.encode("utf-8", "surrogatepass"))
    return Carried(data, None)


def _swap_surrogates(value: Json, swapped: dict[str, str]) -> Json:
    """``value`` with each lone surrogate replaced by a private-use character of the same UTF-8
    length (recorded in ``swapped``), so the message serializes and the bytes can be patched."""
    if isinstance(value, str):
        out = []
        for c in value:
            if "\ud800" <= c <= "\udfff":
                stand_in = chr(0xE000 + ord(c) - 0xD800)
                swapped[stand_in] = c
                c = stand_in
            out.append(c)
        return "".join(out)
    if isinstance(value, list):
        return [_swap_surrogates(v, swapped) for v in value]
    if isinstance(value, dict):
        return {
            _swap_surrogates(k, swapped): _swap_surrogates(v, swapped) for k, v in value.items()
        }
    return value


def _same(sent: Json, carried: Json) -> bool:
    """Whether the message holds what was sent, type for type (a null member and an empty list
    or map may be absent)."""
    if isinstance(sent, dict):
        if not isinstance(carried, dict):
            return False
        if not set(carried) <= {k for k, v in sent.items() if v is not None}:
            return False
        for key, value in sent.items():
            if key in carried:
                if not _same(value, carried[key]):
                    return False
            elif not (value is None or (isinstance(value, list | dict) and not value)):
                return False
        return True
    if isinstance(sent, list):
        return (
            isinstance(carried, list)
            and len(sent) == len(carried)
            and all(_same(a, b) for a, b in zip(sent, carried, strict=True))
        )
    if isinstance(sent, bool) or isinstance(carried, bool):
        return type(sent) is type(carried) and sent == carried
    if isinstance(sent, int | float):
        return isinstance(carried, int | float) and sent == carried
    return type(sent) is type(carried) and bool(sent == carried)


# ---------------------------------------------------------------------------------------------
# The world: the keyed stack and a raw channel to its gRPC door


@dataclass
class Reply:
    """One gRPC exchange."""

    operation: str
    caller: str
    metadata: tuple[tuple[str, str], ...]
    data: bytes
    code: grpc.StatusCode
    details: str = ""
    reason: str | None = None
    declared: grpc.StatusCode | None = None
    """The gRPC code the reason's exception declares."""
    body: Json = None
    """A success's response in Glue form, every repeated member present."""

    def describe(self) -> str:
        sent = self.data if len(self.data) <= 1500 else self.data[:1500] + b"...(cut)"
        # Never the secret: the caller kind and the header's first word say enough.
        header = [value.split(" ")[0][:12] for _, value in self.metadata]
        got = repr(self.body)[:1500] if self.code == grpc.StatusCode.OK else self.details[:500]
        return (
            f"\n/glue.v1.Glue/{self.operation} as {self.caller} {header}\n  bytes: {sent!r}\n"
            f"  -> {self.code.name} {self.reason or ''} {got}"
        )


class World(CatalogWorld):
    """The stack with access keys, a channel without credentials of its own, and what the test
    knows about it."""

    def __init__(
        self,
        stack: Stack,
        engine: AsyncEngine,
        channel: grpc.aio.Channel,
        ok_script: Path,
        sleep_script: Path,
    ) -> None:
        super().__init__(stack, engine, ok_script, sleep_script)
        self.channel = channel

    def __repr__(self) -> str:
        return "World(gRPC door with access keys)"

    async def send(
        self, operation: str, data: bytes, caller: str, metadata: tuple[tuple[str, str], ...]
    ) -> Reply:
        """Send raw request bytes with ``metadata``; the reply, error or not."""
        method: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = self.channel.unary_unary(
            f"/glue.v1.Glue/{operation}"
        )
        reply = Reply(operation, caller, metadata, data, grpc.StatusCode.OK)
        try:
            raw = await method(data, metadata=metadata, timeout=TIMEOUT)
        except grpc.aio.AioRpcError as exc:
            reply.code, reply.details = exc.code(), exc.details() or ""
            reply.reason = error_reason(exc)
            reply.declared = from_rpc_error(exc).grpc_code
            return reply
        response = response_type(operation).FromString(raw)
        body = to_glue(response)
        for field in response.DESCRIPTOR.fields:
            # to_glue leaves out empty repeated members and maps; the checks read them whole.
            value = getattr(response, field.name)
            if hasattr(value, "items"):
                body.setdefault(pascal(field.name), {})
            elif hasattr(value, "extend"):
                body.setdefault(pascal(field.name), [])
        reply.body = body
        return reply

    async def call(self, operation: str, **params: Json) -> Json:
        """A request that must succeed (setup and teardown), as the admin."""
        carried = carry(operation, params)
        assert carried is not None and carried.params is not None, params
        reply = await self.send(operation, carried.data, "admin", ADMIN.metadata)
        assert reply.code == grpc.StatusCode.OK, reply.describe()
        return reply.body

    async def setup(self) -> None:
        """The gateway test's world, and a job and a trigger the restricted key may use."""
        await super().setup()
        await self.call(
            "CreateJob",
            Name=f"{ALLOWED_PREFIX}load",
            Role=ROLE,
            Command={"Name": "pythonshell", "ScriptLocation": str(self.ok_script)},
            ExecutionProperty={"MaxConcurrentRuns": 3},
        )
        await self.call(
            "CreateTrigger",
            Name=f"{ALLOWED_PREFIX}manual",
            Type="ON_DEMAND",
            Actions=[{"JobName": f"{ALLOWED_PREFIX}load"}],
        )
        await self.snapshot()


@pytest.fixture
async def world(stack: Stack, tmp_path: Path) -> AsyncIterator[World]:
    """The stack with access keys, set up with a few jobs, runs and triggers."""
    await restart_with_keys(stack, tmp_path / "keys.json")
    assert stack.catalog is not None
    engine = create_async_engine(stack.catalog_url)
    channel = grpc.aio.insecure_channel(
        f"127.0.0.1:{stack.catalog.port}",
        options=[("grpc.max_send_message_length", 16 * 1024 * 1024)],
    )
    w = World(
        stack=stack,
        engine=engine,
        channel=channel,
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
            await channel.close()
            await engine.dispose()


class PrefixedGenerator(Generator):
    """The gateway's generator, with names given the restricted key's prefix half the time."""

    def name(self, constants: Any, existing: Any, *, new: bool) -> str:
        name = super().name(constants, existing, new=new)
        if chance(self.draw, 50) and not name.startswith(ALLOWED_PREFIX):
            name = (ALLOWED_PREFIX + name)[:255]
        return name


# ---------------------------------------------------------------------------------------------
# Checks


def allowed(name: str) -> bool:
    """Whether the restricted key's policy allows a job or trigger of that name."""
    return name.startswith(ALLOWED_PREFIX)


# The two reasons a refused request can carry: a model constraint or any other rule.
INVALID = frozenset({"InvalidInputException", "ValidationException"})


def policy_refusal(operation: str, params: dict[str, Json], violations: bool) -> set[str] | None:
    """The errors the restricted key's policy answers ``params`` with; None when it lets the
    request through to the operation."""
    if operation in RESOURCE_MEMBER:
        name = params.get(RESOURCE_MEMBER[operation])
        if not isinstance(name, str) or not name:
            return INVALID if violations else {"AccessDeniedException"}
        if not allowed(name):
            return {"AccessDeniedException"}
        holder = params if operation == "CreateTrigger" else params.get("TriggerUpdate")
        if operation in ("CreateTrigger", "UpdateTrigger") and isinstance(holder, dict):
            for action in holder.get("Actions") or []:
                job = action.get("JobName") if isinstance(action, dict) else None
                if isinstance(job, str) and not allowed(job):
                    return {"AccessDeniedException"}
        return None
    if operation in ("TagResource", "UntagResource", "GetTags"):
        arn = params.get("ResourceArn")
        kind, _, name = (arn or "").rpartition(":")[2].partition("/")
        if kind in ("job", "trigger") and allowed(name):
            return None
        # Not an ARN of a job or trigger (refused while reading it), or one of another's.
        return {*INVALID, "AccessDeniedException"}
    return None


def check_error(reply: Reply) -> None:
    """What every error must be: a Glue reason in an ErrorInfo, with its own gRPC code."""
    where = reply.describe()
    assert reply.code not in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN), where
    assert reply.reason is not None, f"an error without a Glue ErrorInfo:{where}"
    model = {e.name for e in MODEL.operation_model(reply.operation).error_shapes}
    assert reply.reason in model | GENERAL_ERRORS | ACCESS_ERRORS, f"an unlisted error:{where}"
    assert reply.code == reply.declared, f"not the code of {reply.reason}:{where}"


def check_listing(reply: Reply, params: dict[str, Json], after: Snapshot) -> None:
    """A restricted listing holds only allowed names; an unpaged one holds every one."""
    where = reply.describe()
    body = reply.body
    names = {
        "GetJobs": [j["Name"] for j in body.get("Jobs", [])],
        "ListJobs": list(body.get("JobNames", [])),
        "BatchGetJobs": [j["Name"] for j in body.get("Jobs", [])],
        "GetTriggers": [t["Name"] for t in body.get("Triggers", [])],
    }.get(reply.operation)
    if names is None:
        return
    shown = [n for n in names if not allowed(n)]
    assert not shown, f"the restricted key was shown {shown!r:.300}:{where}"
    if reply.operation == "BatchGetJobs":
        asked = list(dict.fromkeys(params["JobNames"]))
        assert names == [n for n in asked if n in after.jobs and allowed(n)], where
        assert sorted(body["JobsNotFound"]) == sorted(set(asked) - set(names)), where
    elif reply.operation in ("GetJobs", "ListJobs") and not (
        body.get("NextToken") or params.get("NextToken") or params.get("MaxResults")
    ):
        wanted = params.get("Tags") or {}
        every = {
            name
            for name, (_, _, tags) in after.jobs.items()
            if allowed(name) and all(tags.get(k) == v for k, v in wanted.items())
        }
        assert set(names) == every, f"an unpaged listing lost {every - set(names)}:{where}"


async def exercise(
    world: World,
    operation: str,
    carried: Carried,
    caller: str,
    metadata: tuple[tuple[str, str], ...],
    *,
    before: Snapshot | None = None,
    broken: str | None = None,
) -> Reply:
    """Send one request as ``caller`` and check every property of its reply and effect."""
    before = before or await world.snapshot()
    params = carried.params
    violations = find_violations(operation, params) if params is not None else []
    reply = await world.send(operation, carried.data, caller, metadata)
    kind = (
        "broken"
        if broken
        else "malformed"
        if params is None
        else "model-invalid"
        if violations
        else "model-valid"
    )
    if currently_in_test_context():
        event(f"{operation} as {caller}, {kind}: {reply.code.name} {reply.reason or ''}")
    if reply.code != grpc.StatusCode.OK:
        check_error(reply)
    elif reply.body.get("NextToken"):
        world.tokens.append(reply.body["NextToken"])
    after = await world.snapshot()
    changed = before.changed(after)
    where = reply.describe()
    if broken is not None:
        where += f"\n  broken on purpose: {broken}"
        assert violations or params is None, f"the validator accepts a broken request:{where}"

    if caller in ("none", "wrong", "malformed"):
        want = (
            "MissingAuthenticationTokenException"
            if caller == "none"
            else ("UnrecognizedClientException")
        )
        assert reply.code == grpc.StatusCode.UNAUTHENTICATED and reply.reason == want, (
            f"expected UNAUTHENTICATED {want}:{where}"
        )
        assert not changed, f"an unauthenticated request changed {sorted(changed)}:{where}"
        return reply
    refusal = None
    if params is None:
        refusal = {"InvalidInputException"}
    elif caller == "restricted":
        refusal = policy_refusal(operation, params, bool(violations))
    if refusal is None and violations:
        refusal = {to_exception(violations).reason}
    if refusal is not None:
        why = violations[0].message if violations else "a refusal"
        assert reply.code != grpc.StatusCode.OK and reply.reason in refusal, (
            f"expected {' or '.join(sorted(refusal))} ({why}):{where}"
        )
        assert not changed, f"a refused request changed {sorted(changed)}:{where}"
        return reply

    assert params is not None
    outcomes, touchable = expected_outcomes(operation, params, before)
    outcome = "OK" if reply.code == grpc.StatusCode.OK else str(reply.reason)
    assert outcome in outcomes, f"expected one of {sorted(outcomes)}, got {outcome}:{where}"
    if reply.code != grpc.StatusCode.OK:
        assert not changed, f"a failed request changed {sorted(changed)}:{where}"
        return reply
    if ("run", "*") in touchable:
        touchable = {("run", reply.body.get("JobRunId", ""))}
    assert changed <= touchable, f"changed {sorted(changed - touchable)} too:{where}"
    if caller == "restricted" and operation in LISTINGS:
        check_listing(reply, params, after)
    else:
        check_success(operation, params, reply.body, before, after, where)
    if operation == "StartJobRun":
        await check_run_leaves_starting(world, reply.body["JobRunId"], where)
    return reply


def credentials(caller: str, draw: Draw) -> tuple[tuple[str, str], ...]:
    """The call metadata ``caller`` sends."""
    if caller == "wrong":
        return tuple(draw(st.sampled_from(WRONG_KEYS)).metadata)
    if caller == "malformed":
        return tuple(draw(st.sampled_from(MALFORMED_HEADERS)))
    return {"none": (), "admin": ADMIN.metadata, "restricted": TEAM_A.metadata}[caller]


# ---------------------------------------------------------------------------------------------
# The tests


@pytest.mark.slow
@pytest.mark.parametrize("group", sorted(GROUPS))
@SETTINGS
@given(data=st.data())
async def test_generated_requests(world: World, group: str, data: st.DataObject) -> None:
    """Valid and broken requests of one group of operations, each as one of the five callers:
    the properties in the module docstring."""
    caller = data.draw(st.sampled_from(CALLERS), label="caller")
    metadata = credentials(caller, data.draw)
    operation = data.draw(st.sampled_from(GROUPS[group]), label="operation")
    before = await world.snapshot()
    params = PrefixedGenerator(world, data.draw).request(operation)
    unbroken = copy.deepcopy(params)
    broken = None
    if chance(data.draw, 45):
        broken = break_request(data.draw, operation, params)
    carried = carry(operation, params)
    if carried is None:
        # A wrong JSON type or an unknown member: no message holds it; send the request whole.
        event(f"{operation}: a breakage no proto carries, sent unbroken")
        params, broken = unbroken, None
        carried = carry(operation, params)
        assert carried is not None, f"no proto carries a valid request: {params!r:.500}"
    data.draw(st.just(params), label="request")
    await exercise(world, operation, carried, caller, metadata, before=before, broken=broken)


def _not_requests(operation: str) -> st.SearchStrategy[bytes]:
    """Bytes that are not (or only by chance) a request of the operation's type."""
    tag = bytes([request_type(operation).DESCRIPTOR.fields[0].number << 3 | 2])
    return st.one_of(
        st.binary(min_size=1, max_size=40),
        st.sampled_from([b"\xff", b"\x0a", b"\x0a\x05ab", b"\x0a\x80", b"\x08\x80" * 11]),
        st.binary(min_size=1, max_size=8).map(lambda b: tag + bytes([len(b)]) + b),
        st.just(tag + b"\x03\xed\xa0\x80"),
    )


@pytest.mark.slow
@settings(SETTINGS, max_examples=100)
@given(data=st.data())
async def test_bytes_that_are_not_requests(world: World, data: st.DataObject) -> None:
    """Bytes that do not decode as the method's request: INVALID_ARGUMENT after the credentials
    are checked, nothing changes; bytes that decode by chance are held to the usual checks."""
    caller = data.draw(st.sampled_from(CALLERS), label="caller")
    metadata = credentials(caller, data.draw)
    operation = data.draw(st.sampled_from(ALL_OPERATIONS), label="operation")
    raw = data.draw(_not_requests(operation), label="bytes")
    try:
        message = request_type(operation).FromString(raw)
    except DecodeError:
        carried = Carried(raw, None)
    else:
        carried = Carried(raw, to_glue(message))
    await exercise(world, operation, carried, caller, metadata)
