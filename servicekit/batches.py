"""Group commit for calls: those made while a batch is in flight go together in the next one.

A call made while fewer than ``writers`` batches are in flight is sent at once, alone (it
waits for nothing); calls made meanwhile queue and go together in the next batch. Each caller
waits for its own result. Given ``write_alone``, a batch whose write fails is written again one
item at a time, so that an error fails only the call that caused it. Used by the scheduler's
StartRun admissions and run ends (one transaction per batch) and, in the catalog, by
StartJobRun's calls to the scheduler (one StartRuns call per batch), its admission writes and
PostgreSQL's CreateJob inserts (one statement per batch).
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

# Items per batch at most, unless a user says otherwise: bounds how long one batch holds what it
# locks (a transaction's rows) and how large one call grows.
MAX_BATCH = 256

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class _Waiting(Generic[T, R]):
    """A call and the caller waiting for its result."""

    item: T
    outcome: asyncio.Future[R]


class Batches(Generic[T, R]):
    """Runs ``write`` over batches of the items callers ``submit``; see the module docstring."""

    def __init__(
        self,
        write: Callable[[list[T]], Awaitable[Sequence[R | BaseException]]],
        *,
        stopping: Callable[[], BaseException],
        writers: int = 1,
        max_batch: int = MAX_BATCH,
        size: Callable[[T], int] | None = None,
        max_size: int = 0,
        settle: Callable[[T, R | BaseException], None] | None = None,
        write_alone: Callable[[T], Awaitable[R | BaseException]] | None = None,
        noun: str = "items",
    ) -> None:
        """Args:
        write: Writes a batch; one result (or the error for that item) per item, in order.
            An error it raises fails every item of the batch (each caller its own copy),
            unless ``write_alone`` is given.
        stopping: The error a caller gets when the batches stop (``close``) before its own
            was written.
        writers: Batches in flight at once.
        max_batch: Items per batch at most.
        size: An item's size; with it, a batch holds ``max_size`` at most (or one item).
        max_size: See ``size``.
        settle: Called with each item and its result before its caller is answered, also
            when the caller gave up or the batches stopped (to release what the item holds).
        write_alone: Writes one item on its own: its result, or its error (returned or
            raised). With it, a batch of one item is written so, and a batch whose ``write``
            raises is written again one item at a time, each caller answered as its own is
            written: something unexpected (a database error) fails only the item that caused it.
        noun: What the items are, for the log line of a batch written again one by one.
        """
        self._write = write
        self._stopping = stopping
        self._max_writers = writers
        self._max_batch = max_batch
        self._size = size
        self._max_size = max_size
        self._settle = settle
        self._write_alone = write_alone
        self._noun = noun
        self._queue: deque[_Waiting[T, R]] = deque()
        # The tasks writing batches; each ends when it finds the queue empty.
        self._writers: set[asyncio.Task[None]] = set()
        self.closed = False
        self.batches = 0
        """Batches written (for tests)."""

    async def submit(self, item: T) -> R:
        """Queue ``item`` for the next batch; its result once written.

        Raises:
            BaseException: the item's own error from ``write``, or ``stopping()``.
        """
        if self.closed:
            raise self._stopping()
        loop = asyncio.get_running_loop()
        waiting: _Waiting[T, R] = _Waiting(item, loop.create_future())
        self._queue.append(waiting)
        if len(self._writers) < self._max_writers:
            self._writers.add(loop.create_task(self._write_batches()))
        return await waiting.outcome

    async def close(self, grace: float = 0.0) -> None:
        """Refuse new calls; let batches in flight finish for ``grace`` seconds, then cancel
        them (their callers, and those still queued, get ``stopping()``)."""
        self.closed = True
        writers = list(self._writers)
        if writers and grace > 0:
            await asyncio.wait(writers, timeout=grace)
        for task in writers:
            task.cancel()
        await asyncio.gather(*writers, return_exceptions=True)

    async def _write_batches(self) -> None:
        me = asyncio.current_task()
        assert me is not None
        batch: list[_Waiting[T, R]] = []
        try:
            while self._queue:
                batch = self._take()
                self.batches += 1
                results = await self._write_together([w.item for w in batch])
                if results is None:
                    # Each answered once written: ``batch`` keeps those still unanswered.
                    while batch:
                        result = await self._write_one(batch[0].item)
                        self._answer(batch.pop(0), result)
                else:
                    for waiting, result in zip(batch, results, strict=True):
                        self._answer(waiting, result)
                batch = []
        except asyncio.CancelledError:
            # Stopping: whoever still waits is told so.
            unanswered = list(batch)
            if len(self._writers) <= 1:  # no other writer will take the queue
                unanswered += self._queue
                self._queue.clear()
            for waiting in unanswered:
                self._answer(waiting, self._stopping())
            raise
        finally:
            # At once, not in a done callback: a call queued after the loop above found the
            # queue empty must see that this writer is gone and start another.
            self._writers.discard(me)

    async def _write_together(self, items: list[T]) -> Sequence[R | BaseException] | None:
        """``write``'s results for a batch; None when its items are to be written alone."""
        if self._write_alone is not None and len(items) == 1:
            return None
        try:
            results = await self._write(items)
        except Exception as exc:  # raised by each caller, or its items written alone
            if self._write_alone is not None:
                log.warning(
                    "a batch of %s failed; writing them one by one",
                    self._noun,
                    extra={"items": len(items)},
                    exc_info=True,
                )
                return None
            return _copies(exc, len(items))
        if len(results) != len(items):
            return _copies(
                RuntimeError(f"{len(results)} results for a batch of {len(items)}"), len(items)
            )
        return results

    async def _write_one(self, item: T) -> R | BaseException:
        assert self._write_alone is not None
        try:
            return await self._write_alone(item)
        except Exception as exc:  # noqa: BLE001 - its caller's to raise
            return exc

    def _take(self) -> list[_Waiting[T, R]]:
        batch = [self._queue.popleft()]
        size = 0 if self._size is None else self._size(batch[0].item)
        while self._queue and len(batch) < self._max_batch:
            if self._size is not None:
                size += self._size(self._queue[0].item)
                if size > self._max_size:
                    break
            batch.append(self._queue.popleft())
        return batch

    def _answer(self, waiting: _Waiting[T, R], result: R | BaseException) -> None:
        if self._settle is not None:
            self._settle(waiting.item, result)
        if waiting.outcome.done():  # the caller gave up
            return
        if isinstance(result, BaseException):
            waiting.outcome.set_exception(result)
        else:
            waiting.outcome.set_result(result)


def _copies(error: Exception, number: int) -> list[BaseException]:
    # One exception object raised in several tasks would collect all their tracebacks: each
    # caller gets its own.
    return [copy.copy(error) for _ in range(number)]
