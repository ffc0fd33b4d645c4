"""The run-event outbox: appended in the same transaction as the state change it records.

Sequence numbers come from one counter row that each writing transaction increments as its
last statement. The row lock is held until commit, so on PostgreSQL sequence order is commit
order: a reader that has seen event N can never later find an uncommitted N-1 appear, which a
plain SERIAL column does not guarantee. (SQLite has a single writer anyway.)

An event that cannot be streamed - larger than a gRPC message, or not a decodable JobRun - must
not stop the stream for everyone: it is quarantined the first time a stream reads it. The row
keeps its sequence and its original (``original_payload``, with the reason in ``quarantined``),
and its ``payload`` becomes a small replacement: the run's state, times and ids without its
arguments, and an ErrorMessage saying its full record could not be delivered. So the catalog
moves on, and a run whose record is too large still reaches its final state there rather than
staying RUNNING. Quarantined rows age out with the rest of the outbox (``retention``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from typing import Any

from google.protobuf.message import DecodeError
from sqlalchemy import Double, LargeBinary, Text, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from glue.scheduler.v1 import scheduler_pb2
from glue.v1 import glue_pb2
from scheduler_service import bulk
from scheduler_service.tables import counters, outbox, runs
from servicekit.db import Database
from servicekit.internal_rules import MAX_MESSAGE_BYTES
from servicekit.waiting import woken

log = logging.getLogger(__name__)

# How often a stream re-reads the table even without a local wake-up (events written by
# another replica, or a notification lost to a race).
POLL_INTERVAL = 1.0
BATCH = 500
# Events this process committed, kept for its own streams (``EventFeed.publish``): most events
# a stream sends were written here moments before, and reading them back costs a query.
RECENT_EVENTS = 4096
# An event's run record above this cannot reach the catalog in one gRPC message (the rest of
# the RunEvent and the framing take far less than the margin).
MAX_EVENT_PAYLOAD = MAX_MESSAGE_BYTES - 64 * 1024
# What of an error message a replacement keeps: the run's own error, then our note.
_KEPT_ERROR_CHARS = 2000
# Members of a run small by construction: a replacement whose other members are still too
# large keeps only these.
_SMALL_MEMBERS = (
    "id",
    "attempt",
    "previous_run_id",
    "trigger_name",
    "job_name",
    "started_on",
    "last_modified_on",
    "completed_on",
    "job_run_state",
    "execution_time",
    "timeout",
)


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
        self.quarantined = 0
        """Events this process quarantined (see the module docstring)."""
        # The last RECENT_EVENTS events this process committed: sequence -> (payload,
        # incarnation).
        self._recent: dict[int, tuple[bytes, str]] = {}
        self._recent_order: deque[int] = deque()
        self._published = 0

    def notify(self) -> None:
        """Wake every waiting stream (call after a commit that appended events)."""
        self._appended.set()
        self._appended = asyncio.Event()

    def publish(self, committed: Sequence[tuple[int, str, bytes, str]]) -> None:
        """Keep the events a local transaction just committed - (sequence, run id, payload,
        incarnation) - for this process's streams, then wake them. Call after the commit.

        Only a hand-off: a stream takes from here only the events that directly follow what
        it sent, and reads the table for anything else (another replica's events, events
        committed here out of order, evicted ones, and every event that cannot be streamed,
        which the table read quarantines).
        """
        for seq, _run_id, payload, incarnation in committed:
            self._published = max(self._published, seq)
            self._recent[seq] = (payload, incarnation)
            self._recent_order.append(seq)
        while len(self._recent_order) > RECENT_EVENTS:
            self._recent.pop(self._recent_order.popleft(), None)
        self.notify()

    def _recent_after(self, after: int) -> list[scheduler_pb2.RunEvent]:
        """The events this process committed that directly follow ``after``, while they can be
        streamed as they are (up to BATCH)."""
        events: list[scheduler_pb2.RunEvent] = []
        seq = after + 1
        while len(events) < BATCH and (kept := self._recent.get(seq)) is not None:
            payload, incarnation = kept
            run, problem = _decode(payload)
            if problem is not None:
                break  # the table read quarantines it
            events.append(
                scheduler_pb2.RunEvent(sequence=seq, run=run, job_incarnation=incarnation)
            )
            seq += 1
        return events

    async def read_after(self, after: int, limit: int = BATCH) -> list[scheduler_pb2.RunEvent]:
        """Up to ``limit`` events with sequence > ``after``, in order; an event that cannot
        be streamed is quarantined and its replacement returned in its place."""
        async with self._db.read() as conn:
            rows = (
                await conn.execute(
                    select(
                        outbox.c.seq, outbox.c.run_id, outbox.c.payload, outbox.c.job_incarnation
                    )
                    .where(outbox.c.seq > after)
                    .order_by(outbox.c.seq)
                    .limit(limit)
                )
            ).all()
        events = []
        for row in rows:
            run, problem = _decode(row.payload)
            if problem is not None:
                run = await self._quarantine(row, run, problem)
            events.append(
                scheduler_pb2.RunEvent(
                    sequence=row.seq, run=run, job_incarnation=row.job_incarnation
                )
            )
        return events

    async def _quarantine(
        self, row: Any, decoded: glue_pb2.JobRun | None, problem: str
    ) -> glue_pb2.JobRun:
        """Replace the event in ``row`` by a small one (keeping the original); its
        replacement.

        Marking is best-effort: if it fails the stream still goes on with the replacement,
        and the next read tries again.
        """
        replacement = decoded or await self._run_from_table(row.run_id)
        replacement = _replacement(replacement, row.run_id, problem)
        self.quarantined += 1
        log.warning(
            "quarantined a run event that cannot be streamed; the catalog gets a small replacement",
            extra={
                "sequence": row.seq,
                "run_id": row.run_id[:200],
                "reason": problem,
                "quarantined": self.quarantined,
            },
        )
        try:
            async with self._db.transaction() as conn:
                await conn.execute(
                    update(outbox)
                    .where(outbox.c.seq == row.seq)
                    .where(outbox.c.quarantined.is_(None))
                    .values(
                        quarantined=problem,
                        original_payload=outbox.c.payload,
                        payload=replacement.SerializeToString(),
                    )
                )
        except Exception:
            log.exception("could not mark a quarantined run event", extra={"sequence": row.seq})
        return replacement

    async def _run_from_table(self, run_id: str) -> glue_pb2.JobRun:
        """What the run table says of a run whose event is undecodable."""
        async with self._db.read() as conn:
            found = (
                await conn.execute(
                    select(
                        runs.c.job_name,
                        runs.c.state,
                        runs.c.attempt,
                        runs.c.created_at,
                        runs.c.updated_at,
                        runs.c.completed_at,
                    ).where(runs.c.run_id == run_id)
                )
            ).first()
        run = glue_pb2.JobRun(id=run_id)
        if found is not None:
            run.job_name = found.job_name
            run.job_run_state = found.state
            run.attempt = found.attempt
            run.started_on.FromNanoseconds(int(found.created_at * 1e9))
            run.last_modified_on.FromNanoseconds(int(found.updated_at * 1e9))
            if found.completed_at is not None:
                run.completed_on.FromNanoseconds(int(found.completed_at * 1e9))
        return run

    async def stream(self, after: int) -> AsyncIterator[scheduler_pb2.RunEvent]:
        """Every event after ``after``, then each new one as it is committed; never ends.

        The table is read at first, after every poll interval and whenever the events that
        follow are not all this process's (``publish``); a local commit's events are handed
        over from memory.
        """
        cursor = after
        from_table = True
        while True:
            waiter = self._appended
            events: list[scheduler_pb2.RunEvent] = []
            if not from_table:
                events = self._recent_after(cursor)
                from_table = not events
            if from_table:
                events = await self.read_after(cursor)
                # A short batch read everything committed, so its last event is the head then.
                head = (
                    await self.head()
                    if len(events) == BATCH
                    else events[-1].sequence
                    if events
                    else 0
                )
            else:
                head = max(self._published, events[-1].sequence)
            for event in events:
                event.head_sequence = head
                yield event
                cursor = event.sequence
            if len(events) == BATCH or (not from_table and self._published > cursor):
                continue  # more is committed already
            # Woken: a local commit, its events are in memory; else the poll, for events of
            # other replicas.
            from_table = not await woken(waiter, POLL_INTERVAL)

    async def head(self) -> int:
        """The newest committed event's sequence (0 if none)."""
        async with self._db.read() as conn:
            value = (await conn.execute(select(func.max(outbox.c.seq)))).scalar()
        return int(value or 0)

    async def latest_for_run(self, conn: AsyncConnection, run_id: str) -> int:
        """The sequence of the newest event about ``run_id`` (0 if none)."""
        value = (
            await conn.execute(select(func.max(outbox.c.seq)).where(outbox.c.run_id == run_id))
        ).scalar()
        return int(value or 0)


def _decode(payload: bytes) -> tuple[glue_pb2.JobRun | None, str | None]:
    """The run an event records, and why it cannot be streamed (None: it can)."""
    try:
        run = glue_pb2.JobRun.FromString(payload)
    except DecodeError as exc:
        return None, f"the event is not a decodable JobRun: {exc}"
    if len(payload) > MAX_EVENT_PAYLOAD:
        return run, (
            f"the run's record is {len(payload)} bytes, more than the {MAX_EVENT_PAYLOAD} "
            "bytes a run event may carry"
        )
    return run, None


def _replacement(run: glue_pb2.JobRun, run_id: str, problem: str) -> glue_pb2.JobRun:
    """A small stand-in for an event that cannot be streamed: the run's state, times and ids,
    without its arguments, with an ErrorMessage that says what happened."""
    small = glue_pb2.JobRun()
    small.CopyFrom(run)
    small.ClearField("arguments")
    if small.ByteSize() > MAX_EVENT_PAYLOAD // 16:
        small = glue_pb2.JobRun()
        for field, value in run.ListFields():
            if field.name not in _SMALL_MEMBERS:
                continue
            if field.message_type is not None:
                getattr(small, field.name).CopyFrom(value)
            else:
                setattr(small, field.name, value)
    if not small.id:
        small.id = run_id
    note = (
        "The scheduler could not deliver this run's full record to the catalog "
        f"({problem}); its arguments and other details are not shown. The original is kept "
        "in the scheduler's outbox."
    )
    own = small.error_message[:_KEPT_ERROR_CHARS] if small.HasField("error_message") else ""
    small.error_message = f"{own} {note}" if own else note
    return small


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
