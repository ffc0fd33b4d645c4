"""gluectl's ``bookmarks`` commands: get and reset."""

from __future__ import annotations

import argparse

from clients.glue_client import GlueClient
from clients.gluectl.command_kit import ExitCode, _Group
from clients.gluectl.output import Output
from glue.v1 import glue_pb2
from glue_vocabulary.shapes import to_glue


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
