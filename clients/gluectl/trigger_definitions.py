"""A trigger's definition from gluectl's flags and --from-json: its kind (schedule, --when,
on demand), its actions, and the TriggerUpdate that changes only what the flags name.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from clients.gluectl.command_kit import UsageError
from clients.gluectl.documents import _checked, _only_members, _structure, read_json_document
from glue.v1 import glue_pb2
from glue_vocabulary.cron import InvalidScheduleError, parse_schedule
from glue_vocabulary.shapes import GlueDict, to_glue


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
