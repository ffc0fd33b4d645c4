"""gluectl's ``tags`` commands: get, add and remove the tags of a job or trigger."""

from __future__ import annotations

import argparse

from google.protobuf.message import Message

from clients.glue_client import GlueClient, resource_arn
from clients.gluectl.arguments import key_value
from clients.gluectl.command_kit import ExitCode, UsageError, _Group
from clients.gluectl.output import TAG_HEADERS, Output, tag_rows
from glue_vocabulary.shapes import to_glue


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
