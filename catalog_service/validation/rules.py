"""Operation rules beyond the model (docs/glue-semantics.md §2, §3b), each with its reason.

Each rule sees a request that passed the model checks, so members have the right types when
present; ``_OPERATION_RULES`` says which rules each operation has.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

from catalog_service.validation.model import _named_shape
from catalog_service.validation.violations import Violation, _key_segment, _number
from glue_vocabulary.argument_keys import key_problem, value_problem
from servicekit.internal_rules import MAX_RETRIES

Rule = Callable[[Mapping[str, Any]], Iterator[Violation]]


def _bounded(
    member: str, *, low: float | None = None, high: float | None = None, why: str = ""
) -> Rule:
    """A numeric member must lie in [low, high]; ``why`` follows the upper bound in the text."""

    def rule(params: Mapping[str, Any]) -> Iterator[Violation]:
        value = params.get(member)
        if value is None:
            return
        if low is not None and value < low:
            yield Violation((member,), f"must be at least {_number(low)} (got {_number(value)})")
        elif high is not None and value > high:
            text = f"must be at most {_number(high)}{why} (got {_number(value)})"
            yield Violation((member,), text)

    return rule


def _required(member: str, why: str) -> Rule:
    """A member the model leaves optional but the operation cannot do without."""

    def rule(params: Mapping[str, Any]) -> Iterator[Violation]:
        if params.get(member) in (None, ""):
            yield Violation((member,), f"is required{why}")

    return rule


def _not_with(member: str, others: tuple[str, ...], verbatim: str | None = None) -> Rule:
    """``member`` must not be set together with any of ``others``."""

    def rule(params: Mapping[str, Any]) -> Iterator[Violation]:
        if params.get(member) is None:
            return
        clashing = [other for other in others if params.get(other) is not None]
        if not clashing:
            return
        if verbatim is not None:
            yield Violation((member,), verbatim, verbatim=True)
            return
        either = " and ".join(others)
        yield Violation(
            (member,),
            f"cannot be set together with {' or '.join(clashing)}; set either {member} or {either}",
        )

    return rule


def _within(member: str, *rules: Rule) -> Rule:
    """Apply ``rules`` to the structure in ``member``, if present."""

    def rule(params: Mapping[str, Any]) -> Iterator[Violation]:
        inner = params.get(member)
        if isinstance(inner, dict):
            for each in rules:
                for violation in each(inner):
                    yield violation.under(member)

    return rule


def _each(member: str, *rules: Rule) -> Rule:
    """Apply ``rules`` to every structure in the list in ``member``, if present."""

    def rule(params: Mapping[str, Any]) -> Iterator[Violation]:
        for index, inner in enumerate(params.get(member) or ()):
            if isinstance(inner, dict):
                for each in rules:
                    for violation in each(inner):
                        yield violation.under(f"[{index}]").under(member)

    return rule


def _as_shape(member: str, shape: str) -> Rule:
    """``member`` is held to another shape of the model than its own (one without limits)."""

    def rule(params: Mapping[str, Any]) -> Iterator[Violation]:
        if member in params:
            for violation in _named_shape(shape).check(params[member]):
                # Our rule, not the model's: AWS's framework would not answer it, so our words.
                yield Violation((member, *violation.path), violation.text)

    return rule


def _script_arguments(member: str) -> Rule:
    """The argument map in ``member`` holds no key or value a job script would misread as the
    job's name or run id (``glue_vocabulary.argument_keys``); every run passes them through
    argparse."""

    def rule(params: Mapping[str, Any]) -> Iterator[Violation]:
        arguments = params.get(member)
        if not isinstance(arguments, dict):
            return
        for key, value in arguments.items():
            problem = key_problem(key)
            if problem is None and isinstance(value, str):
                problem = value_problem(value)
            if problem is not None:
                yield Violation((member, _key_segment(key)), problem)

    return rule


# Glue's docs: the timeout (minutes) must be under 7 days; the model only has min 1.
_MAX_TIMEOUT_MINUTES: Final = 10080
# Our per-job concurrency ceiling, after Glue's documented default per-job quota (about 1000).
# The model sets no bound, and an unbounded value would let one job claim the whole run queue.
_MAX_CONCURRENT_RUNS_CEILING: Final = 1000

_TIMEOUT_RULE: Final = _bounded(
    "Timeout", high=_MAX_TIMEOUT_MINUTES, why=" minutes, which is 7 days"
)
# Bounds on capacity members the model leaves open. Negative values mean nothing, and a job
# cannot run on zero workers. Zero stays allowed for AllocatedCapacity and MaxCapacity ("no DPUs
# asked for" is harmless, and nothing documents a higher floor); their real floors depend on the
# command and Glue version, which is the runner's business, not the API's.
_CAPACITY_RULES: Final = (
    _bounded("NumberOfWorkers", low=1),
    _bounded("AllocatedCapacity", low=0),
    _bounded("MaxCapacity", low=0),
)
# Glue's docs: do not set MaxCapacity together with WorkerType or NumberOfWorkers (a job is sized
# either in DPUs or in workers, docs/glue-semantics.md §2).
_CAPACITY_EXCLUSIVE: Final = _not_with("MaxCapacity", ("WorkerType", "NumberOfWorkers"))
# MaxRetries: AWS documents 0 to 10 (``MAX_RETRIES`` cites the page; the model has no bound).
# Every retry is a new process after a backoff, so an unbounded count would let one failing
# job restart for ever; a client that works against AWS stays within 10.
_ARGUMENT_MAPS: Final = (
    _script_arguments("DefaultArguments"),
    _script_arguments("NonOverridableArguments"),
)
_JOB_DEFINITION_RULES: Final = (
    _TIMEOUT_RULE,
    _bounded(
        "MaxRetries",
        low=0,
        high=MAX_RETRIES,
        why=", the most AWS Glue documents for a job's retries",
    ),
    _within(
        "ExecutionProperty",
        _bounded(
            "MaxConcurrentRuns",
            low=1,
            high=_MAX_CONCURRENT_RUNS_CEILING,
            why=", the per-job ceiling of this service",
        ),
    ),
    *_CAPACITY_RULES,
    _CAPACITY_EXCLUSIVE,
    *_ARGUMENT_MAPS,
)
# UpdateJob replaces the whole definition (docs/glue-semantics.md §3b), and a job without a role
# or a command cannot exist, although the model leaves both optional in JobUpdate.
_REPLACES_DEFINITION: Final = " (UpdateJob replaces the whole job definition)"

# The bookmark operations' JobName and RunId are plain strings in the model (no length, no
# pattern), but they name a job and a run like everywhere else: held to the shapes GetJobRun's
# JobName and RunId have (1-255 characters, one line), so a name no job can have is refused as
# invalid rather than looked up and not found.
_BOOKMARK_RULES: Final = (_as_shape("JobName", "NameString"), _as_shape("RunId", "IdString"))

# An action starts runs with its Arguments over the job's, as StartJobRun does.
_ACTION_RULES: Final = (_TIMEOUT_RULE, _script_arguments("Arguments"))

_OPERATION_RULES: Final[Mapping[str, tuple[Rule, ...]]] = {
    "CreateJob": _JOB_DEFINITION_RULES,
    "UpdateJob": (
        _within(
            "JobUpdate",
            _required("Role", _REPLACES_DEFINITION),
            _required("Command", _REPLACES_DEFINITION),
            *_JOB_DEFINITION_RULES,
        ),
    ),
    "StartJobRun": (
        _TIMEOUT_RULE,
        *_CAPACITY_RULES,
        # moto's wording, reproduced verbatim (docs/glue-semantics.md §2).
        _not_with(
            "MaxCapacity",
            ("AllocatedCapacity",),
            verbatim="Please set only Allocated Capacity or Max Capacity",
        ),
        _CAPACITY_EXCLUSIVE,
        _script_arguments("Arguments"),
    ),
    # Only the action timeout and arguments here; the trigger and predicate rules live with
    # triggers.
    "GetJobBookmark": _BOOKMARK_RULES,
    "ResetJobBookmark": _BOOKMARK_RULES,
    "CreateTrigger": (_each("Actions", *_ACTION_RULES),),
    "UpdateTrigger": (_within("TriggerUpdate", _each("Actions", *_ACTION_RULES)),),
}
