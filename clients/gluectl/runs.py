"""gluectl's ``runs`` commands (start, get, list, stop, wait) and ``logs``."""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Final

from clients.glue_client import GlueClient, WaitTimeoutError
from clients.gluectl.arguments import (
    _positive_float,
    _positive_int,
    job_arguments,
    key_value,
    since_time,
)
from clients.gluectl.command_kit import ExitCode, UsageError, _Group, _now
from clients.gluectl.documents import _request
from clients.gluectl.output import (
    RECENT_RUN_HEADERS,
    RUN_HEADERS,
    Output,
    one_line,
    recent_run_row,
    run_row,
    short_run_id,
)
from glue.v1 import glue_pb2
from glue_vocabulary.shapes import GlueDict, to_glue

# GetJobRuns' largest page (Glue's model): fewer round trips for long histories.
_MAX_RUNS_PAGE: Final = 200
DEFAULT_RECENT: Final = 20
"""How many runs `runs list` shows across jobs unless --max says otherwise: a screenful."""


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
        async with asyncio.timeout(max(deadline - time.monotonic(), 0.0)):
            await stream()
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
