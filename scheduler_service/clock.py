"""The scheduler's clock: sleeps until the earliest due time in the due-time index, then fires.

There is no in-memory job per trigger (APScheduler-style): the index is the ``next_fire_at``
column, so 100,000 triggers cost rows, not objects, and a restarted scheduler resumes from the
table at once. A change to any registration wakes the clock to re-read the earliest due time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from scheduler_service.executor import Executor
from scheduler_service.firing import Firing

log = logging.getLogger(__name__)

# Re-read the index at least this often (another replica may have changed it).
MAX_SLEEP_SECONDS = 1.0
ERROR_BACKOFF_SECONDS = 1.0
# When another replica holds every due trigger (it is firing them), look again this soon.
CONTENDED_RETRY_SECONDS = 0.05


class Clock:
    """Fires due schedules on time."""

    def __init__(self, firing: Firing, executor: Executor) -> None:
        self._firing = firing
        self._executor = executor
        self._wake = asyncio.Event()

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
            delay = MAX_SLEEP_SECONDS if next_due is None else next_due - time.time()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), min(delay, MAX_SLEEP_SECONDS))

    async def tick(self) -> int:
        """Fire what is due now; returns how many triggers were handled."""
        handled, created = await self._firing.fire_due(time.time())
        self._executor.accept_created(created)
        return handled
