"""Glue requests generated from botocore's model with Hypothesis, and ways to break them.

Shared by the property tests of both front doors (tests/gateway/test_properties.py over HTTP,
tests/catalog/test_grpc_properties.py over gRPC). ``Generator`` walks an operation's input shape
and builds a request valid per the model, its names biased toward what a ``CatalogWorld``
holds; ``break_request`` then breaks one thing in it on purpose. Requests are in Glue form
(PascalCase members, JSON values).
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import botocore.session
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st

from glue.v1 import glue_pb2
from tests.helpers.catalog_state import ACCOUNT, REGION, ROLE, CatalogWorld, Json

MODEL = botocore.session.get_session().get_service_model("glue")
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)

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

Draw = Callable[[st.SearchStrategy[Any]], Any]


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


def token_text(world: CatalogWorld, draw: Draw) -> str:
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

    world: CatalogWorld
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


def has_lone_surrogate(value: Json) -> bool:
    """Whether a string in ``value`` holds a lone surrogate (JSON carries one, Unicode not)."""
    if isinstance(value, str):
        return any("\ud800" <= c <= "\udfff" for c in value)
    if isinstance(value, list):
        return any(has_lone_surrogate(v) for v in value)
    if isinstance(value, dict):
        return any(has_lone_surrogate(k) or has_lone_surrogate(v) for k, v in value.items())
    return False
