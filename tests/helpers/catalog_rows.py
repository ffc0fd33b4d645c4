"""Rows written straight into the catalog's tables, for tests that drive its stores without a
running catalog (the event consumer, the run-event upserts)."""

from __future__ import annotations

import time

from catalog_service.tables import jobs
from glue.v1 import glue_pb2
from servicekit.db import Database


async def add_catalog_job(db: Database, name: str, incarnation: str) -> None:
    """A job as CreateJob stores it: run events of ``incarnation`` then belong to it."""
    async with db.transaction() as conn:
        await conn.execute(
            jobs.insert().values(
                name=name,
                incarnation=incarnation,
                version=1,
                definition=glue_pb2.Job(name=name).SerializeToString(),
                tags="{}",
                created_on=time.time(),
            )
        )
