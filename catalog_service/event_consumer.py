"""Follows the scheduler's run-event stream and applies it to the run history.

Each batch of events is applied in one transaction together with the cursor (the last
applied sequence number), so after a crash the stream resumes exactly where the committed
state ends: no event is lost, and a replayed one changes nothing. When the stream breaks (the
scheduler restarts, the network drops) the consumer reconnects with capped exponential backoff.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from sqlalchemy import select, update

from catalog_service.run_events import apply_events
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


class EventConsumer:
    """Applies the scheduler's events once each, in order."""

    def __init__(
        self,
        db: Database,
        link: SchedulerLink,
        *,
        on_connected: Callable[[bool], None] | None = None,
    ) -> None:
        self._db = db
        self._link = link
        self._on_connected = on_connected or (lambda _up: None)
        self.applied_through = 0
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
        self.applied_through = cursor
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
                    await self._link.acknowledge_run_events(position)
                    acknowledged = position
                except GlueError as exc:
                    log.debug("acknowledging run events failed", extra={"reason": str(exc)})
            await asyncio.sleep(ACK_INTERVAL)

    async def _apply(self, batch: list[scheduler_pb2.RunEvent]) -> None:
        fresh = [e for e in batch if e.sequence > self.applied_through]
        if not fresh:
            return
        async with self._db.transaction() as conn:
            await apply_events(conn, fresh)
            await conn.execute(
                update(event_cursor)
                .where(event_cursor.c.id == 1)
                .where(event_cursor.c.last_seq < fresh[-1].sequence)
                .values(last_seq=fresh[-1].sequence)
            )
        self.applied_through = fresh[-1].sequence
        self.events_applied += len(fresh)
        async with self._progress:
            self._progress.notify_all()

    async def wait_applied(self, sequence: int, timeout: float) -> bool:
        """Wait until events through ``sequence`` are applied (for tests and tools)."""
        async with self._progress:
            try:
                await asyncio.wait_for(
                    self._progress.wait_for(lambda: self.applied_through >= sequence), timeout
                )
            except TimeoutError:
                return False
        return True
