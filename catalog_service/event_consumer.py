"""Follows the scheduler's run-event stream and applies it to the run history.

Each batch of events is applied in one transaction together with the cursor (the last
applied sequence number), so after a crash the stream resumes exactly where the committed
state ends: no event is lost, and a replayed one changes nothing. When the stream breaks (the
scheduler restarts, the network drops) the consumer reconnects with capped exponential backoff.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from sqlalchemy import select, update
from sqlalchemy.exc import SQLAlchemyError

from catalog_service.run_events import AppliedElsewhere, apply_events
from catalog_service.scheduler_link import SchedulerLink
from catalog_service.tables import event_cursor
from glue.scheduler.v1 import scheduler_pb2
from servicekit.db import Database
from servicekit.errors import GlueError, ServiceUnavailableException

log = logging.getLogger(__name__)

BACKOFF_INITIAL = 0.1
BACKOFF_MAX = 5.0
MAX_BATCH = 500
# How often the applied position is acknowledged to the scheduler (its history retention keeps
# unacknowledged events; a late acknowledgement only keeps them longer).
ACK_INTERVAL = 30.0
# While every event is one the catalog already applied elsewhere (StartJobRun), the cursor is
# still written at least once per this many events, so a restart replays few of them.
CURSOR_LAG = 1000
# How long the consumer waits for a StartJobRun still writing the admission of a run it got an
# event of (``AppliedElsewhere.settled``): the write is one statement, so it is over long before
# unless its database call hangs, and then the consumer writes the run itself.
ADMISSION_WRITE_WAIT = 1.0


class EventConsumer:
    """Applies the scheduler's events once each, in order."""

    def __init__(
        self,
        db: Database,
        link: SchedulerLink,
        *,
        on_connected: Callable[[bool], None] | None = None,
        applied_elsewhere: AppliedElsewhere | None = None,
        on_applied: Callable[[Sequence[scheduler_pb2.RunEvent]], None] | None = None,
    ) -> None:
        """Args:
        db: The catalog's database.
        link: The scheduler.
        on_connected: Told when the stream connects (True) and breaks (False).
        applied_elsewhere: Events already applied by another path, dropped here.
        on_applied: Told the events each batch applied, after its commit.
        """
        self._db = db
        self._link = link
        self._on_connected = on_connected or (lambda _up: None)
        self._elsewhere = applied_elsewhere or AppliedElsewhere()
        self._on_applied = on_applied or (lambda _events: None)
        self.applied_through = 0
        # The cursor as last written (the stored one may lag applied_through: see _apply).
        self._cursor_written = 0
        self.events_skipped = 0
        """Of those, events another path had applied (none written here; for tests)."""
        # For metrics (catalog_service.metrics reads them at scrape time).
        self.connected = False
        self.connects = 0
        self.events_applied = 0
        self.head_sequence = 0
        """The scheduler's newest event sequence, as of the last event received."""
        self._backoff = BACKOFF_INITIAL
        self._progress = asyncio.Condition()

    async def cursor(self) -> int:
        """The last applied sequence number."""
        async with self._db.read() as conn:
            value = (
                await conn.execute(select(event_cursor.c.last_seq).where(event_cursor.c.id == 1))
            ).scalar_one()
        return int(value)

    async def run(self) -> None:
        """Consume forever (until cancelled)."""
        self._backoff = BACKOFF_INITIAL
        while True:
            try:
                await self._consume()
            except asyncio.CancelledError:
                raise
            except GlueError as exc:
                log.warning(
                    "run-event stream broke; reconnecting",
                    extra={
                        "reason": f"{exc.reason}: {exc.message}",
                        "retry_in": round(self._backoff, 2),
                    },
                )
            except Exception:
                log.exception("applying run events failed; reconnecting")
            self.connected = False
            self._on_connected(False)
            await asyncio.sleep(self._backoff)
            self._backoff = min(self._backoff * 2, BACKOFF_MAX)

    async def _consume(self) -> None:
        cursor = await self.cursor()
        self.applied_through = self._cursor_written = self._elsewhere.through = cursor
        stream = self._link.watch_run_events(cursor)
        queue: asyncio.Queue[scheduler_pb2.RunEvent | None] = asyncio.Queue(maxsize=4 * MAX_BATCH)
        # Why the stream ended (it always ends in an error: it has no end of its own).
        broke: list[GlueError] = []

        async def read() -> None:
            try:
                async for event in stream.events():
                    self.head_sequence = max(self.head_sequence, event.head_sequence)
                    await queue.put(event)
            except GlueError as exc:
                broke.append(exc)
            finally:
                await queue.put(None)

        # Wait for the stream's headers: a scheduler that answers counts as connected.
        try:
            await stream.connected()
        except BaseException:
            stream.close()
            raise
        self._backoff = BACKOFF_INITIAL
        self.connected = True
        self.connects += 1
        self._on_connected(True)
        loop = asyncio.get_running_loop()
        reader = loop.create_task(read())
        acknowledger = loop.create_task(self._acknowledge())
        try:
            while True:
                first = await queue.get()
                if first is None:
                    break
                batch = [first]
                # Drain what is already here: one transaction per burst, no added latency.
                while len(batch) < MAX_BATCH and not queue.empty():
                    item = queue.get_nowait()
                    if item is None:
                        queue.put_nowait(None)
                        break
                    batch.append(item)
                await self._apply(batch)
        finally:
            stream.close()
            reader.cancel()
            acknowledger.cancel()
            await asyncio.gather(reader, acknowledger, return_exceptions=True)
        # The stream ended: surface why, so the backoff loop logs it.
        raise broke[0] if broke else ServiceUnavailableException("the run-event stream ended")

    async def _acknowledge(self) -> None:
        """While connected: acknowledge the applied position at once, then as it moves on."""
        acknowledged = -1
        while True:
            if self.applied_through != acknowledged:
                position = self.applied_through
                try:
                    # The batches are committed without waiting for the disk (``_apply``):
                    # only a position on disk is acknowledged, since the scheduler may then
                    # prune the events before it.
                    await flush_applied(self._db)
                    await self._link.acknowledge_run_events(position)
                    acknowledged = position
                except GlueError as exc:
                    log.debug("acknowledging run events failed", extra={"reason": str(exc)})
                except SQLAlchemyError as exc:
                    log.debug("flushing applied run events failed", extra={"reason": str(exc)})
            await asyncio.sleep(ACK_INTERVAL)

    async def _apply(self, batch: list[scheduler_pb2.RunEvent]) -> None:
        """Apply a batch and store the cursor with it.

        Events another path applied (StartJobRun's admission) are dropped first; a batch of
        nothing else opens no transaction, and the stored cursor may then lag the applied
        position (by at most ``CURSOR_LAG`` events): after a restart those events come again
        and change nothing (``event_seq``), so every effect is still applied exactly once.
        """
        fresh = [e for e in batch if e.sequence > self.applied_through]
        if not fresh:
            return
        await self._elsewhere.settled(fresh, ADMISSION_WRITE_WAIT)
        todo = [e for e in fresh if not self._elsewhere.take(e)]
        through = fresh[-1].sequence
        cursor = (
            update(event_cursor)
            .where(event_cursor.c.id == 1)
            .where(event_cursor.c.last_seq < through)
            .values(last_seq=through)
        )
        if todo:
            # Not durable: a batch a database crash loses goes with its cursor (later commits
            # are lost first), so the stream sends its events again; the scheduler keeps them
            # until acknowledged, which waits for the disk (``_acknowledge``). A run's end is
            # visible here ~2 ms sooner.
            async with self._db.transaction(durable=False) as conn:
                await apply_events(conn, todo)
                await conn.execute(cursor)
            self._cursor_written = through
        elif through - self._cursor_written >= CURSOR_LAG:
            async with self._db.statement() as conn:
                await conn.execute(cursor)
            self._cursor_written = through
        self.applied_through = self._elsewhere.through = through
        # Counted whichever path wrote them: each is applied, once.
        self.events_applied += len(fresh)
        self.events_skipped += len(fresh) - len(todo)
        if todo:
            self._on_applied(todo)
        async with self._progress:
            self._progress.notify_all()

    async def wait_applied(self, sequence: int, timeout: float) -> bool:
        """Wait until events through ``sequence`` are applied (for tests and tools)."""
        async with self._progress:
            try:
                async with asyncio.timeout(timeout):
                    await self._progress.wait_for(lambda: self.applied_through >= sequence)
            except TimeoutError:
                return False
        return True


async def flush_applied(db: Database) -> None:
    """Wait until every batch applied so far is on disk (``EventConsumer._apply`` commits them
    without waiting): a durable commit that writes - the cursor row, rewritten unchanged -
    flushes the write-ahead log up to it, and so every commit before it."""
    async with db.transaction() as conn:
        await conn.execute(
            update(event_cursor)
            .where(event_cursor.c.id == 1)
            .values(last_seq=event_cursor.c.last_seq)
        )
