"""gluectl's ``triggers`` commands: create, list, get, start, stop, update, delete, fire,
fires, and the offline ``next``.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Final

from clients.glue_client import GlueClient
from clients.gluectl.arguments import (
    _positive_int,
    action_argument,
    action_timeout,
    key_value,
    utc_time,
    when_predicate,
)
from clients.gluectl.command_kit import ExitCode, _Group, _now
from clients.gluectl.documents import _request
from clients.gluectl.jobs import _BATCH_GET
from clients.gluectl.output import (
    FIRE_HEADERS,
    NEXT_HEADERS,
    TRIGGER_HEADERS,
    Output,
    fire_row,
    format_time,
    next_row,
    trigger_row,
)
from clients.gluectl.trigger_definitions import (
    _needs_current_actions,
    create_trigger_definition,
    next_fire_time,
    trigger_update_definition,
)
from glue.v1 import glue_pb2
from glue_vocabulary.cron import InvalidScheduleError, parse_schedule
from glue_vocabulary.shapes import to_glue
from servicekit.errors import InvalidInputException

# ListTriggers' largest page (Glue's model).
_MAX_TRIGGERS_PAGE: Final = 200
DEFAULT_NEXT: Final = 5
"""How many fire times `triggers next` prints unless -n says otherwise."""


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
