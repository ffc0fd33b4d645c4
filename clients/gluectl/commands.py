"""gluectl's commands: the argument parser and one coroutine per command.

Each command makes its calls through one ``GlueClient`` and returns an ``ExitCode``; errors
are left to propagate as ``GlueError`` / ``UsageError`` / ``WaitTimeoutError``, and
``__main__.main`` turns them into the one line on stderr and the exit code. ``triggers next``
is the one offline command: a plain function that never opens a client.

The rule between exit codes 1 and 2: a command line gluectl cannot turn into a request (unknown
flags, a malformed ``--when``, an unreadable ``--from-json``) is a usage error (2); a request
the service refuses is a failed operation (1). An invalid schedule is a failed operation
wherever it is found: ``triggers create --schedule`` gets the service's InvalidInputException,
and ``triggers next`` prints that same line itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from importlib import metadata
from pathlib import Path
from typing import Any, Final, TypeVar

from google.protobuf.message import Message

from clients.credentials import CredentialsError, channel_credentials, find_credentials
from clients.glue_client import (
    GlueClient,
    WaitTimeoutError,
    build_request,
    check_members,
    job_update_from_job,
    resource_arn,
)
from clients.gluectl.output import (
    FIRE_HEADERS,
    FORMATS,
    JOB_HEADERS,
    NEXT_HEADERS,
    RECENT_RUN_HEADERS,
    RUN_HEADERS,
    TABLE,
    TAG_HEADERS,
    TRIGGER_HEADERS,
    Output,
    fire_row,
    format_time,
    job_row,
    next_row,
    one_line,
    recent_run_row,
    run_row,
    short_run_id,
    tag_rows,
    trigger_row,
)
from glue.v1 import glue_pb2
from glue_vocabulary.cron import InvalidScheduleError, parse_schedule
from glue_vocabulary.shapes import GlueDict, message_members, to_glue
from servicekit.errors import InvalidInputException

M = TypeVar("M", bound=Message)

DEFAULT_ENDPOINT: Final = "127.0.0.1:50051"
DEFAULT_ROLE: Final = "arn:aws:iam::000000000000:role/gluectl"
"""Glue requires a Role; nothing here assumes it, so a placeholder does when none is given."""
DEFAULT_COMMAND: Final = "pythonshell"
DISTRIBUTION: Final = "glue-scheduler"
# GetJobRuns' largest page (Glue's model): fewer round trips for long histories.
_MAX_RUNS_PAGE: Final = 200
# BatchGetJobs chunk for `jobs list`: keeps each answer small whatever the number of jobs.
_BATCH_GET: Final = 100
# ListTriggers' largest page (Glue's model).
_MAX_TRIGGERS_PAGE: Final = 200
DEFAULT_RECENT: Final = 20
"""How many runs `runs list` shows across jobs unless --max says otherwise: a screenful."""
DEFAULT_NEXT: Final = 5
"""How many fire times `triggers next` prints unless -n says otherwise."""
WATCHABLE_STATES: Final = ("SUCCEEDED", "STOPPED", "FAILED", "TIMEOUT")
"""The job states a --when condition can name (Glue's Condition.State values for jobs)."""


class ExitCode(IntEnum):
    """gluectl's exit statuses."""

    OK = 0
    """The command did what it was asked."""
    FAILED = 1
    """The operation failed: the service answered with a Glue error, a BatchStopJobRun id was
    refused, a wait gave up (--max-wait) before the run ended, or `triggers next` was given an
    invalid schedule."""
    USAGE = 2
    """The command line was wrong (argparse's status, a malformed --when), or a --from-json
    file unreadable."""
    UNREACHABLE = 3
    """The service could not be reached (or answered UNAVAILABLE): retrying later may work."""
    RUN_NOT_SUCCEEDED = 4
    """A waited-for run ended in a state other than SUCCEEDED."""


EXIT_CODES_HELP: Final = """\
exit codes:
  0  ok
  1  the operation failed (a Glue error, printed as one line on stderr:
     "gluectl: EntityNotFoundException: Job x not found."); also: a run that
     `runs stop` could not stop, --max-wait ran out, or
     `triggers next` was given an invalid schedule (it prints the line
     CreateTrigger would answer, naming the bad field)
  2  usage error (including a malformed --when)
  3  the service is unreachable (or answered UNAVAILABLE); retry later
  4  a waited-for run (runs start --wait, runs wait) ended in a state other
     than SUCCEEDED

environment:
  GLUECTL_ENDPOINT  the default for --endpoint
  GLUECTL_TLS_CA    the default for --tls-ca
  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_PROFILE, AWS_SHARED_CREDENTIALS_FILE
                    the access key, found as the aws CLI finds it: --profile, else these
                    variables, else ~/.aws/credentials [default]

AWS tools:
  boto3 and the aws CLI work against the catalog's HTTP gateway (catalog
  --http-listen; `make run` serves it at 127.0.0.1:50080) given its endpoint
  URL, a region and any access key (one from its --access-keys file, if set):
    aws glue --endpoint-url http://127.0.0.1:50080 list-jobs
    boto3.client("glue", endpoint_url="http://127.0.0.1:50080",
                 region_name="us-east-1")
    export AWS_ENDPOINT_URL_GLUE=http://127.0.0.1:50080  # botocore honours it
"""


class UsageError(Exception):
    """The command line (or a file it names) cannot be turned into a request."""


Handler = Callable[[GlueClient, argparse.Namespace, Output], Awaitable[ExitCode]]
OfflineHandler = Callable[[argparse.Namespace, Output], ExitCode]
"""A command that needs no service (``triggers next``): no client is opened for it."""


# -- argument parsing ------------------------------------------------------------------------


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


def gluectl_version() -> str:
    """The installed project's version (gluectl ships with the services)."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


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


def build_parser(
    *, default_endpoint: str = DEFAULT_ENDPOINT, default_tls_ca: str | None = None
) -> argparse.ArgumentParser:
    """gluectl's parser; each command's parser sets ``handler`` and ``parser``."""
    parser = argparse.ArgumentParser(
        prog="gluectl",
        description="Manage Glue jobs, job runs, job bookmarks, triggers and their tags on a "
        "self-hosted Glue scheduler.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument(
        "--endpoint",
        metavar="HOST:PORT",
        default=default_endpoint,
        help="the catalog service's address (default: %(default)s; env GLUECTL_ENDPOINT)",
    )
    _add_output_option(parser, default=TABLE)
    parser.add_argument(
        "--profile",
        help="use this profile's access key from the shared credentials file (env AWS_PROFILE)",
    )
    parser.add_argument(
        "--access-key-id",
        help="the access key to call with (safer: AWS_ACCESS_KEY_ID or a profile; a secret on "
        "the command line is visible to other users of the machine)",
    )
    parser.add_argument("--secret-access-key", help="the secret of --access-key-id")
    parser.add_argument(
        "--tls",
        action="store_true",
        help="connect over TLS, checking the service's certificate against the system's CAs",
    )
    parser.add_argument(
        "--tls-ca",
        metavar="FILE",
        default=default_tls_ca,
        help="connect over TLS, checking the service's certificate against this CA "
        "(env GLUECTL_TLS_CA)",
    )
    parser.add_argument(
        "--tls-cert", metavar="FILE", help="a client certificate to present (with --tls-key)"
    )
    parser.add_argument("--tls-key", metavar="FILE", help="the key of --tls-cert")
    parser.add_argument(
        "--call-timeout",
        metavar="SECONDS",
        type=_positive_float,
        default=30.0,
        dest="rpc_timeout",
        help="deadline of each call to the service (default: %(default)gs); log streams that "
        "follow a run are not limited by it (how long to wait for a run: --max-wait)",
    )
    parser.add_argument(
        "--full-ids",
        action="store_true",
        help="print whole run ids in tables (default: shortened to fit 100 columns; "
        "`runs start`, -o json and `runs get` always print them whole)",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {gluectl_version()}")
    # -o also after the command (`gluectl jobs get x -o json`); SUPPRESS leaves the value given
    # before the command in place when it is not repeated.
    common = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    _add_output_option(common, default=argparse.SUPPRESS)

    commands = parser.add_subparsers(metavar="COMMAND", dest="command", required=True)
    _add_jobs_commands(commands, common)
    _add_runs_commands(commands, common)
    _add_bookmarks_commands(commands, common)
    _add_triggers_commands(commands, common)
    _add_tags_commands(commands, common)

    logs = _command(
        commands,
        "logs",
        common,
        logs_command,
        help="print a run's log (stdout and stderr of its process)",
        description="Write a run's captured stdout and stderr to stdout, byte for byte, "
        "interleaved as the job wrote them (--output does not apply).",
    )
    logs.add_argument("job", metavar="JOB")
    logs.add_argument("run_id", metavar="RUN_ID")
    logs.add_argument(
        "-f", "--follow", action="store_true", help="keep printing new output until the run ends"
    )
    logs.add_argument(
        "--stream",
        choices=("stdout", "stderr"),
        help="print only the lines the job wrote to this stream (default: both)",
    )
    return parser


def _add_output_option(parser: argparse.ArgumentParser, *, default: Any) -> None:
    parser.add_argument(
        "-o",
        "--output",
        choices=FORMATS,
        default=default,
        help="json: the operation's Glue-form response, for scripts; table: for people "
        "(default: table)",
    )


def _command(
    group: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    common: argparse.ArgumentParser,
    handler: Handler | None,
    *,
    offline_handler: OfflineHandler | None = None,
    **kwargs: Any,
) -> argparse.ArgumentParser:
    parser = group.add_parser(
        name,
        parents=[common],
        allow_abbrev=False,
        **kwargs,
    )
    if handler is not None:
        parser.set_defaults(handler=handler, parser=parser)
    if offline_handler is not None:
        parser.set_defaults(offline_handler=offline_handler, parser=parser)
    return parser


class _Group:
    """A command group (``jobs``, ``runs`` ...) whose actions all take the common options."""

    def __init__(
        self,
        commands: argparse._SubParsersAction[argparse.ArgumentParser],
        common: argparse.ArgumentParser,
        name: str,
        help: str,
    ) -> None:
        self._common = common
        parser = _command(commands, name, common, None, help=help)
        self._actions = parser.add_subparsers(metavar="ACTION", dest="action", required=True)

    def action(self, name: str, handler: Handler | None, **kwargs: Any) -> argparse.ArgumentParser:
        """Add the action ``name``; ``kwargs`` as for ``_command`` (help, description ...)."""
        return _command(self._actions, name, self._common, handler, **kwargs)


def _add_definition_flags(parser: argparse.ArgumentParser, *, update: bool) -> None:
    if update:
        parser.add_argument("--script", metavar="PATH", help="the job's script (a local path)")
    else:
        parser.add_argument(
            "--script",
            metavar="PATH",
            help="the job's script (a local path); required unless --from-json has "
            "Command.ScriptLocation",
        )
    parser.add_argument(
        "--command",
        choices=("pythonshell", "glueetl"),
        help=f"Command.Name (default: {DEFAULT_COMMAND})" if not update else "Command.Name",
    )
    parser.add_argument(
        "--arg",
        metavar="KEY=VALUE",
        type=key_value,
        action="append",
        help="a DefaultArguments entry (repeatable); KEY gets a leading -- if missing "
        "(to write the dashes yourself: --arg=--KEY=VALUE)",
    )
    parser.add_argument(
        "--non-overridable-arg",
        metavar="KEY=VALUE",
        type=key_value,
        action="append",
        help="a NonOverridableArguments entry (repeatable); KEY gets a leading -- if missing",
    )
    parser.add_argument("--timeout-minutes", metavar="N", type=int, help="Timeout, in minutes")
    parser.add_argument("--max-retries", metavar="N", type=int, help="MaxRetries")
    parser.add_argument(
        "--max-concurrent-runs",
        metavar="N",
        type=int,
        help="ExecutionProperty.MaxConcurrentRuns",
    )
    parser.add_argument("--description", metavar="TEXT", help="Description")
    parser.add_argument(
        "--role",
        metavar="ROLE",
        help="Role" if update else f"Role (default: {DEFAULT_ROLE})",
    )


def _add_jobs_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    jobs = _Group(commands, common, "jobs", help="create, inspect, change, delete jobs")

    create = jobs.action(
        "create",
        jobs_create,
        help="create a job (CreateJob)",
        description="Create a job. Flags override the members of a --from-json request.",
    )
    create.add_argument("name", metavar="NAME")
    _add_definition_flags(create, update=False)
    create.add_argument(
        "--tag", metavar="K=V", type=key_value, action="append", help="a tag (repeatable)"
    )
    create.add_argument(
        "--from-json",
        metavar="FILE",
        help="a CreateJob request in Glue's JSON form, as `aws glue create-job "
        "--cli-input-json` takes (or `gluectl -o json jobs get` prints); - reads stdin",
    )

    get = jobs.action("get", jobs_get, help="show a job (GetJob)")
    get.add_argument("name", metavar="NAME")

    listing = jobs.action("list", jobs_list, help="list jobs (ListJobs, every page)")
    listing.add_argument(
        "--tag",
        metavar="K=V",
        type=key_value,
        action="append",
        help="only jobs with this tag (repeatable: all must match)",
    )

    update = jobs.action(
        "update",
        jobs_update,
        help="change a job (UpdateJob)",
        description="Change a job. UpdateJob replaces the whole definition, so this reads the "
        "current one (GetJob), applies the flags on top and sends the result: members not "
        "named keep their values. With --from-json the file is the new definition instead "
        "(members it leaves out return to their defaults), again with the flags on top. "
        "Tags cannot be changed by UpdateJob.",
    )
    update.add_argument("name", metavar="NAME")
    _add_definition_flags(update, update=True)
    update.add_argument(
        "--from-json",
        metavar="FILE",
        help='an UpdateJob request in Glue\'s JSON form ({"JobName": ..., "JobUpdate": '
        "{...}}, as `aws glue update-job --cli-input-json` takes) or a `gluectl -o json jobs "
        "get` document; - reads stdin",
    )

    delete = jobs.action(
        "delete",
        jobs_delete,
        help="delete a job and its run history (DeleteJob)",
        description="Delete a job and its run history. Deleting a job that does not exist "
        "succeeds, as in Glue.",
    )
    delete.add_argument("name", metavar="NAME")


def _add_runs_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    runs = _Group(commands, common, "runs", help="start, inspect, stop, wait for runs")

    start = runs.action(
        "start",
        runs_start,
        help="start a run (StartJobRun); prints its id",
        description="Start a run of JOB and print its id. With --wait, wait until it ends "
        "and exit 4 unless it SUCCEEDED; a FAILED run with retries left is retried as a new "
        "run (Attempt n+1), which --wait follows to the final attempt. --follow also prints "
        "each attempt's log as it is written.",
    )
    start.add_argument("job", metavar="JOB")
    start.add_argument(
        "--arg",
        metavar="KEY=VALUE",
        type=key_value,
        action="append",
        help="a run argument (repeatable), over the job's DefaultArguments; KEY gets a "
        "leading -- if missing (to write the dashes yourself: --arg=--KEY=VALUE)",
    )
    start.add_argument("--timeout-minutes", metavar="N", type=int, help="this run's Timeout")
    start.add_argument(
        "--retry-of", metavar="RUN_ID", help="an earlier run this one retries (JobRunId)"
    )
    start.add_argument(
        "--wait",
        action="store_true",
        help="wait for the run (and its retries) to end; exit 4 unless the last SUCCEEDED",
    )
    _add_wait_flags(start, implies_wait=True)

    get = runs.action("get", runs_get, help="show a run (GetJobRun)")
    get.add_argument("job", metavar="JOB")
    get.add_argument("run_id", metavar="RUN_ID")

    listing = runs.action(
        "list",
        runs_list,
        help="list runs, newest first: a job's, or recent ones across jobs",
        description="With JOB alone: every run of JOB, newest first (GetJobRuns). Without JOB, "
        f"or with a filter: recent runs across jobs (GetRecentJobRuns; the newest "
        f"{DEFAULT_RECENT} unless --max), including runs of jobs deleted since, marked "
        "'(deleted)'.",
    )
    listing.add_argument("job", metavar="JOB", nargs="?", help="only this job's runs")
    listing.add_argument(
        "--state",
        metavar="STATE",
        type=str.upper,
        action="append",
        dest="states",
        help="only runs in this state (repeatable: any of them), e.g. FAILED, RUNNING",
    )
    listing.add_argument("--trigger", metavar="NAME", help="only runs this trigger started")
    listing.add_argument(
        "--since",
        metavar="WHEN",
        type=since_time,
        help="only runs started since then: an ISO-8601 time (UTC if it has no offset) or an "
        "age such as 90m, 12h, 7d",
    )
    listing.add_argument(
        "--max",
        metavar="N",
        type=_positive_int,
        dest="max_runs",
        help=f"at most N runs (default: all of JOB's; across jobs {DEFAULT_RECENT})",
    )

    stop = runs.action(
        "stop",
        runs_stop,
        help="stop runs (BatchStopJobRun)",
        description="Ask runs to stop; prints what happened to each id, and exits 1 if any "
        "could not be stopped.",
    )
    stop.add_argument("job", metavar="JOB")
    stop.add_argument("run_ids", metavar="RUN_ID", nargs="+")

    wait = runs.action(
        "wait",
        runs_wait,
        help="wait for a run (and its retries) to end; exit 4 unless the last SUCCEEDED",
        description="Wait until the run ends; if it FAILED and was retried, wait for the retry, "
        "to the final attempt. Exit 4 unless that SUCCEEDED.",
    )
    wait.add_argument("job", metavar="JOB")
    wait.add_argument("run_id", metavar="RUN_ID")
    _add_wait_flags(wait, implies_wait=False)


def _add_wait_flags(parser: argparse.ArgumentParser, *, implies_wait: bool) -> None:
    also = " (implies --wait)" if implies_wait else ""
    parser.add_argument(
        "--follow",
        action="store_true",
        help=f"print each attempt's log while waiting{also}; not with -o json",
    )
    parser.add_argument(
        "--max-wait",
        metavar="SECONDS",
        type=_positive_float,
        help=f"give up (exit 1) after this long (default: as long as it takes){also}",
    )


def _add_bookmarks_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    bookmarks = _Group(commands, common, "bookmarks", help="show, reset job bookmarks")

    get = bookmarks.action(
        "get",
        bookmarks_get,
        help="show a job's bookmark entry (GetJobBookmark)",
        description="Show the job bookmark the next run of JOB starts from, and the run that "
        "last committed one. With --run-id, the entry as that run's commit left it.",
    )
    get.add_argument("job", metavar="JOB")
    get.add_argument("--run-id", metavar="RUN_ID", help="a run that committed a bookmark")

    reset = bookmarks.action(
        "reset",
        bookmarks_reset,
        help="reset a job's bookmark (ResetJobBookmark)",
        description="Make the next run of JOB start from the beginning; with --run-id, from "
        "the bookmark as it was just before that run committed (the next run reprocesses what "
        "that run and every later one processed). Prints the entry after the reset.",
    )
    reset.add_argument("job", metavar="JOB")
    reset.add_argument("--run-id", metavar="RUN_ID", help="rewind to just before this run's commit")


def _add_action_flags(parser: argparse.ArgumentParser, *, update: bool) -> None:
    base = "the --action list, else " + (
        "--from-json's or the trigger's current Actions" if update else "--from-json's Actions"
    )
    parser.add_argument(
        "--action",
        metavar="JOB",
        action="append",
        dest="action_jobs",
        help="a job the trigger starts (repeatable, in order; replaces "
        + ("the trigger's Actions)" if update else "--from-json's Actions)"),
    )
    parser.add_argument(
        "--action-arg",
        metavar="JOB:K=V",
        type=action_argument,
        action="append",
        help=f"an argument for JOB's run, over its DefaultArguments (repeatable); K gets a "
        f"leading -- if missing; applies to {base}",
    )
    parser.add_argument(
        "--action-timeout",
        metavar="JOB:MINUTES",
        type=action_timeout,
        action="append",
        help=f"the Timeout of JOB's run, over the job's; applies to {base}",
    )


_WHEN_HELP: Final = (
    "a CONDITIONAL trigger: 'A=SUCCEEDED and B=SUCCEEDED' fires when all have (Logical AND), "
    "'A=FAILED or B=TIMEOUT' when any has (ANY); states SUCCEEDED, STOPPED, FAILED, TIMEOUT"
)


def _add_triggers_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    triggers = _Group(
        commands,
        common,
        "triggers",
        help="create, inspect, start, stop, fire triggers; preview schedules",
    )

    create = triggers.action(
        "create",
        triggers_create,
        help="create a trigger (CreateTrigger)",
        description="Create a trigger that starts the --action jobs: on a schedule "
        "(--schedule), when started or fired (--on-demand), or when other jobs' runs end "
        "(--when). Flags override the members of a --from-json request. Without --start a "
        "SCHEDULED or CONDITIONAL trigger stays CREATED until `triggers start`.",
    )
    create.add_argument("name", metavar="NAME")
    kind = create.add_mutually_exclusive_group()
    kind.add_argument(
        "--schedule",
        metavar="'cron(...)'",
        help="a SCHEDULED trigger on this Glue cron expression, in UTC (preview it with "
        "`gluectl triggers next`)",
    )
    kind.add_argument(
        "--on-demand",
        action="store_true",
        help="an ON_DEMAND trigger: each `triggers start` fires it once",
    )
    kind.add_argument("--when", metavar="CONDITIONS", type=when_predicate, help=_WHEN_HELP)
    _add_action_flags(create, update=False)
    create.add_argument(
        "--start",
        action="store_true",
        help="activate it at once (StartOnCreation; SCHEDULED and CONDITIONAL only)",
    )
    create.add_argument("--description", metavar="TEXT", help="Description")
    create.add_argument(
        "--tag", metavar="K=V", type=key_value, action="append", help="a tag (repeatable)"
    )
    create.add_argument(
        "--from-json",
        metavar="FILE",
        help="a CreateTrigger request in Glue's JSON form, as `aws glue create-trigger "
        "--cli-input-json` takes (or `gluectl -o json triggers get` prints); - reads stdin",
    )

    listing = triggers.action(
        "list",
        triggers_list,
        help="list triggers (ListTriggers, every page)",
        description="List triggers: names (-o json, as ListTriggers), or a table of Name, "
        "Type, State, When (the schedule or the predicate) and Actions.",
    )
    listing.add_argument(
        "--dependent-job",
        metavar="JOB",
        help="only triggers that start JOB (DependentJobName; as AWS documents, every trigger "
        "when none does)",
    )
    listing.add_argument(
        "--tag",
        metavar="K=V",
        type=key_value,
        action="append",
        help="only triggers with this tag (repeatable: all must match)",
    )

    get = triggers.action("get", triggers_get, help="show a trigger (GetTrigger)")
    get.add_argument("name", metavar="NAME")

    start = triggers.action(
        "start",
        triggers_start,
        help="activate a trigger; fire an ON_DEMAND one (StartTrigger)",
    )
    start.add_argument("name", metavar="NAME")
    stop = triggers.action(
        "stop",
        triggers_stop,
        help="deactivate a trigger; its running runs go on (StopTrigger)",
    )
    stop.add_argument("name", metavar="NAME")

    update = triggers.action(
        "update",
        triggers_update,
        help="change a trigger (UpdateTrigger)",
        description="Change a trigger: only the parts given change (a TriggerUpdate with just "
        "those members); an ACTIVATED trigger is rescheduled before this returns. --action "
        "replaces the whole Actions list; --action-arg and --action-timeout alone change the "
        "trigger's current actions (read with GetTrigger first). With --from-json the file's "
        "TriggerUpdate is the base, with the flags on top. Type and Tags cannot be changed.",
    )
    update.add_argument("name", metavar="NAME")
    update.add_argument(
        "--schedule", metavar="'cron(...)'", help="the new schedule (SCHEDULED triggers)"
    )
    update.add_argument(
        "--when",
        metavar="CONDITIONS",
        type=when_predicate,
        help="the new predicate (CONDITIONAL triggers), as for `triggers create --when`",
    )
    _add_action_flags(update, update=True)
    update.add_argument("--description", metavar="TEXT", help="Description")
    update.add_argument(
        "--from-json",
        metavar="FILE",
        help='an UpdateTrigger request in Glue\'s JSON form ({"Name": ..., "TriggerUpdate": '
        "{...}}) or a `gluectl -o json triggers get` document; - reads stdin",
    )

    delete = triggers.action(
        "delete",
        triggers_delete,
        help="delete a trigger (DeleteTrigger)",
        description="Unschedule and delete a trigger; runs it started go on. Deleting a trigger "
        "that does not exist succeeds, as in Glue.",
    )
    delete.add_argument("name", metavar="NAME")

    fire = triggers.action(
        "fire",
        triggers_fire,
        help="fire a trigger now (FireTrigger); prints the run ids",
        description="Fire the trigger's actions once, now, whatever its state or schedule "
        '(not EVENT triggers): an operator\'s "run now". The fire is a ledger entry like '
        "any other. Prints the id of each run started, one per action. Not a Glue operation.",
    )
    fire.add_argument("name", metavar="NAME")

    fires = triggers.action(
        "fires",
        triggers_fires,
        help="show a trigger's fire ledger, newest first (GetTriggerFires)",
        description="The trigger's recent fire-ledger entries, newest first: when each was "
        "due (Scheduled) and written (Recorded), its Outcome (FIRED; SKIPPED or COALESCED "
        "for due times missed while the scheduler was down), how many due times it stands "
        "for, the runs it started, and why. Not a Glue operation.",
    )
    fires.add_argument("name", metavar="NAME")
    fires.add_argument(
        "--max",
        metavar="N",
        type=_positive_int,
        dest="max_fires",
        help="at most N entries (default: the service's, 20; at most 200)",
    )

    upcoming = triggers.action(
        "next",
        None,
        offline_handler=triggers_next,
        help="print a schedule's next fire times (offline: no service is contacted)",
        description="Print the next fire times of a Glue cron expression, in UTC, as the "
        "scheduler computes them; nothing is created and no service is contacted. An invalid "
        "expression prints the one line CreateTrigger would answer (naming the bad field) and "
        "exits 1.",
    )
    upcoming.add_argument("schedule", metavar="'cron(...)'")
    upcoming.add_argument(
        "-n",
        metavar="N",
        type=_positive_int,
        default=DEFAULT_NEXT,
        dest="count",
        help="how many fire times (default: %(default)s)",
    )
    upcoming.add_argument(
        "--after",
        metavar="ISO-TIME",
        type=utc_time,
        help="start strictly after this time (e.g. 2026-03-01T08:00Z; UTC if it has no "
        "offset; default: now)",
    )


def _add_resource_flags(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--job", metavar="NAME", help="the job NAME")
    which.add_argument("--trigger", metavar="NAME", help="the trigger NAME")
    which.add_argument(
        "--arn",
        metavar="ARN",
        help="a job's or trigger's ARN: arn:aws:glue:REGION:ACCOUNT:job/NAME or "
        ".../trigger/NAME (any region and account)",
    )


def _add_tags_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    tags = _Group(commands, common, "tags", help="show, add, remove tags of jobs, triggers")

    get = tags.action(
        "get",
        tags_get,
        help="show a job's or trigger's tags (GetTags)",
        description="Print the tags of the job, trigger or ARN given: a Key/Value table, or "
        "(-o json) GetTags' response.",
    )
    _add_resource_flags(get)

    add = tags.action(
        "add",
        tags_add,
        help="add tags, or change their values (TagResource)",
        description="Add tags to a job or trigger; a key it already has gets the new value. "
        "Prints the resource's ARN. Tags are not part of a definition: adding them changes "
        "nothing about how the job runs or when the trigger fires.",
    )
    _add_resource_flags(add)
    add.add_argument(
        "tags",
        metavar="KEY=VALUE",
        type=key_value,
        nargs="+",
        help="a tag (the value may be empty; a repeated key: the last value wins)",
    )

    remove = tags.action(
        "remove",
        tags_remove,
        help="remove tags (UntagResource)",
        description="Remove the tags with these keys from a job or trigger (keys it does not "
        "have are ignored). Prints the resource's ARN.",
    )
    _add_resource_flags(remove)
    remove.add_argument("keys", metavar="KEY", nargs="+", help="a tag key")


# -- running ---------------------------------------------------------------------------------


async def run(args: argparse.Namespace, out: Output) -> ExitCode:
    """Run the parsed command: offline, or against the service at ``args.endpoint``."""
    offline: OfflineHandler | None = getattr(args, "offline_handler", None)
    if offline is not None:
        return offline(args, out)
    handler: Handler = args.handler
    try:
        credentials = find_credentials(
            args.access_key_id, args.secret_access_key, profile=args.profile
        )
        tls = None
        if args.tls or args.tls_ca or args.tls_cert:
            if (args.tls_cert is None) != (args.tls_key is None):
                raise CredentialsError("--tls-cert and --tls-key go together")
            tls = channel_credentials(
                Path(args.tls_ca) if args.tls_ca else None,
                cert_file=Path(args.tls_cert) if args.tls_cert else None,
                key_file=Path(args.tls_key) if args.tls_key else None,
            )
    except CredentialsError as exc:
        raise UsageError(str(exc)) from None
    async with GlueClient(
        args.endpoint, timeout=args.rpc_timeout, credentials=credentials, tls=tls
    ) as client:
        return await handler(client, args, out)


def _now() -> datetime:
    return datetime.now(UTC)


# -- jobs ------------------------------------------------------------------------------------


def read_json_document(source: str) -> GlueDict:
    """The JSON object in a file (``-``: stdin).

    Raises:
        UsageError: the file cannot be read, is not JSON, or is not an object.
    """
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
        doc = json.loads(text)
    except OSError as exc:
        raise UsageError(f"--from-json: cannot read {source}: {exc.strerror}") from None
    except ValueError as exc:
        raise UsageError(f"--from-json: {source} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise UsageError(f"--from-json: {source} must hold a JSON object")
    return doc


def _only_members(doc: Mapping[str, Any], message_type: type[Message]) -> GlueDict:
    # A `jobs get` document carries read-only members (CreatedOn, ProfileName ...) that no
    # request takes; they are dropped rather than refused, so a job can be cloned.
    wanted = set(message_members(message_type))
    return {k: v for k, v in doc.items() if k in wanted}


def _checked(doc: GlueDict, message_type: type[Message], source: str) -> GlueDict:
    try:
        check_members(message_type, doc)
    except ValueError as exc:
        raise UsageError(f"--from-json: {source}: {exc}") from None
    return doc


def create_definition(args: argparse.Namespace) -> GlueDict:
    """The CreateJob request (Glue form) the command line asks for.

    Raises:
        UsageError: no script, or an unusable --from-json file.
    """
    doc: GlueDict = {}
    if args.from_json:
        source = read_json_document(args.from_json)
        if isinstance(source.get("Job"), dict):
            doc = _only_members(source["Job"], glue_pb2.CreateJobRequest)
        else:
            doc = _checked(source, glue_pb2.CreateJobRequest, args.from_json)
    doc = apply_definition_flags(doc, args)
    doc["Name"] = args.name
    doc.setdefault("Role", DEFAULT_ROLE)
    doc["Command"].setdefault("Name", DEFAULT_COMMAND)
    if args.tag:
        doc["Tags"] = {**_structure(doc, "Tags"), **dict(args.tag)}
    return doc


def update_definition(args: argparse.Namespace, current: glue_pb2.Job | None) -> GlueDict:
    """The JobUpdate (Glue form): the --from-json file, else ``current``, with the flags on top.

    Raises:
        UsageError: an unusable --from-json file, or a definition with no script.
    """
    if args.from_json:
        source = read_json_document(args.from_json)
        if isinstance(source.get("JobUpdate"), dict):
            doc = _checked(source["JobUpdate"], glue_pb2.JobUpdate, args.from_json)
        elif isinstance(source.get("Job"), dict):
            doc = _only_members(source["Job"], glue_pb2.JobUpdate)
        else:
            raise UsageError(
                f"--from-json: {args.from_json} must hold an UpdateJob request "
                '({"JobName": ..., "JobUpdate": {...}}) or a GetJob response ({"Job": {...}})'
            )
    else:
        assert current is not None
        doc = to_glue(job_update_from_job(current))
    return apply_definition_flags(doc, args)


def _structure(doc: Mapping[str, Any], member: str) -> GlueDict:
    # A --from-json file may hold anything where a structure belongs; flags are merged into it.
    value = doc.get(member)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UsageError(f"--from-json: {member} must be a JSON object")
    return dict(value)


def apply_definition_flags(doc: GlueDict, args: argparse.Namespace) -> GlueDict:
    """``doc`` (a CreateJob request or JobUpdate, Glue form) with the definition flags applied.

    Raises:
        UsageError: the result has no Command.ScriptLocation.
    """
    doc = dict(doc)
    command = _structure(doc, "Command")
    if args.script:
        command["ScriptLocation"] = script_location(args.script)
    if args.command:
        command["Name"] = args.command
    if not command.get("ScriptLocation"):
        raise UsageError("--script is required (or Command.ScriptLocation in --from-json)")
    doc["Command"] = command
    if args.arg:
        doc["DefaultArguments"] = {
            **_structure(doc, "DefaultArguments"),
            **job_arguments(args.arg),
        }
    if args.non_overridable_arg:
        doc["NonOverridableArguments"] = {
            **_structure(doc, "NonOverridableArguments"),
            **job_arguments(args.non_overridable_arg),
        }
    if args.max_concurrent_runs is not None:
        doc["ExecutionProperty"] = {
            **_structure(doc, "ExecutionProperty"),
            "MaxConcurrentRuns": args.max_concurrent_runs,
        }
    for member, value in (
        ("Timeout", args.timeout_minutes),
        ("MaxRetries", args.max_retries),
        ("Description", args.description),
        ("Role", args.role),
    ):
        if value is not None:
            doc[member] = value
    return doc


def _request(message_type: type[M], doc: GlueDict) -> M:
    # Flags are typed by argparse, but a --from-json file can hold a string where a number
    # belongs, and a number can overflow int32: both are usage errors, not tracebacks.
    try:
        return build_request(message_type, doc, {})
    except ValueError as exc:
        raise UsageError(f"invalid request: {exc}") from None


async def jobs_create(client: GlueClient, args: argparse.Namespace, out: Output) -> ExitCode:
    """``jobs create``: prints the job's name."""
    response = await client.create_job(_request(glue_pb2.CreateJobRequest, create_definition(args)))
    if out.is_json:
        out.document(to_glue(response))
    else:
        out.line(response.name)
    return ExitCode.OK


async def jobs_get(client: GlueClient, args: argparse.Namespace, out: Output) -> ExitCode:
    """``jobs get``: the definition."""
    response = await client.get_job(args.name)
    if out.is_json:
        out.document(to_glue(response))
    else:
        out.details(to_glue(response.job))
    return ExitCode.OK


async def jobs_list(client: GlueClient, args: argparse.Namespace, out: Output) -> ExitCode:
    """``jobs list``: every name (JSON, as ListJobs), or a table of the definitions."""
    names = [name async for name in client.iter_job_names(tags=dict(args.tag or ()))]
    if out.is_json:
        out.document({"JobNames": names})
        return ExitCode.OK
    jobs: list[glue_pb2.Job] = []
    for start in range(0, len(names), _BATCH_GET):
        # A job deleted since ListJobs answered is in JobsNotFound, and simply not shown.
        jobs.extend((await client.batch_get_jobs(names[start : start + _BATCH_GET])).jobs)
    last_runs = {
        run.job_name: run
        async for run in client.iter_recent_job_runs(latest_per_job=True, page_size=_MAX_RUNS_PAGE)
        # A deleted job's run is not the last run of a new job of the same name.
        if not run.job_deleted
    }
    # Scripts are paths: their file name, at the end, is what tells them apart.
    out.table(JOB_HEADERS, (job_row(job, last_runs.get(job.name)) for job in jobs), keep_end=True)
    return ExitCode.OK


async def jobs_update(client: GlueClient, args: argparse.Namespace, out: Output) -> ExitCode:
    """``jobs update``: read, apply the flags, UpdateJob; prints the job's name."""
    current = None if args.from_json else (await client.get_job(args.name)).job
    update = _request(glue_pb2.JobUpdate, update_definition(args, current))
    response = await client.update_job(args.name, update)
    if out.is_json:
        out.document(to_glue(response))
    else:
        out.line(response.job_name)
    return ExitCode.OK


async def jobs_delete(client: GlueClient, args: argparse.Namespace, out: Output) -> ExitCode:
    """``jobs delete``: prints the job's name."""
    response = await client.delete_job(args.name)
    if out.is_json:
        out.document(to_glue(response))
    else:
        out.line(response.job_name)
    return ExitCode.OK


# -- runs ------------------------------------------------------------------------------------


async def runs_start(client: GlueClient, args: argparse.Namespace, out: Output) -> ExitCode:
    """``runs start``: prints the run id; with --wait, follows the run to its end."""
    fields: GlueDict = {}
    if args.arg:
        fields["Arguments"] = job_arguments(args.arg)
    if args.timeout_minutes is not None:
        fields["Timeout"] = args.timeout_minutes
    if args.retry_of:
        fields["JobRunId"] = args.retry_of
    if (args.follow or args.max_wait is not None) and not args.wait:
        args.wait = True
    _check_follow(args, out)
    request = _request(glue_pb2.StartJobRunRequest, fields)
    run_id = (await client.start_job_run(args.job, request)).job_run_id
    if not args.wait:
        if out.is_json:
            out.document({"JobRunId": run_id})
        else:
            out.line(run_id)
        return ExitCode.OK
    if not out.is_json:
        # The id first, so a person can look at the run while this waits.
        out.line(run_id)
    return await _wait(client, args, run_id, out)


def _check_follow(args: argparse.Namespace, out: Output) -> None:
    if args.follow and out.is_json:
        raise UsageError("--follow prints the log on stdout, which -o json keeps for one document")


async def _wait(client: GlueClient, args: argparse.Namespace, run_id: str, out: Output) -> ExitCode:
    """Wait for ``run_id`` and its automatic retries; print the final attempt."""
    job: str = args.job
    deadline = None if args.max_wait is None else time.monotonic() + args.max_wait

    def progress(run: glue_pb2.JobRun) -> None:
        if not out.is_json:
            out.note(f"{run.id}: {run.job_run_state}")

    while True:
        if args.follow:
            await _print_log(client, job, run_id, out, deadline, args.max_wait)
        remaining = None if deadline is None else max(deadline - time.monotonic(), 0.0)
        try:
            run = await client.wait_job_run(job, run_id, timeout=remaining, on_change=progress)
        except WaitTimeoutError as exc:
            # Said as the whole wait the user asked for, not what was left of it.
            raise WaitTimeoutError(exc.run, args.max_wait) from None
        retry = await client.find_retry(job, run)
        if retry is None:
            break
        if not out.is_json:
            out.note(f"{run.id} FAILED; retrying as attempt {retry.attempt}: {retry.id}")
        run_id = retry.id
    if out.is_json:
        out.document({"JobRun": to_glue(run)})
    else:
        out.table(RUN_HEADERS, [run_row(run, _now(), full_id=args.full_ids)])
    if run.job_run_state == "SUCCEEDED":
        return ExitCode.OK
    reason = f": {one_line(run.error_message, 200)}" if run.error_message else ""
    out.error(f"run {run.id} ended {run.job_run_state}{reason}")
    return ExitCode.RUN_NOT_SUCCEEDED


async def _print_log(
    client: GlueClient,
    job: str,
    run_id: str,
    out: Output,
    deadline: float | None,
    max_wait: float | None,
) -> None:
    """Stream a run's log to stdout until the run ends (or the wait's deadline passes)."""

    async def stream() -> None:
        async for chunk in client.get_job_run_log(job, run_id, follow=True):
            out.raw(chunk)

    if deadline is None or max_wait is None:
        await stream()
        return
    try:
        await asyncio.wait_for(stream(), max(deadline - time.monotonic(), 0.0))
    except TimeoutError:
        run = (await client.get_job_run(job, run_id)).job_run
        raise WaitTimeoutError(run, max_wait) from None


async def runs_get(client: GlueClient, args: argparse.Namespace, out: Output) -> ExitCode:
    """``runs get``: one run, all its members."""
    response = await client.get_job_run(args.job, args.run_id)
    if out.is_json:
        out.document(to_glue(response))
    else:
        out.details(to_glue(response.job_run))
    return ExitCode.OK


async def runs_list(client: GlueClient, args: argparse.Namespace, out: Output) -> ExitCode:
    """``runs list``: newest first; a job's every run (or the first --max), or recent runs
    across jobs (GetRecentJobRuns) when no job is given or a filter is."""
    limit: int | None = args.max_runs
    across = args.job is None or bool(args.states or args.trigger or args.since)
    if across and limit is None and args.job is None:
        limit = DEFAULT_RECENT
    page_size = min(limit, _MAX_RUNS_PAGE) if limit is not None else _MAX_RUNS_PAGE
    listed = (
        client.iter_recent_job_runs(
            job_name=args.job,
            states=args.states or (),
            trigger_name=args.trigger,
            started_after=args.since,
            page_size=page_size,
        )
        if across
        else client.iter_job_runs(args.job, page_size=page_size)
    )
    runs: list[glue_pb2.JobRun] = []
    async for job_run in listed:
        runs.append(job_run)
        if limit is not None and len(runs) >= limit:
            break
    if out.is_json:
        out.document({"JobRuns": [to_glue(r) for r in runs]})
    elif args.job is not None:
        now = _now()
        out.table(RUN_HEADERS, (run_row(r, now, full_id=args.full_ids) for r in runs))
    else:
        now = _now()
        out.table(RECENT_RUN_HEADERS, (recent_run_row(r, now, full_id=args.full_ids) for r in runs))
    return ExitCode.OK


async def runs_stop(client: GlueClient, args: argparse.Namespace, out: Output) -> ExitCode:
    """``runs stop``: what happened to each id; exit 1 if any could not be stopped."""
    response = await client.batch_stop_job_run(args.job, args.run_ids)
    if out.is_json:
        # Both lists always present, so a script need not test for a missing key.
        out.document(
            {
                "SuccessfulSubmissions": [to_glue(s) for s in response.successful_submissions],
                "Errors": [to_glue(e) for e in response.errors],
            }
        )
    else:

        def shown(run_id: str) -> str:
            return run_id if args.full_ids else short_run_id(run_id)

        rows = [[shown(s.job_run_id), "stopping"] for s in response.successful_submissions]
        rows += [
            [shown(e.job_run_id), f"{e.error_detail.error_code}: {e.error_detail.error_message}"]
            for e in response.errors
        ]
        out.table(("JobRunId", "Result"), rows)
    if response.errors:
        out.error(f"{len(response.errors)} of {len(args.run_ids)} runs could not be stopped")
        return ExitCode.FAILED
    return ExitCode.OK


async def runs_wait(client: GlueClient, args: argparse.Namespace, out: Output) -> ExitCode:
    """``runs wait``: until the run (and its retries) ends; exit 4 unless the last SUCCEEDED."""
    _check_follow(args, out)
    return await _wait(client, args, args.run_id, out)


async def logs_command(client: GlueClient, args: argparse.Namespace, out: Output) -> ExitCode:
    """``logs``: the run's output, byte for byte (whatever --output says)."""
    async for chunk in client.get_job_run_log(
        args.job, args.run_id, follow=args.follow, stream=args.stream
    ):
        out.raw(chunk)
    return ExitCode.OK


# -- job bookmarks ---------------------------------------------------------------------------


async def bookmarks_get(client: GlueClient, args: argparse.Namespace, out: Output) -> ExitCode:
    """``bookmarks get``: the entry, all its members."""
    response = await client.get_job_bookmark(args.job, run_id=args.run_id)
    _bookmark_entry(response, out)
    return ExitCode.OK


async def bookmarks_reset(client: GlueClient, args: argparse.Namespace, out: Output) -> ExitCode:
    """``bookmarks reset``: the entry after the reset."""
    response = await client.reset_job_bookmark(args.job, run_id=args.run_id)
    _bookmark_entry(response, out)
    return ExitCode.OK


def _bookmark_entry(
    response: glue_pb2.GetJobBookmarkResponse | glue_pb2.ResetJobBookmarkResponse, out: Output
) -> None:
    if out.is_json:
        out.document(to_glue(response))
        return
    entry = to_glue(response.job_bookmark_entry)
    # Said rather than left out: no bookmark means the next run starts from the beginning.
    entry.setdefault("JobBookmark", "- (none: the next run starts from the beginning)")
    out.details(entry)


# -- triggers --------------------------------------------------------------------------------


def _set_kind(doc: GlueDict, kind: str, **members: Any) -> None:
    # A type flag wins over --from-json's Type, and drops what belongs to another type.
    doc.pop("Schedule", None)
    doc.pop("Predicate", None)
    doc["Type"] = kind
    doc.update(members)


def _actions(doc: Mapping[str, Any]) -> list[GlueDict]:
    value = doc.get("Actions")
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(a, dict) for a in value):
        raise UsageError("--from-json: Actions must be a JSON list of objects")
    return [dict(a) for a in value]


def apply_action_flags(doc: GlueDict, args: argparse.Namespace) -> GlueDict:
    """``doc`` (a CreateTrigger request or TriggerUpdate, Glue form) with the action flags.

    ``--action`` replaces Actions; ``--action-arg`` and ``--action-timeout`` then change every
    action that starts the job they name.

    Raises:
        UsageError: ``--action-arg`` / ``--action-timeout`` name a job no action starts.
    """
    doc = dict(doc)
    actions = [{"JobName": job} for job in args.action_jobs] if args.action_jobs else _actions(doc)

    def targets(job: str, flag: str) -> list[GlueDict]:
        found = [a for a in actions if a.get("JobName") == job]
        if not found:
            known = ", ".join(str(a.get("JobName")) for a in actions) or "none"
            raise UsageError(f"{flag}: no action starts job {job!r} (actions: {known})")
        return found

    for job, key, value in args.action_arg or ():
        for action in targets(job, "--action-arg"):
            action["Arguments"] = {**_structure(action, "Arguments"), key: value}
    for job, minutes in args.action_timeout or ():
        for action in targets(job, "--action-timeout"):
            action["Timeout"] = minutes
    if args.action_jobs or "Actions" in doc:
        doc["Actions"] = actions
    return doc


def create_trigger_definition(args: argparse.Namespace) -> GlueDict:
    """The CreateTrigger request (Glue form) the command line asks for.

    Raises:
        UsageError: no type or no action, or an unusable --from-json file.
    """
    doc: GlueDict = {}
    if args.from_json:
        source = read_json_document(args.from_json)
        if isinstance(source.get("Trigger"), dict):
            # A `triggers get` document: its Id and State are dropped (a clone starts CREATED).
            doc = _only_members(source["Trigger"], glue_pb2.CreateTriggerRequest)
        else:
            doc = _checked(source, glue_pb2.CreateTriggerRequest, args.from_json)
    doc["Name"] = args.name
    if args.schedule is not None:
        _set_kind(doc, "SCHEDULED", Schedule=args.schedule)
    elif args.on_demand:
        _set_kind(doc, "ON_DEMAND")
    elif args.when is not None:
        _set_kind(doc, "CONDITIONAL", Predicate=args.when)
    if not doc.get("Type"):
        raise UsageError(
            "one of --schedule, --on-demand or --when is required (or Type in --from-json)"
        )
    doc = apply_action_flags(doc, args)
    if not doc.get("Actions"):
        raise UsageError("--action is required (or Actions in --from-json)")
    if args.start:
        doc["StartOnCreation"] = True
    if args.description is not None:
        doc["Description"] = args.description
    if args.tag:
        doc["Tags"] = {**_structure(doc, "Tags"), **dict(args.tag)}
    return doc


def trigger_update_definition(
    args: argparse.Namespace, current: glue_pb2.Trigger | None
) -> GlueDict:
    """The TriggerUpdate (Glue form): only what the flags (and --from-json) name.

    ``current`` supplies the Actions that --action-arg / --action-timeout change when neither
    --action nor the file gives them.

    Raises:
        UsageError: nothing to change, or an unusable --from-json file.
    """
    doc: GlueDict = {}
    if args.from_json:
        source = read_json_document(args.from_json)
        if isinstance(source.get("TriggerUpdate"), dict):
            doc = _checked(source["TriggerUpdate"], glue_pb2.TriggerUpdate, args.from_json)
        elif isinstance(source.get("Trigger"), dict):
            # Another trigger's definition may be copied: its Name is not a rename.
            doc = _only_members(source["Trigger"], glue_pb2.TriggerUpdate)
            doc.pop("Name", None)
        else:
            raise UsageError(
                f"--from-json: {args.from_json} must hold an UpdateTrigger request "
                '({"Name": ..., "TriggerUpdate": {...}}) or a GetTrigger response '
                '({"Trigger": {...}})'
            )
    if args.schedule is not None:
        doc["Schedule"] = args.schedule
    if args.when is not None:
        doc["Predicate"] = args.when
    if current is not None and "Actions" not in doc:
        doc["Actions"] = to_glue(current).get("Actions", [])
    doc = apply_action_flags(doc, args)
    if args.description is not None:
        doc["Description"] = args.description
    if not doc:
        raise UsageError(
            "nothing to change: give --schedule, --when, --action, --action-arg, "
            "--action-timeout, --description or --from-json"
        )
    return doc


def _needs_current_actions(args: argparse.Namespace) -> bool:
    # --action-arg / --action-timeout without --action change the actions the trigger has.
    return bool((args.action_arg or args.action_timeout) and not args.action_jobs)


def next_fire_time(trigger: glue_pb2.Trigger, now: datetime) -> datetime | None:
    """When an ACTIVATED SCHEDULED trigger fires next (the scheduler's own cron rules), or
    None: not activated, not scheduled, never again, or a schedule this gluectl cannot read."""
    if trigger.type != "SCHEDULED" or trigger.state != "ACTIVATED" or not trigger.schedule:
        return None
    try:
        times = parse_schedule(trigger.schedule).next_fire_times(now, 1)
    except InvalidScheduleError:
        return None  # stored by a newer service whose cron syntax is wider than ours
    return times[0] if times else None


async def triggers_create(client: GlueClient, args: argparse.Namespace, out: Output) -> ExitCode:
    """``triggers create``: prints the trigger's name."""
    request = _request(glue_pb2.CreateTriggerRequest, create_trigger_definition(args))
    response = await client.create_trigger(request)
    if out.is_json:
        out.document(to_glue(response))
    else:
        out.line(response.name)
    return ExitCode.OK


async def triggers_list(client: GlueClient, args: argparse.Namespace, out: Output) -> ExitCode:
    """``triggers list``: every name (JSON, as ListTriggers), or a table of the triggers."""
    names = [
        name
        async for name in client.iter_trigger_names(
            dependent_job_name=args.dependent_job,
            tags=dict(args.tag or ()),
            page_size=_MAX_TRIGGERS_PAGE,
        )
    ]
    if out.is_json:
        out.document({"TriggerNames": names})
        return ExitCode.OK
    found: list[glue_pb2.Trigger] = []
    for start in range(0, len(names), _BATCH_GET):
        # A trigger deleted since ListTriggers answered is in TriggersNotFound: not shown.
        found.extend((await client.batch_get_triggers(names[start : start + _BATCH_GET])).triggers)
    now = _now()
    out.table(TRIGGER_HEADERS, (trigger_row(t, next_fire_time(t, now)) for t in found))
    return ExitCode.OK


async def triggers_get(client: GlueClient, args: argparse.Namespace, out: Output) -> ExitCode:
    """``triggers get``: the definition and state."""
    response = await client.get_trigger(args.name)
    if out.is_json:
        out.document(to_glue(response))
    else:
        details = to_glue(response.trigger)
        # Not a Glue member, so only here: when the scheduler will fire it next.
        details["NextFireTime"] = next_fire_time(response.trigger, _now()) or "-"
        out.details(details)
    return ExitCode.OK


async def triggers_start(client: GlueClient, args: argparse.Namespace, out: Output) -> ExitCode:
    """``triggers start``: prints the trigger's name."""
    response = await client.start_trigger(args.name)
    if out.is_json:
        out.document(to_glue(response))
    else:
        out.line(response.name)
    return ExitCode.OK


async def triggers_stop(client: GlueClient, args: argparse.Namespace, out: Output) -> ExitCode:
    """``triggers stop``: prints the trigger's name."""
    response = await client.stop_trigger(args.name)
    if out.is_json:
        out.document(to_glue(response))
    else:
        out.line(response.name)
    return ExitCode.OK


async def triggers_update(client: GlueClient, args: argparse.Namespace, out: Output) -> ExitCode:
    """``triggers update``: UpdateTrigger with the parts given; prints the trigger's name."""
    current = None
    if _needs_current_actions(args):
        current = (await client.get_trigger(args.name)).trigger
    update = _request(glue_pb2.TriggerUpdate, trigger_update_definition(args, current))
    response = await client.update_trigger(args.name, update)
    if out.is_json:
        out.document(to_glue(response))
    else:
        out.line(response.trigger.name)
    return ExitCode.OK


async def triggers_delete(client: GlueClient, args: argparse.Namespace, out: Output) -> ExitCode:
    """``triggers delete``: prints the trigger's name."""
    response = await client.delete_trigger(args.name)
    if out.is_json:
        out.document(to_glue(response))
    else:
        out.line(response.name)
    return ExitCode.OK


async def triggers_fire(client: GlueClient, args: argparse.Namespace, out: Output) -> ExitCode:
    """``triggers fire``: the id of each run the fire started, one a line."""
    response = await client.fire_trigger(args.name)
    if out.is_json:
        out.document(to_glue(response))
    else:
        for run_id in response.fire.run_ids:
            out.line(run_id)
    return ExitCode.OK


async def triggers_fires(client: GlueClient, args: argparse.Namespace, out: Output) -> ExitCode:
    """``triggers fires``: the fire ledger, newest first."""
    response = await client.get_trigger_fires(args.name, max_results=args.max_fires)
    if out.is_json:
        # The list always present, so a script need not test for a missing key.
        out.document({"Fires": [to_glue(f) for f in response.fires]})
    else:
        out.table(FIRE_HEADERS, (fire_row(f, full_ids=args.full_ids) for f in response.fires))
    return ExitCode.OK


def triggers_next(args: argparse.Namespace, out: Output) -> ExitCode:
    """``triggers next`` (offline): the schedule's next fire times after --after (or now).

    Raises:
        InvalidInputException: the expression is invalid; the message is the one CreateTrigger
            answers (``Schedule: <field>: <what is wrong>``), so the exit status is 1.
    """
    try:
        schedule = parse_schedule(args.schedule)
    except InvalidScheduleError as exc:
        raise InvalidInputException(f"Schedule: {exc.field}: {exc.message}") from None
    after: datetime = args.after or _now()
    times = schedule.next_fire_times(after, args.count)
    if out.is_json:
        out.document({"Schedule": schedule.expression, "After": after, "FireTimes": times})
    else:
        out.table(NEXT_HEADERS, (next_row(t) for t in times))
    if len(times) < args.count:
        last = times[-1] if times else after
        out.note(f"{schedule.expression} never fires after {format_time(last)} UTC")
    return ExitCode.OK


# -- tags ------------------------------------------------------------------------------------


def tag_target(args: argparse.Namespace) -> str:
    """The ARN that ``--job``, ``--trigger`` or ``--arn`` names (an --arn is sent as given).

    Raises:
        UsageError: an empty job or trigger name.
    """
    if args.arn is not None:
        return str(args.arn)
    kind, name = ("job", args.job) if args.job is not None else ("trigger", args.trigger)
    try:
        return resource_arn(kind, name)
    except ValueError:
        raise UsageError(f"--{kind}: expected a name, got {name!r}") from None


async def tags_get(client: GlueClient, args: argparse.Namespace, out: Output) -> ExitCode:
    """``tags get``: the resource's tags, by key."""
    response = await client.get_tags(tag_target(args))
    if out.is_json:
        # Tags always present (also when empty), so a script need not test for a missing key.
        out.document({"Tags": dict(sorted(response.tags.items()))})
    else:
        out.table(TAG_HEADERS, tag_rows(response.tags))
    return ExitCode.OK


async def tags_add(client: GlueClient, args: argparse.Namespace, out: Output) -> ExitCode:
    """``tags add``: TagResource; prints the resource's ARN."""
    arn = tag_target(args)
    response = await client.tag_resource(arn, dict(args.tags))
    _tagged(arn, response, out)
    return ExitCode.OK


async def tags_remove(client: GlueClient, args: argparse.Namespace, out: Output) -> ExitCode:
    """``tags remove``: UntagResource; prints the resource's ARN."""
    arn = tag_target(args)
    response = await client.untag_resource(arn, args.keys)
    _tagged(arn, response, out)
    return ExitCode.OK


def _tagged(arn: str, response: Message, out: Output) -> None:
    # TagResource and UntagResource answer nothing: JSON prints that ({}), a table the ARN.
    if out.is_json:
        out.document(to_glue(response))
    else:
        out.line(arn)
