"""TagResource, UntagResource and GetTags over jobs and triggers, named by ARN.

Glue names a taggable resource ``arn:aws:glue:<region>:<account>:<type>/<name>``. Jobs and
triggers are the taggable resources here; any partition, region and account are accepted
(there is one of each per deployment), so an ARN built with the caller's own account works.
Tags live beside the resource's row (``tags``, JSON text) and are not part of its definition:
tagging never bumps a registration version or reaches the scheduler.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from sqlalchemy import Table, select, update

from catalog_service.tables import jobs, triggers
from catalog_service.validation import validate_request, validate_shape
from glue_vocabulary.shapes import GlueDict
from servicekit.db import Database
from servicekit.errors import EntityNotFoundException, InvalidInputException

# The most tags one resource carries (the model's TagsMap maximum, which Glue applies to the
# resource's total too).
MAX_TAGS = 50
_ARN = re.compile(
    r"arn:aws[a-z-]*:glue:[a-z0-9-]*:[0-9]*:(?P<type>[a-zA-Z]+)/(?P<name>.+)", re.DOTALL
)
# How a tag operation changes a resource's tags (it may raise to refuse).
_Change = Callable[[dict[str, str]], dict[str, str]]
_RESOURCES: dict[str, tuple[Table, str]] = {"job": (jobs, "Job"), "trigger": (triggers, "Trigger")}
# The model's shape of a job's and a trigger's Name (CreateJob, CreateTrigger).
_NAME_SHAPE = "NameString"


def resource_of(arn: str) -> tuple[Table, str, str]:
    """(table, kind as Glue words it, name) of a job or trigger ARN.

    Raises:
        InvalidInputException: not a Glue ARN, not of a job or trigger, or with a name no job or
            trigger can have.
    """
    match = _ARN.fullmatch(arn)
    if match is None:
        raise InvalidInputException(
            "ResourceArn: expected arn:aws:glue:<region>:<account>:job/<name> "
            "or .../trigger/<name>",
            field="ResourceArn",
        )
    kind, name = match["type"], match["name"]
    if kind not in _RESOURCES:
        raise InvalidInputException(
            f"ResourceArn: resource type {kind!r} cannot be tagged here; jobs and triggers can",
            field="ResourceArn",
        )
    # Every job and trigger name passed this rule when it was created, so a name that breaks
    # it names nothing: refused rather than looked up (PostgreSQL text cannot even hold a NUL).
    validate_shape(_NAME_SHAPE, name, field="ResourceArn", subject="the resource name")
    table, word = _RESOURCES[kind]
    return table, word, name


class TagCatalog:
    """The tag operations."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get(self, params: GlueDict) -> dict[str, str]:
        """GetTags.

        Raises:
            InvalidInputException: a malformed ARN or one of an untaggable type.
            EntityNotFoundException: no such job or trigger.
        """
        validate_request("GetTags", params)
        table, word, name = resource_of(params["ResourceArn"])
        async with self._db.read() as conn:
            held = await conn.scalar(select(table.c.tags).where(table.c.name == name))
        if held is None:
            raise EntityNotFoundException(f"{word} {name} not found.")
        tags: dict[str, str] = json.loads(held)
        return tags

    async def tag(self, params: GlueDict) -> None:
        """TagResource: adds tags, replacing the values of keys already present."""
        validate_request("TagResource", params)
        added: dict[str, str] = params["TagsToAdd"]

        def change(tags: dict[str, str]) -> dict[str, str]:
            merged = {**tags, **added}
            if len(merged) > MAX_TAGS:
                raise InvalidInputException(
                    f"TagsToAdd: the resource would carry {len(merged)} tags; at most "
                    f"{MAX_TAGS} are allowed",
                    field="TagsToAdd",
                )
            return merged

        await self._change(params["ResourceArn"], change)

    async def untag(self, params: GlueDict) -> None:
        """UntagResource: removes the given keys (keys not present are ignored)."""
        validate_request("UntagResource", params)
        removed = set(params["TagsToRemove"])
        await self._change(
            params["ResourceArn"], lambda tags: {k: v for k, v in tags.items() if k not in removed}
        )

    async def _change(self, arn: str, change: _Change) -> None:
        table, word, name = resource_of(arn)
        async with self._db.transaction() as conn:
            query = select(table.c.tags).where(table.c.name == name)
            if conn.dialect.name == "postgresql":
                query = query.with_for_update()
            held = await conn.scalar(query)
            if held is None:
                raise EntityNotFoundException(f"{word} {name} not found.")
            tags = change(json.loads(held))
            await conn.execute(
                update(table).where(table.c.name == name).values(tags=json.dumps(tags))
            )
