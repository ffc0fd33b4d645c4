"""TriggerCatalog's reads: GetTrigger, GetTriggers, ListTriggers, BatchGetTriggers, and the
stored row the writes read too.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from catalog_service import limits
from catalog_service.limits import Limits
from catalog_service.named_rows import rows_named
from catalog_service.pagination import decode_token, encode_token, page_size
from catalog_service.tables import triggers
from catalog_service.validation import validate_request
from glue.v1 import glue_pb2
from glue_vocabulary.shapes import GlueDict
from servicekit.db import Database
from servicekit.errors import EntityNotFoundException

DEFAULT_PAGE = 100
BATCH = 500


def _shown(row: Any) -> glue_pb2.Trigger:
    """The trigger as GetTrigger shows it: the pending transitional state, if any."""
    trigger = glue_pb2.Trigger.FromString(row.definition)
    if row.pending:
        trigger.state = row.pending
    return trigger


def _job_names(trigger: glue_pb2.Trigger) -> set[str]:
    return {a.job_name for a in trigger.actions if a.job_name}


class TriggerReads:
    """TriggerCatalog's reads; its __init__ sets the state declared here."""

    _db: Database
    caps: Limits

    async def _row(self, conn: AsyncConnection, name: str, *, lock: bool = False) -> Any:
        query = select(triggers).where(triggers.c.name == name)
        if lock and not self._db.is_sqlite:
            query = query.with_for_update()
        return (await conn.execute(query)).first()

    async def _load(self, name: str) -> Any:
        async with self._db.read() as conn:
            row = await self._row(conn, name)
        if row is None:
            raise EntityNotFoundException.trigger(name)
        return row

    async def get(self, params: GlueDict) -> glue_pb2.Trigger:
        """GetTrigger."""
        validate_request("GetTrigger", params)
        return _shown(await self._load(params["Name"]))

    async def _scan(
        self, after: str | None, limit: int, dependent: str | None, tags: dict[str, str]
    ) -> tuple[list[Any], bool]:
        """Rows in name order after ``after`` that pass the filters; and whether more exist."""
        picked: list[Any] = []
        cursor = after
        async with self._db.read() as conn:
            if dependent is not None:
                # AWS documents that with no trigger able to start the job, all are returned.
                every = await conn.execute(select(triggers.c.definition))
                if not any(
                    dependent in _job_names(glue_pb2.Trigger.FromString(r.definition))
                    for r in every
                ):
                    dependent = None
            while True:
                query = select(triggers).order_by(triggers.c.name).limit(BATCH)
                if cursor is not None:
                    query = query.where(triggers.c.name > cursor)
                rows = (await conn.execute(query)).all()
                for row in rows:
                    if dependent is not None and dependent not in _job_names(
                        glue_pb2.Trigger.FromString(row.definition)
                    ):
                        continue
                    if tags:
                        held = json.loads(row.tags)
                        if any(held.get(k) != v for k, v in tags.items()):
                            continue
                    if len(picked) == limit:
                        return picked, True
                    picked.append(row)
                if len(rows) < BATCH:
                    return picked, False
                cursor = rows[-1].name

    async def get_triggers(self, params: GlueDict) -> tuple[list[glue_pb2.Trigger], str | None]:
        """GetTriggers: a page of triggers in name order (DependentJobName: see module doc)."""
        validate_request("GetTriggers", params)
        after = decode_token(params.get("NextToken"), "triggers", (str,))
        limit = page_size(params.get("MaxResults"), DEFAULT_PAGE)
        rows, more = await self._scan(
            str(after[0]) if after else None, limit, params.get("DependentJobName"), {}
        )
        fitting = limits.fit_page([len(r.definition) for r in rows], self.caps)
        rows, more = rows[:fitting], more or fitting < len(rows)
        token = encode_token("triggers", [rows[-1].name]) if more else None
        return [_shown(r) for r in rows], token

    async def list_triggers(self, params: GlueDict) -> tuple[list[str], str | None]:
        """ListTriggers: names; Tags must all match (applied before paging)."""
        validate_request("ListTriggers", params)
        after = decode_token(params.get("NextToken"), "triggers", (str,))
        limit = page_size(params.get("MaxResults"), DEFAULT_PAGE)
        rows, more = await self._scan(
            str(after[0]) if after else None,
            limit,
            params.get("DependentJobName"),
            params.get("Tags") or {},
        )
        token = encode_token("triggers", [rows[-1].name]) if more else None
        return [r.name for r in rows], token

    async def batch_get(self, params: GlueDict) -> tuple[list[glue_pb2.Trigger], list[str]]:
        """BatchGetTriggers: found triggers and the names not found, in the order asked."""
        validate_request("BatchGetTriggers", params)
        limits.check_batch(params["TriggerNames"], "TriggerNames", self.caps)
        names = list(dict.fromkeys(params["TriggerNames"]))
        async with self._db.read() as conn:
            found = await rows_named(conn, triggers, names)
        return [_shown(found[n]) for n in names if n in found], [n for n in names if n not in found]
