"""gluectl's ``jobs`` commands: create, get, list, update, delete; a job's definition from
flags and --from-json.
"""

from __future__ import annotations

import argparse
from typing import Final

from clients.glue_client import GlueClient, job_update_from_job
from clients.gluectl.arguments import job_arguments, key_value, script_location
from clients.gluectl.command_kit import ExitCode, UsageError, _Group
from clients.gluectl.documents import (
    _checked,
    _only_members,
    _request,
    _structure,
    read_json_document,
)
from clients.gluectl.output import JOB_HEADERS, Output, job_row
from clients.gluectl.runs import _MAX_RUNS_PAGE
from glue.v1 import glue_pb2
from glue_vocabulary.shapes import GlueDict, to_glue

DEFAULT_ROLE: Final = "arn:aws:iam::000000000000:role/gluectl"
"""Glue requires a Role; nothing here assumes it, so a placeholder does when none is given."""
DEFAULT_COMMAND: Final = "pythonshell"
# BatchGetJobs chunk for `jobs list`: keeps each answer small whatever the number of jobs.
_BATCH_GET: Final = 100


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
