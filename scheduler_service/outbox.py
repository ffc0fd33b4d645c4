"""The run-event outbox: appended in the same transaction as the state change it records.

Sequence numbers come from one counter row that each writing transaction increments as its
last statement. The row lock is held until commit, so on PostgreSQL sequence order is commit
order: a reader that has seen event N can never later find an uncommitted N-1 appear, which a
plain SERIAL column does not guarantee. (SQLite has a single writer anyway.)
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence

from sqlalchemy import Double, LargeBinary, Text, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from glue.scheduler.v1 import scheduler_pb2
from glue.v1 import glue_pb2
from scheduler_service import bulk
from scheduler_service.tables import counters, outbox
from servicekit.db import Database

# How often a stream re-reads the table even without a local wake-up (events written by
# another replica, or a notification lost to a race).
POLL_INTERVAL = 1.0
BATCH = 500


# The counter bump, for ``count`` events.
_BUMP = (
    update(counters)
    .where(counters.c.name == "outbox")
    .values(value=counters.c.value + bindparam("count"))
    .returning(counters.c.value)
)
_INSERT = outbox.insert()
_COLUMNS = ("seq", "run_id", "payload", "job_incarnation", "created_at")
# Fewer rows than this are inserted by one executemany (one round trip) rather than COPY (two,
# on PostgreSQL): a batch of admissions or a small fire is a handful of rows.
COPY_MIN_ROWS = 32
# On PostgreSQL the bump and the insert are one statement: the counter's row lock, which every
# writing transaction queues for, is then held for one round trip and the commit, not two.
_NEXT_SEQ = _BUMP.cte("next_seq")
_BUMP_AND_INSERT = _INSERT.from_select(
    _COLUMNS,
    select(
        _NEXT_SEQ.c.value,
        bindparam("run_id", type_=Text),
        bindparam("payload", type_=LargeBinary),
        bindparam("job_incarnation", type_=Text),
        bindparam("created_at", type_=Double),
    ),
).returning(outbox.c.seq)


async def append(conn: AsyncConnection, run: glue_pb2.JobRun, incarnation: str) -> int:
    """Record ``run`` (its whole record after a change) as the next event; returns its sequence.

    Call it as late in the transaction as possible: the counter's row lock is held from here
    until the commit, and every other writer queues for it.
    """
    (seq,) = await append_many(conn, [(run.id, run.SerializeToString(), incarnation)])
    return seq


class EventFeed:
    """Reads the outbox in order and wakes streams when a local transaction appends to it."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._appended = asyncio.Event()

    def notify(self) -> None:
        """Wake every waiting stream (call after a commit that appended events)."""
        self._appended.set()
        self._appended = asyncio.Event()

    async def read_after(self, after: int, limit: int = BATCH) -> list[scheduler_pb2.RunEvent]:
        """Up to ``limit`` events with sequence > ``after``, in order."""
        async with self._db.read() as conn:
            rows = (
                await conn.execute(
                    select(outbox.c.seq, outbox.c.payload, outbox.c.job_incarnation)
                    .where(outbox.c.seq > after)
                    .order_by(outbox.c.seq)
                    .limit(limit)
                )
            ).all()
        return [
            scheduler_pb2.RunEvent(
                sequence=row.seq,
                run=glue_pb2.JobRun.FromString(row.payload),
                job_incarnation=row.job_incarnation,
            )
            for row in rows
        ]

    async def stream(self, after: int) -> AsyncIterator[scheduler_pb2.RunEvent]:
        """Every event after ``after``, then each new one as it is committed; never ends."""
        cursor = after
        while True:
            waiter = self._appended
            events = await self.read_after(cursor)
            for event in events:
                yield event
                cursor = event.sequence
            if len(events) < BATCH:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waiter.wait(), POLL_INTERVAL)

    async def latest_for_run(self, conn: AsyncConnection, run_id: str) -> int:
        """The sequence of the newest event about ``run_id`` (0 if none)."""
        value = (
            await conn.execute(select(func.max(outbox.c.seq)).where(outbox.c.run_id == run_id))
        ).scalar()
        return int(value or 0)


async def append_many(conn: AsyncConnection, items: Sequence[tuple[str, bytes, str]]) -> list[int]:
    """Record several runs' records as consecutive events (one counter bump, one insert).

    Each item is (run id, the run's whole record as a serialized glue.v1.JobRun, incarnation).
    """
    if not items:
        return []
    now = time.time()
    if len(items) == 1 and conn.dialect.name == "postgresql":
        run_id, payload, incarnation = items[0]
        event = {"run_id": run_id, "payload": payload, "job_incarnation": incarnation}
        seq = await conn.execute(_BUMP_AND_INSERT, {**event, "created_at": now, "count": 1})
        return [int(seq.scalar_one())]
    last = (await conn.execute(_BUMP, {"count": len(items)})).scalar_one()
    first = int(last) - len(items) + 1
    rows = [
        (first + i, run_id, payload, incarnation, now)
        for i, (run_id, payload, incarnation) in enumerate(items)
    ]
    if len(rows) < COPY_MIN_ROWS:
        await conn.execute(_INSERT, [dict(zip(_COLUMNS, row, strict=True)) for row in rows])
    else:
        await bulk.insert_rows(conn, outbox, _COLUMNS, rows)
    return list(range(first, first + len(items)))
