"""Pushing job registrations to the scheduler in the background, for JobCatalog.

Registrations queued while a push is in flight go together in the next AddJobs call (one
scheduler transaction for all of them), which waits a moment for more (``PUSH_LINGER_SECONDS``);
a failed push is the reconciler's to repair.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Iterable
from typing import Any

from catalog_service.scheduler_link import SchedulerLink
from glue.scheduler.v1 import scheduler_pb2
from servicekit.errors import GlueError

log = logging.getLogger(__name__)

# Under a stream of changes, each AddJobs call after the first of a burst waits this long, so
# that more registrations go in each call (one scheduler transaction for all): CreateJob's
# scheduler CPU fell from ~0.20 to ~0.07 ms per job (docs/performance.md). A lone change, and
# the first of a burst, is pushed at once.
PUSH_LINGER_SECONDS = 0.01
# The serialized registrations one AddJobs call carries at most (a CodeGenConfigurationNodes
# job can be megabytes; the internal API's messages are capped at 16 MiB).
PUSH_BATCH_BYTES = 4 * 1024 * 1024


class JobRegistrationPushes:
    """JobCatalog's registration pushes; its __init__ sets the state declared here."""

    _link: SchedulerLink
    _pushes: set[asyncio.Task[None]]
    _latest_push: dict[str, asyncio.Future[None]]
    _queued: dict[str, scheduler_pb2.JobRegistration]
    _queued_done: dict[str, asyncio.Future[None]]
    _pusher: asyncio.Task[None] | None
    push_calls: int

    async def close(self) -> None:
        """Let registration pushes in flight finish (briefly); the reconciler covers the rest."""
        tasks = set(self._pushes)
        if self._pusher is not None:
            tasks.add(self._pusher)
        if tasks:
            await asyncio.wait(tasks, timeout=2)
        for task in tasks:
            task.cancel()

    def _push_registration(self, current: scheduler_pb2.JobRegistration) -> None:
        """Queue a job's registration for the next AddJobs call (the newest version wins)."""
        name = current.job.name
        queued = self._queued.get(name)
        if queued is None or current.version > queued.version:
            self._queued[name] = current
        done = self._queued_done.get(name)
        if done is None:
            done = self._queued_done[name] = asyncio.get_running_loop().create_future()
            self._track(name, done)
        if self._pusher is None:
            self._pusher = asyncio.get_running_loop().create_task(self._push_queued())

    async def _push_queued(self) -> None:
        """Send what is queued, one AddJobs call at a time, until nothing is."""
        try:
            while self._queued:
                batch: list[scheduler_pb2.JobRegistration] = []
                size = 0
                for name in list(self._queued):
                    item = self._queued[name]
                    size += item.ByteSize()
                    if batch and size > PUSH_BATCH_BYTES:
                        break
                    batch.append(self._queued.pop(name))
                done = [self._queued_done.pop(r.job.name) for r in batch]
                try:
                    self.push_calls += 1
                    await self._link.add_jobs(batch)
                except GlueError as exc:
                    log.warning(
                        "could not update the scheduler; the reconciler will",
                        extra={"change": f"AddJobs ({len(batch)} jobs)", "error": exc.message},
                    )
                except Exception:
                    # Not a reason to stop pushing the jobs queued after these.
                    log.exception("AddJobs failed; the reconciler will push these jobs")
                finally:
                    for future in done:
                        if not future.done():
                            future.set_result(None)
                if self._queued:
                    await asyncio.sleep(PUSH_LINGER_SECONDS)  # for more to join the next call
        finally:
            self._pusher = None
            for future in self._queued_done.values():
                # Cancelled (closing): whoever waits is not held up; the reconciler pushes.
                if not future.done():
                    future.set_result(None)
            self._queued.clear()
            self._queued_done.clear()

    def _track(self, name: str, push: asyncio.Future[None]) -> None:
        """``push`` is job ``name``'s latest push (what ``wait_pushed`` waits for)."""
        self._latest_push[name] = push

        def forget(done: asyncio.Future[None]) -> None:
            if self._latest_push.get(name) is done:
                del self._latest_push[name]

        push.add_done_callback(forget)

    async def wait_pushed(self, names: Iterable[str], timeout: float = 5.0) -> None:
        """Wait (briefly) for in-flight registration pushes of these jobs to finish.

        A trigger fired right after CreateJob must find the job in the scheduler; a push that
        fails is the reconciler's to repair, and the fire then records an ERROR run.
        """
        pending = [
            task for name in names if (task := self._latest_push.get(name)) and not task.done()
        ]
        if pending:
            await asyncio.wait(pending, timeout=timeout)

    def _push(self, what: str, call: Coroutine[Any, Any, bool], name: str) -> None:
        async def push() -> None:
            try:
                await call
            except GlueError as exc:
                log.warning(
                    "could not update the scheduler; the reconciler will",
                    extra={"change": what, "error": exc.message},
                )

        task = asyncio.get_running_loop().create_task(push())
        self._pushes.add(task)
        task.add_done_callback(self._pushes.discard)
        self._track(name, task)
