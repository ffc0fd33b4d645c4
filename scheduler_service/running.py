"""STARTING -> RUNNING writes, coalesced: the runs whose process started together go in one
transaction.

A run given a process slot is written STARTING with its launch (``RunStore.launched_here``);
Glue's RUNNING means its process runs, so the run moves to RUNNING only once its supervisor
reported the job started. That is a write per run; here the runs reported while a write is
under way wait and go together in the next one (one transaction, one outbox counter bump), as
admissions do (``admissions``). A run is written only once its process has run for
``LINGER_SECONDS``: a run that ends sooner (most trivial runs) leaves the queue (``ended``) and
has its RUNNING event written with its end (``run_end``), so it costs no transaction of its own
- nor, while it runs, the CPU of a write and of the catalog applying it. Writes are at least
half that apart, so runs that start close together still share one.

Each write is fenced on the run's owner and only moves runs still STARTING
(``RunStore.mark_running``). Nothing is lost if a write never happens (this replica stops or
the database is away): a run that ends first gets its RUNNING event in the transaction that
records its end (``run_end``), and a run taken over while its supervisor runs is reported
again by whoever adopts it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time

from scheduler_service.runs import RunStore

log = logging.getLogger(__name__)

# Runs per transaction at most: bounds how long one holds their row locks.
MAX_BATCH = 256
# How long a run's process runs before its RUNNING write: short beside Glue's own STARTING
# (seconds), long enough for a trivial job to end first.
LINGER_SECONDS = 0.05
# How long a write that failed (the database is away) waits before it is tried again.
RETRY_SECONDS = 1.0


class RunningWrites:
    """Writes STARTING -> RUNNING for runs whose process started, batching those that wait."""

    def __init__(
        self, store: RunStore, *, max_batch: int = MAX_BATCH, linger: float = LINGER_SECONDS
    ) -> None:
        self._store = store
        self._max_batch = max_batch
        self._linger = linger
        # Run id -> when its process was reported started (monotonic), in that order.
        self._pending: dict[str, float] = {}
        self._writer: asyncio.Task[None] | None = None
        self._closed = False

    def started(self, run_id: str) -> None:
        """The supervisor of ``run_id`` (owned by this replica) reported its process started."""
        if self._closed:
            return  # the run's end, or its next owner, writes RUNNING
        self._pending.setdefault(run_id, time.monotonic())
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write_batches())

    def ended(self, run_id: str) -> None:
        """``run_id``'s end is about to be recorded, RUNNING with it: no write of its own."""
        self._pending.pop(run_id, None)

    async def close(self) -> None:
        """Stop writing; runs still pending stay STARTING until their end or next owner."""
        self._closed = True
        writer = self._writer
        if writer is not None:
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)

    async def _write_batches(self) -> None:
        last_write = -math.inf
        try:
            while self._pending:
                oldest = next(iter(self._pending.values()))
                wake = max(oldest + self._linger, last_write + self._linger / 2)
                await asyncio.sleep(max(0.0, wake - time.monotonic()))
                due_before = time.monotonic() - self._linger
                batch = [
                    run_id for run_id, started in self._pending.items() if started <= due_before
                ][: self._max_batch]
                if not batch:
                    continue  # the runs that were due ended first
                last_write = time.monotonic()
                try:
                    await self._store.mark_running(batch)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.warning(
                        "recording runs RUNNING failed; retrying",
                        extra={"runs": len(batch)},
                        exc_info=True,
                    )
                    await asyncio.sleep(RETRY_SECONDS)
                    continue
                for run_id in batch:
                    self._pending.pop(run_id, None)
        finally:
            # At once, not in a done callback: a run reported after the loop found nothing
            # pending must see that this writer is gone and start another.
            self._writer = None
