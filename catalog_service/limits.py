"""Limits the catalog sets where Glue's model sets none (README "Limits and quotas").

Four kinds, each refused before anything is written:

- input sizes (``check_job``, ``check_arguments``, ``check_merged`` ...): InvalidInputException
  naming the field and the cap;
- counts in one request (actions per trigger): ResourceNumberLimitExceededException;
- what one caller holds open at once (``caller_slots.CallerSlots``: unary calls in flight,
  GetJobRunLog streams): ThrottlingException for calls (transient: botocore retries it with
  backoff), ResourceNumberLimitExceededException for streams (as the issue asks: a held stream
  is a resource, and retrying at once would not free it);
- quotas per identity (``identity_quotas``: ``check_quota`` for jobs and triggers,
  ``RunAdmissions`` for runs waiting to start): ResourceNumberLimitExceededException.

This module holds the caps (``Limits``) and the input size checks.

The caller is ``identity.caller`` (set by the front door); None is one caller, "anonymous".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Final

from catalog_service.validation.violations import member_path
from servicekit.errors import (
    InvalidInputException,
    ResourceNumberLimitExceededException,
)

ANONYMOUS: Final = "anonymous"
# The largest --max-arguments-bytes accepted: a run's arguments travel in StartRun, in every
# RunEvent and in GetJobRuns pages, all under gRPC's 16 MiB message limit; a quarter of it
# keeps room for the rest of the run, so no cap setting can make an event undeliverable.
MAX_ARGUMENTS_CEILING: Final = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """The catalog's caps and quotas; each is a ``--flag`` of the same name (README table)."""

    max_string_length: int = 2048
    """Role, LogUri, Command.Name and a trigger's Schedule, in characters (the model: none)."""
    max_argument_key_bytes: int = 1024
    """One argument key (DefaultArguments, NonOverridableArguments, Arguments), UTF-8 bytes."""
    max_argument_value_bytes: int = 65536
    """One argument value, UTF-8 bytes: half Linux's 128 KiB limit on one argv string."""
    max_arguments_bytes: int = 262144
    """One argument map, and a run's arguments once merged, UTF-8 bytes of keys and values."""
    max_actions_per_trigger: int = 50
    """Actions (jobs started) per trigger: Glue's default quota "jobs per trigger"."""
    max_batch_names: int = 1000
    """Names per BatchGetJobs / BatchGetTriggers: one ListJobs page (the model: no limit)."""
    max_page_bytes: int = 4 * 1024 * 1024
    """GetJobs / GetJobRuns / GetTriggers pages end early (with a NextToken) past this size."""
    max_calls_in_flight_per_caller: int = 256
    """Unary calls one caller may have in flight at once (gRPC and HTTP together)."""
    max_log_streams_per_caller: int = 16
    """GetJobRunLog streams one caller may hold open at once."""
    max_log_streams: int = 128
    """GetJobRunLog streams open at once, all callers together."""
    max_jobs_per_identity: int = 10000
    """Jobs one identity may have created (0: no quota)."""
    max_triggers_per_identity: int = 10000
    """Triggers one identity may have created (0: no quota)."""
    max_waiting_runs_per_identity: int = 10000
    """Runs one identity started that are WAITING or STARTING (0: no quota)."""

    def __post_init__(self) -> None:
        quotas = {"max_jobs_per_identity", "max_triggers_per_identity"}
        quotas.add("max_waiting_runs_per_identity")
        for each in fields(self):
            value = getattr(self, each.name)
            low = 0 if each.name in quotas else 1
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"{each.name} must be an integer of at least {low}: {value!r}")
        if self.max_arguments_bytes > MAX_ARGUMENTS_CEILING:
            raise ValueError(
                f"max_arguments_bytes must be at most {MAX_ARGUMENTS_CEILING} (4 MiB): a run's "
                "arguments travel in gRPC messages limited to 16 MiB"
            )


# ---------------------------------------------------------------------------------------------
# Input sizes


def _utf8_len(value: str) -> int:
    # Lone surrogates can arrive through JSON escapes; count them as they would be stored.
    return len(value) if value.isascii() else len(value.encode("utf-8", "surrogatepass"))


def arguments_bytes(arguments: Mapping[str, str]) -> int:
    """The size of an argument map as it travels: UTF-8 bytes of every key and value."""
    return sum(_utf8_len(k) + _utf8_len(v) for k, v in arguments.items())


def merged_arguments(
    defaults: Mapping[str, str], overrides: Mapping[str, str], fixed: Mapping[str, str]
) -> dict[str, str]:
    """Glue's precedence, as the scheduler applies it: defaults, the run's, non-overridable."""
    return {**defaults, **overrides, **fixed}


def _too_long(field: str, limit: int, got: int, unit: str, flag: str) -> InvalidInputException:
    return InvalidInputException(
        f"{field}: must be at most {limit} {unit} long (got {got}; --{flag})", field=field
    )


def check_string(value: object, field: str, limits: Limits) -> None:
    """A string member the model leaves unbounded: at most ``max_string_length`` characters."""
    if isinstance(value, str) and len(value) > limits.max_string_length:
        raise _too_long(
            field, limits.max_string_length, len(value), "characters", "max-string-length"
        )


def check_arguments(arguments: Mapping[str, str] | None, field: str, limits: Limits) -> None:
    """One argument map: each key, each value, and the whole map within its cap."""
    if not arguments:
        return
    total = 0
    for key, value in arguments.items():
        key_bytes, value_bytes = _utf8_len(key), _utf8_len(value)
        if key_bytes > limits.max_argument_key_bytes:
            where = member_path(field, key)
            raise InvalidInputException(
                f"{where}: the key must be at most {limits.max_argument_key_bytes} bytes "
                f"(UTF-8) long (got {key_bytes}; --max-argument-key-bytes)",
                field=where,
            )
        if value_bytes > limits.max_argument_value_bytes:
            raise _too_long(
                member_path(field, key),
                limits.max_argument_value_bytes,
                value_bytes,
                "bytes (UTF-8)",
                "max-argument-value-bytes",
            )
        total += key_bytes + value_bytes
    if total > limits.max_arguments_bytes:
        raise InvalidInputException(
            f"{field}: the arguments must be at most {limits.max_arguments_bytes} bytes (UTF-8) "
            f"of keys and values in all (got {total}; --max-arguments-bytes)",
            field=field,
        )


def check_merged(
    job_name: str,
    defaults: Mapping[str, str],
    overrides: Mapping[str, str],
    fixed: Mapping[str, str],
    field: str,
    limits: Limits,
    *,
    started_by: str = "",
) -> None:
    """The arguments a run of ``job_name`` would get, merged, within ``max_arguments_bytes``.

    ``started_by`` names what would start the run, for the message ("trigger T's action 2").

    They are what the scheduler passes to the process and sends back in every event of the
    run, so the cap keeps every such message far below gRPC's limit.
    """
    size = arguments_bytes(merged_arguments(defaults, overrides, fixed))
    if size > limits.max_arguments_bytes:
        raise InvalidInputException(
            f"{field}: a run of job {job_name}{' started by ' + started_by if started_by else ''} "
            f"would get {size} bytes (UTF-8) of arguments once "
            "merged with the job's DefaultArguments and NonOverridableArguments; at most "
            f"{limits.max_arguments_bytes} are allowed (--max-arguments-bytes)",
            field=field,
        )


def check_job(definition: Mapping[str, Any], job_name: str, prefix: str, limits: Limits) -> None:
    """A job definition (CreateJob, or UpdateJob's JobUpdate with ``prefix`` "JobUpdate.")."""
    check_string(definition.get("Role"), f"{prefix}Role", limits)
    check_string(definition.get("LogUri"), f"{prefix}LogUri", limits)
    command = definition.get("Command")
    if isinstance(command, Mapping):
        check_string(command.get("Name"), f"{prefix}Command.Name", limits)
    defaults = definition.get("DefaultArguments") or {}
    fixed = definition.get("NonOverridableArguments") or {}
    check_arguments(defaults, f"{prefix}DefaultArguments", limits)
    check_arguments(fixed, f"{prefix}NonOverridableArguments", limits)
    # A run with no arguments of its own already gets both maps.
    check_merged(
        job_name,
        defaults,
        {},
        fixed,
        f"{prefix}DefaultArguments",
        limits,
    )


def check_trigger(definition: Mapping[str, Any], prefix: str, limits: Limits) -> None:
    """A trigger definition's members the model leaves unbounded: actions and their arguments.

    Raises:
        ResourceNumberLimitExceededException: more actions than ``max_actions_per_trigger``.
        InvalidInputException: a Schedule or an action's Arguments over its cap.
    """
    check_string(definition.get("Schedule"), f"{prefix}Schedule", limits)
    actions = definition.get("Actions") or []
    if len(actions) > limits.max_actions_per_trigger:
        raise ResourceNumberLimitExceededException(
            f"{prefix}Actions: a trigger may start at most {limits.max_actions_per_trigger} "
            f"jobs (got {len(actions)} actions; --max-actions-per-trigger)"
        )
    for index, action in enumerate(actions):
        if isinstance(action, Mapping):
            check_arguments(action.get("Arguments"), f"{prefix}Actions[{index}].Arguments", limits)


def fit_page(sizes: list[int], limits: Limits) -> int:
    """How many of a page's items (by serialized size) to return: as many as fit in
    ``max_page_bytes``, and always at least one, so paging always moves on.

    A page of 200 runs with 256 KiB of arguments each would be 50 MiB, which no gRPC client
    accepts by default (4 MiB); Glue's paginators follow a NextToken after a short page.
    """
    total = 0
    for count, size in enumerate(sizes):
        total += size
        if total > limits.max_page_bytes and count:
            return count
    return len(sizes)


def check_batch(names: list[str], field: str, limits: Limits) -> None:
    """The names of one BatchGetJobs / BatchGetTriggers call."""
    if len(names) > limits.max_batch_names:
        raise InvalidInputException(
            f"{field}: must have at most {limits.max_batch_names} names (got {len(names)}; "
            "--max-batch-names)",
            field=field,
        )
