"""The scheduler's clock: sleeps until the earliest due time in the due-time index, then fires.

There is no in-memory job per trigger (APScheduler-style): the index is the ``next_fire_at``
column, so 100,000 triggers cost rows, not objects, and a restarted scheduler resumes from the
table at once. A change to any registration wakes the clock to re-read the earliest due time.

Shortly before a due time (PREPARE_AHEAD_SECONDS) the clock has the fires of the schedules due
then drafted (``Firing.prepare``: reads only), so that at the due time a burst of them costs
little more than its database writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Iterator, Sequence

from scheduler_service.executor import Executor
from scheduler_service.firing import Firing
from scheduler_service.run_record import RunRecord
from servicekit.waiting import woken

log = logging.getLogger(__name__)

# Re-read the index at least this often (another replica may have changed it).
MAX_SLEEP_SECONDS = 1.0
ERROR_BACKOFF_SECONDS = 1.0
# When another replica holds every due trigger (it is firing them), look again this soon.
CONTENDED_RETRY_SECONDS = 0.05
# Batches of due triggers fired at once on PostgreSQL: while one waits for the database the
# other's Python work runs (SQLite has one writer: one batch at a time there).
FIRING_CONCURRENCY = 2
# How long before a due time its fires are drafted (Quartz's acquisition window). Drafting
# 10,000 takes about a second on a 2-core machine with nothing else to do.
PREPARE_AHEAD_SECONDS = 5.0
# At most this long, runs a tick created wait for the tick to end before their processes are
# started (see ``_LaunchHold``).
MAX_LAUNCH_HOLD_SECONDS = 1.0


class Clock:
    """Fires due schedules on time."""

    def __init__(
        self,
        firing: Firing,
        executor: Executor,
        *,
        concurrency: int = 1,
        launch_hold: float = MAX_LAUNCH_HOLD_SECONDS,
    ) -> None:
        self._firing = firing
        self._executor = executor
        # Batches fired at once (more than one only where the database has row locks).
        self._concurrency = concurrency
        # Must stay well inside the lease a run is created with: no heartbeat renews it
        # before its process is started.
        self._launch_hold = launch_hold
        self._wake = asyncio.Event()
        # The due time whose fires were last drafted (drafted once per due time).
        self._prepared_for: float | None = None

    def wake(self) -> None:
        """Re-read the due-time index now (a trigger was added, changed or removed)."""
        self._wake.set()

    async def run(self) -> None:
        """Loop until cancelled."""
        while True:
            self._wake.clear()
            try:
                next_due = await self._firing.next_due()
                if next_due is not None and next_due <= time.time():
                    if not await self.tick():
                        # Every due trigger is locked by another replica's fire in progress:
                        # wait for its commit instead of spinning on the index.
                        await asyncio.sleep(CONTENDED_RETRY_SECONDS)
                    continue
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("firing due triggers failed; retrying")
                await asyncio.sleep(ERROR_BACKOFF_SECONDS)
                continue
            now = time.time()
            # Nothing is due: drafts for due times that passed are stale.
            self._firing.forget_drafts(now)
            delay = MAX_SLEEP_SECONDS if next_due is None else next_due - now
            if (
                next_due is not None
                and 0 < delay <= PREPARE_AHEAD_SECONDS
                and next_due != self._prepared_for
            ):
                self._prepared_for = next_due
                await self._prepare(next_due)
                continue  # drafting took time: re-read the index before sleeping
            if delay > 0:
                await woken(self._wake, min(delay, MAX_SLEEP_SECONDS))

    async def _prepare(self, due: float) -> None:
        """Draft the fires due at ``due``; a failure only costs the head start."""
        started = time.monotonic()
        try:
            drafted = await self._firing.prepare(due)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.warning("drafting due fires failed; they are worked out when due", exc_info=True)
            return
        if drafted:
            log.info(
                "fires drafted ahead of their due time",
                extra={
                    "fires": drafted,
                    "seconds": round(time.monotonic() - started, 3),
                    "due_in": round(due - time.time(), 3),
                },
            )

    async def tick(self) -> int:
        """Fire what is due, with FIRING_CONCURRENCY batches in flight; returns how many
        triggers were handled."""
        hold = _LaunchHold(self._executor, self._launch_hold)
        try:
            with _cyclic_gc_paused():
                outcomes = await asyncio.gather(
                    *(self._fire_while_due(hold) for _ in range(self._concurrency)),
                    return_exceptions=True,
                )
        finally:
            hold.release()
        handled = 0
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
            handled += outcome
        return handled

    async def _fire_while_due(self, hold: _LaunchHold) -> int:
        """Fire batch after batch until one is not full: nothing more is due (or another
        firer holds it)."""
        handled = 0
        while True:
            count, created = await self._firing.fire_due(time.time())
            hold.add(created)
            handled += count
            if count < self._firing.batch_size:
                return handled


class _LaunchHold:
    """The runs a tick created, handed to the executor when the tick ends.

    Starting processes (a supervisor and a job interpreter each) takes CPU that the rest of a
    burst's batches need: on a 2-core machine, launching the first batch's runs at once made a
    10,000-fire burst's last fires ~0.4 s later. Their runs are committed and hold their
    process slots meanwhile; if a tick goes on, they are handed over once the oldest has
    waited ``limit`` seconds (plus the batch in progress).
    """

    def __init__(self, executor: Executor, limit: float) -> None:
        self._executor = executor
        self._limit = limit
        self._runs: list[RunRecord] = []
        self._since: float | None = None

    def add(self, created: Sequence[RunRecord]) -> None:
        """Hold runs a batch committed (hand everything over if held long enough)."""
        self._runs.extend(created)
        if self._since is None:
            self._since = time.monotonic()
        elif time.monotonic() - self._since >= self._limit:
            self.release()

    def release(self) -> None:
        """Hand the held runs to the executor."""
        runs, self._runs, self._since = self._runs, [], None
        if runs:
            self._executor.accept_created(runs)


@contextlib.contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Hold off CPython's cyclic garbage collector for the block.

    A batch of fires allocates a few hundred thousand short-lived objects, freed by reference
    counting; meanwhile the collector would walk the whole heap (drafted fires included)
    several times for nothing: about a fifth of a burst's CPU, measured. It runs again after.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
