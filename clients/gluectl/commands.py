"""gluectl's commands: the argument parser and one coroutine per command.

Each command makes its calls through one ``GlueClient`` and returns an ``ExitCode``; errors
are left to propagate as ``GlueError`` / ``UsageError`` / ``WaitTimeoutError``, and
``__main__.main`` turns them into the one line on stderr and the exit code.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from enum import IntEnum
from pathlib import Path
from typing import Any, Final, TypeVar

from google.protobuf.message import Message

from clients.glue_client import GlueClient, build_request, check_members, job_update_from_job
from clients.gluectl.output import (
    FORMATS,
    JOB_HEADERS,
    RUN_HEADERS,
    TABLE,
    Output,
    job_row,
    one_line,
    run_row,
)
from glue.v1 import glue_pb2
from servicekit.glue_shapes import GlueDict, message_members, to_glue

M = TypeVar("M", bound=Message)

DEFAULT_ENDPOINT: Final = "127.0.0.1:50051"
DEFAULT_ROLE: Final = "arn:aws:iam::000000000000:role/gluectl"
"""Glue requires a Role; nothing here assumes it, so a placeholder does when none is given."""
DEFAULT_COMMAND: Final = "pythonshell"
# GetJobRuns' largest page (Glue's model): fewer round trips for long histories.
_MAX_RUNS_PAGE: Final = 200
# BatchGetJobs chunk for `jobs list`: keeps each answer small whatever the number of jobs.
_BATCH_GET: Final = 100


class ExitCode(IntEnum):
    """gluectl's exit statuses."""

    OK = 0
    """The command did what it was asked."""
    FAILED = 1
    """The operation failed: the service answered with a Glue error, a BatchStopJobRun id was
    refused, or a wait gave up (--timeout) before the run ended."""
    USAGE = 2
    """The command line was wrong (argparse's status), or a --from-json file unreadable."""
    UNREACHABLE = 3
    """The service could not be reached (or answered UNAVAILABLE): retrying later may work."""
    RUN_NOT_SUCCEEDED = 4
    """A waited-for run ended in a state other than SUCCEEDED."""


EXIT_CODES_HELP: Final = """\
exit codes:
  0  ok
  1  the operation failed (a Glue error, printed as one line on stderr:
     "gluectl: EntityNotFoundException: Job x not found."); also: a run that
     `runs stop` could not stop, or `runs wait --timeout` ran out
  2  usage error
  3  the service is unreachable (or answered UNAVAILABLE); retry later
  4  a waited-for run (runs start --wait, runs wait) ended in a state other
     than SUCCEEDED

environment:
  GLUECTL_ENDPOINT  the default for --endpoint
"""


class UsageError(Exception):
    """The command line (or a file it names) cannot be turned into a request."""


Handler = Callable[[GlueClient, argparse.Namespace, Output], Awaitable[ExitCode]]


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


def build_parser(*, default_endpoint: str = DEFAULT_ENDPOINT) -> argparse.ArgumentParser:
    """gluectl's parser; each command's parser sets ``handler`` and ``parser``."""
    parser = argparse.ArgumentParser(
        prog="gluectl",
        description="Manage Glue jobs and job runs on a self-hosted Glue scheduler.",
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
        "--timeout",
        metavar="SECONDS",
        type=_positive_float,
        default=30.0,
        dest="rpc_timeout",
        help="deadline of each call to the service (default: %(default)gs); log streams that "
        "follow a run are not limited by it",
    )
    # -o also after the command (`gluectl jobs get x -o json`); SUPPRESS leaves the value given
    # before the command in place when it is not repeated.
    common = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    _add_output_option(common, default=argparse.SUPPRESS)

    commands = parser.add_subparsers(metavar="COMMAND", dest="command", required=True)
    _add_jobs_commands(commands, common)
    _add_runs_commands(commands, common)

    logs = _command(
        commands,
        "logs",
        common,
        logs_command,
        help="print a run's log (stdout and stderr of its process)",
        description="Write a run's captured stdout and stderr to stdout, byte for byte "
        "(--output does not apply).",
    )
    logs.add_argument("job", metavar="JOB")
    logs.add_argument("run_id", metavar="RUN_ID")
    logs.add_argument(
        "-f", "--follow", action="store_true", help="keep printing new output until the run ends"
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
    return parser


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
    jobs = _command(commands, "jobs", common, None, help="create, inspect, change, delete jobs")
    actions = jobs.add_subparsers(metavar="ACTION", dest="action", required=True)

    create = _command(
        actions,
        "create",
        common,
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

    get = _command(actions, "get", common, jobs_get, help="show a job (GetJob)")
    get.add_argument("name", metavar="NAME")

    listing = _command(actions, "list", common, jobs_list, help="list jobs (ListJobs, every page)")
    listing.add_argument(
        "--tag",
        metavar="K=V",
        type=key_value,
        action="append",
        help="only jobs with this tag (repeatable: all must match)",
    )

    update = _command(
        actions,
        "update",
        common,
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

    delete = _command(
        actions,
        "delete",
        common,
        jobs_delete,
        help="delete a job and its run history (DeleteJob)",
        description="Delete a job and its run history. Deleting a job that does not exist "
        "succeeds, as in Glue.",
    )
    delete.add_argument("name", metavar="NAME")


def _add_runs_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    runs = _command(commands, "runs", common, None, help="start, inspect, stop, wait for runs")
    actions = runs.add_subparsers(metavar="ACTION", dest="action", required=True)

    start = _command(
        actions,
        "start",
        common,
        runs_start,
        help="start a run (StartJobRun); prints its id",
        description="Start a run of JOB and print its id. With --wait, follow it until it "
        "ends and exit 4 unless it SUCCEEDED (a retry after a failure is a new run, and is "
        "not followed).",
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
        "--wait", action="store_true", help="wait for the run to end; exit 4 unless SUCCEEDED"
    )

    get = _command(actions, "get", common, runs_get, help="show a run (GetJobRun)")
    get.add_argument("job", metavar="JOB")
    get.add_argument("run_id", metavar="RUN_ID")

    listing = _command(
        actions, "list", common, runs_list, help="list a job's runs, newest first (GetJobRuns)"
    )
    listing.add_argument("job", metavar="JOB")
    listing.add_argument(
        "--max",
        metavar="N",
        type=_positive_int,
        dest="max_runs",
        help="at most N runs (default: all)",
    )

    stop = _command(
        actions,
        "stop",
        common,
        runs_stop,
        help="stop runs (BatchStopJobRun)",
        description="Ask runs to stop; prints what happened to each id, and exits 1 if any "
        "could not be stopped.",
    )
    stop.add_argument("job", metavar="JOB")
    stop.add_argument("run_ids", metavar="RUN_ID", nargs="+")

    wait = _command(
        actions,
        "wait",
        common,
        runs_wait,
        help="wait for a run to end; exit 4 unless it SUCCEEDED",
    )
    wait.add_argument("job", metavar="JOB")
    wait.add_argument("run_id", metavar="RUN_ID")
    wait.add_argument(
        "--timeout",
        metavar="S",
        type=_positive_float,
        dest="wait_timeout",
        help="give up (exit 1) after S seconds (default: wait as long as it takes)",
    )


# -- running ---------------------------------------------------------------------------------


async def run(args: argparse.Namespace, out: Output) -> ExitCode:
    """Run the parsed command against the service at ``args.endpoint``."""
    handler: Handler = args.handler
    async with GlueClient(args.endpoint, timeout=args.rpc_timeout) as client:
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
    out.table(JOB_HEADERS, (job_row(job) for job in jobs))
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
    return await _wait(client, args.job, run_id, None, out)


async def _wait(
    client: GlueClient, job: str, run_id: str, timeout: float | None, out: Output
) -> ExitCode:
    def progress(run: glue_pb2.JobRun) -> None:
        if not out.is_json:
            out.note(f"{run.id}: {run.job_run_state}")

    run = await client.wait_job_run(job, run_id, timeout=timeout, on_change=progress)
    if out.is_json:
        out.document({"JobRun": to_glue(run)})
    else:
        out.table(RUN_HEADERS, [run_row(run, _now())])
    if run.job_run_state == "SUCCEEDED":
        return ExitCode.OK
    reason = f": {one_line(run.error_message, 200)}" if run.error_message else ""
    out.error(f"run {run.id} ended {run.job_run_state}{reason}")
    return ExitCode.RUN_NOT_SUCCEEDED


async def runs_get(client: GlueClient, args: argparse.Namespace, out: Output) -> ExitCode:
    """``runs get``: one run, all its members."""
    response = await client.get_job_run(args.job, args.run_id)
    if out.is_json:
        out.document(to_glue(response))
    else:
        out.details(to_glue(response.job_run))
    return ExitCode.OK


async def runs_list(client: GlueClient, args: argparse.Namespace, out: Output) -> ExitCode:
    """``runs list``: newest first, every page or the first --max runs."""
    limit: int | None = args.max_runs
    page_size = min(limit, _MAX_RUNS_PAGE) if limit is not None else _MAX_RUNS_PAGE
    runs: list[glue_pb2.JobRun] = []
    async for job_run in client.iter_job_runs(args.job, page_size=page_size):
        runs.append(job_run)
        if limit is not None and len(runs) >= limit:
            break
    if out.is_json:
        out.document({"JobRuns": [to_glue(r) for r in runs]})
    else:
        now = _now()
        out.table(RUN_HEADERS, (run_row(r, now) for r in runs))
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
        rows = [[s.job_run_id, "stopping"] for s in response.successful_submissions]
        rows += [
            [e.job_run_id, f"{e.error_detail.error_code}: {e.error_detail.error_message}"]
            for e in response.errors
        ]
        out.table(("JobRunId", "Result"), rows)
    if response.errors:
        out.error(f"{len(response.errors)} of {len(args.run_ids)} runs could not be stopped")
        return ExitCode.FAILED
    return ExitCode.OK


async def runs_wait(client: GlueClient, args: argparse.Namespace, out: Output) -> ExitCode:
    """``runs wait``: until the run ends; exit 4 unless it SUCCEEDED."""
    return await _wait(client, args.job, args.run_id, args.wait_timeout, out)


async def logs_command(client: GlueClient, args: argparse.Namespace, out: Output) -> ExitCode:
    """``logs``: the run's output, byte for byte (whatever --output says)."""
    async for chunk in client.get_job_run_log(args.job, args.run_id, follow=args.follow):
        out.raw(chunk)
    return ExitCode.OK
