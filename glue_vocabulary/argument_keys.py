"""Job arguments a script would misread as the job's own name or run id.

A run's process gets ``--JOB_NAME <name> --JOB_RUN_ID <id>`` followed by one ``--key value``
pair per argument, a key without ``--`` getting it prefixed (``scheduler_service.commands``).
Job scripts read them with ``getResolvedOptions`` (``runtime/awsglue/utils.py``), which is
argparse: it declares ``--JOB_ID`` and ``--JOB_RUN_ID`` always and ``--JOB_NAME`` when asked,
accepts any unambiguous prefix of an option (``--JOB_N`` is ``--JOB_NAME``) and splits
``--option=value``; a later occurrence wins over the scheduler's earlier one. So:

- a key that is one of those options or a prefix of one longer than ``--`` (``--JOB``,
  ``--JOB_N``, ``JOB_R`` ...) would override the name or run id, or make every script that
  parses its arguments fail on an ambiguous option;
- a key holding ``=`` is read as ``--option`` with the rest as its value (``--JOB_N=x``), and
  no key with ``=`` reaches a script as itself;
- a value that looks like one of them, alone or in ``--option=value`` form
  (``{"--x": "--JOB_NAME=x"}``), is read as that option whenever the script does not ask for
  ``--x`` (alone, it takes the next token: a key with a space is one argparse reads as a value).

Other keys Glue reserves for itself (``--job-bookmark-option``, ``--TempDir`` ...) are
legitimate settings and stay allowed.
"""

from __future__ import annotations

from typing import Final

__all__ = ["RESERVED_OPTIONS", "key_problem", "value_problem"]

RESERVED_OPTIONS: Final = ("--JOB_NAME", "--JOB_RUN_ID", "--JOB_ID")
"""Options that identify the run to its script: set by the scheduler or declared by the
awsglue library, never by a job's arguments."""

# What each reserved option tells a script, for messages.
_MEANING: Final = {
    "--JOB_NAME": "the job's own name",
    "--JOB_RUN_ID": "the run's own id",
    "--JOB_ID": "the job's own id",
}
_ARGPARSE: Final = (
    "job scripts read their arguments with getResolvedOptions, which uses argparse, and "
    "argparse accepts any unambiguous prefix of an option"
)


def _shadowed(option: str) -> list[str]:
    """The reserved options ``option`` names, itself or as an argparse prefix."""
    if len(option) <= 2 or not option.startswith("--"):
        return []
    return [reserved for reserved in RESERVED_OPTIONS if reserved.startswith(option)]


def _consequence(what: str, shadowed: list[str]) -> str:
    if len(shadowed) == 1:
        return f"a script would read {what} as {shadowed[0]}, overriding {_MEANING[shadowed[0]]}"
    return (
        f"{what} is a prefix of {', '.join(shadowed)}: a script would refuse it as ambiguous "
        "or read it as one of them, overriding the job's name or the run's id"
    )


def key_problem(key: str) -> str | None:
    """Why ``key`` cannot be a job argument's key, or None if it can."""
    if "=" in key:
        return (
            'must not contain "=": argparse (getResolvedOptions) reads "--option=value" as '
            'the option before the "=" with the rest as its value, so no script would see '
            "this key as given (and --JOB_NAME=... would override the job's own name)"
        )
    option = key if key.startswith("--") else f"--{key}"
    shadowed = _shadowed(option)
    if not shadowed:
        return None
    what = "this key" if key == option else f"this key (passed as {option})"
    return f"is reserved: {_ARGPARSE}, so {_consequence(what, shadowed)}"


def value_problem(value: str) -> str | None:
    """Why ``value`` cannot be a job argument's value, or None if it can."""
    shadowed = _shadowed(value.split("=", 1)[0])
    if not shadowed:
        return None
    return (
        f"must not look like a reserved option: {_ARGPARSE}, and takes a value that looks "
        "like an option for one whenever the script does not ask for this argument's key, "
        f"so {_consequence('this value', shadowed)}"
    )
