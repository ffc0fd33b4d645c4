"""Parsing gluectl's argument values: KEY=VALUE pairs, job arguments, --when predicates,
action flags, times and ages; a bad value is argparse's usage error.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from clients.gluectl.command_kit import _now
from glue_vocabulary.shapes import GlueDict

WATCHABLE_STATES: Final = ("SUCCEEDED", "STOPPED", "FAILED", "TIMEOUT")
"""The job states a --when condition can name (Glue's Condition.State values for jobs)."""


def key_value(text: str) -> tuple[str, str]:
    """argparse type for ``KEY=VALUE`` (the value may contain ``=`` and be empty)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key, value


def glue_argument_key(key: str) -> str:
    """Glue's spelling of a job argument name: ``day`` -> ``--day`` (``--day`` stays)."""
    return key if key.startswith("--") else f"--{key}"


def job_arguments(pairs: Sequence[tuple[str, str]] | None) -> dict[str, str]:
    """``--arg`` pairs as Glue job arguments (later pairs win)."""
    return {glue_argument_key(key): value for key, value in pairs or ()}


def script_location(path: str) -> str:
    """A ScriptLocation: local paths made absolute, since the scheduler has its own cwd."""
    if "://" in path:
        return path
    return str(Path(path).expanduser().resolve())


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {text!r}")
    return value


# `and` / `or` as words of their own; at either end they leave an empty condition (an error).
_WHEN_JOINER: Final = re.compile(r"(?:^|\s+)(and|or)(?:\s+|$)", re.IGNORECASE)


def when_predicate(text: str) -> GlueDict:
    """argparse type for ``--when``: a CONDITIONAL trigger's Predicate (Glue form).

    ``A=SUCCEEDED and B=SUCCEEDED`` waits for all (Logical AND); ``A=FAILED or B=TIMEOUT`` for
    any (Logical ANY); a single ``A=SUCCEEDED`` is an AND of one. Each condition is JOB=STATE
    with LogicalOperator EQUALS; states are SUCCEEDED, STOPPED, FAILED, TIMEOUT in any case;
    ``and`` / ``or`` in any case, but not both in one predicate (Glue has no nesting).
    """
    parts = _WHEN_JOINER.split(text.strip())
    # re.split with a group alternates operand, joiner, operand ...
    conditions_text, joiners = parts[0::2], {j.lower() for j in parts[1::2]}
    if len(joiners) > 1:
        raise argparse.ArgumentTypeError(
            f"cannot mix 'and' and 'or' in {text!r}: a Glue predicate is all AND or all ANY"
        )
    conditions: list[GlueDict] = []
    for item in conditions_text:
        job, sep, state = item.rpartition("=")
        job, state = job.strip(), state.strip()
        if not sep or not job or not state:
            raise argparse.ArgumentTypeError(
                f"expected JOB=STATE, got {item!r} in {text!r} "
                "(e.g. 'A=SUCCEEDED and B=SUCCEEDED' or 'A=FAILED or B=TIMEOUT')"
            )
        if state.upper() not in WATCHABLE_STATES:
            raise argparse.ArgumentTypeError(
                f"job state {state!r} in {item!r} must be one of {', '.join(WATCHABLE_STATES)}"
            )
        conditions.append({"LogicalOperator": "EQUALS", "JobName": job, "State": state.upper()})
    logical = "ANY" if joiners == {"or"} else "AND"
    return {"Logical": logical, "Conditions": conditions}


def action_argument(text: str) -> tuple[str, str, str]:
    """argparse type for ``--action-arg JOB:KEY=VALUE``: (job, Glue argument name, value).

    The job is what precedes the last ``:`` before the first ``=``, so job names and values
    may contain ``:``; KEY gets a leading ``--`` if missing, as with ``--arg``.
    """
    target, sep, value = text.partition("=")
    job, colon, key = target.rpartition(":")
    if not sep or not colon or not job or not key:
        raise argparse.ArgumentTypeError(f"expected JOB:KEY=VALUE, got {text!r}")
    return job, glue_argument_key(key), value


def action_timeout(text: str) -> tuple[str, int]:
    """argparse type for ``--action-timeout JOB:MINUTES``: (job, minutes)."""
    job, colon, minutes = text.rpartition(":")
    if not colon or not job:
        raise argparse.ArgumentTypeError(f"expected JOB:MINUTES, got {text!r}")
    try:
        value = int(minutes)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a whole number of minutes in {text!r}, got {minutes!r}"
        ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1 minute in {text!r}")
    return job, value


def utc_time(text: str) -> datetime:
    """argparse type for an ISO-8601 time (``2026-03-01T08:00Z``); without an offset, UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO-8601 time such as 2026-03-01T08:00:00Z, got {text!r}"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


_AGE: Final = re.compile(r"(\d+)([smhd])")
_AGE_UNITS: Final = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def since_time(text: str) -> datetime:
    """argparse type for ``--since``: an age (``90m``, ``12h``, ``7d``) before now, or an
    ISO-8601 time as ``utc_time`` takes it."""
    age = _AGE.fullmatch(text.strip())
    if age is None:
        try:
            return utc_time(text)
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(
                f"expected an age such as 90m, 12h, 7d or an ISO-8601 time, got {text!r}"
            ) from None
    return _now() - timedelta(**{_AGE_UNITS[age.group(2)]: int(age.group(1))})
