"""Executes admitted runs: a bounded number of processes, supervised, settled exactly once.

The executor owns the scheduler's process slots (``max_processes``). A run holding a slot is
STARTING, RUNNING or STOPPING; the rest wait in WAITING and are promoted oldest first as
slots free up. Processes run under a supervisor that outlives the scheduler (see
``runner``), so shutting the scheduler down never kills a job: on start-up ``recover``
re-adopts every run a previous process left in flight and settles those that ended meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from typing import Any

from scheduler_service.run_states import JobRunState
from scheduler_service.runner import (
    LaunchError,
    Outcome,
    OutcomeKind,
    ProcessRunner,
    RunningProcess,
    build_argv,
)
from scheduler_service.runs import RunRecord, RunStore
from servicekit.logs import run_context

log = logging.getLogger(__name__)

_OUTCOME_STATE = {
    OutcomeKind.SUCCEEDED: JobRunState.SUCCEEDED,
    OutcomeKind.FAILED: JobRunState.FAILED,
    OutcomeKind.TIMEOUT: JobRunState.TIMEOUT,
    OutcomeKind.STOPPED: JobRunState.STOPPED,
    OutcomeKind.ERROR: JobRunState.ERROR,
    # The supervisor vanished (kill -9 of its process group, a reboot): the outcome is unknown,
    # so the run counts as failed and may be retried.
    OutcomeKind.LOST: JobRunState.FAILED,
}

# Settling retries this often while the database is unreachable; the outcome is durable in
# the run directory, so nothing is lost by waiting.
SETTLE_RETRY_SECONDS = 1.0
HOUSEKEEPING_SECONDS = 1.0


class Executor:
    """Launches, watches and settles runs within the process cap."""

    def __init__(
        self, store: RunStore, runner: ProcessRunner, *, max_processes: int, python: str
    ) -> None:
        self._store = store
        self._runner = runner
        self._max_processes = max_processes
        self._python = python
        self._slots_used = 0
        self._tasks: set[asyncio.Task[None]] = set()
        # True while runs may be WAITING: new runs then queue behind them (FIFO).
        self._maybe_waiting = True
        self._promote_lock = asyncio.Lock()
        self._closing = False

    # -- slots -------------------------------------------------------------------------------

    def reserve_slot(self) -> bool:
        """Take a process slot for a run about to be admitted, if one is free and none wait."""
        if self._slots_used < self._max_processes and not self._maybe_waiting:
            self._slots_used += 1
            return True
        return False

    def reserve_slots(self, wanted: int) -> int:
        """Take up to ``wanted`` free process slots at once (a trigger fire); returns how many."""
        if self._maybe_waiting:
            return 0
        granted = max(0, min(wanted, self._max_processes - self._slots_used))
        self._slots_used += granted
        return granted

    def release_slots(self, count: int) -> None:
        """Give back slots reserved by ``reserve_slots`` that were not used."""
        if count:
            self._slots_used -= count
            self._spawn(self.promote())

    def release_slot(self) -> None:
        """Give back a slot (the run ended, or its admission did not start it)."""
        self._slots_used -= 1
        self._spawn(self.promote())

    def note_waiting(self) -> None:
        """A run was admitted WAITING."""
        self._maybe_waiting = True
        self._spawn(self.promote())

    @property
    def slots_used(self) -> int:
        """Process slots in use."""
        return self._slots_used

    # -- lifecycle ---------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        if self._closing:
            coro.close()
            return
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def recover(self) -> None:
        """Adopt or settle every run a previous scheduler process left in flight."""
        in_flight = await self._store.in_states(
            [JobRunState.STARTING, JobRunState.RUNNING, JobRunState.STOPPING]
        )
        for run in in_flight:
            with run_context(run.run_id):
                adopted = await self._runner.adopt(run.run_id)
                if isinstance(adopted, Outcome):
                    log.info(
                        "run ended while the scheduler was down", extra={"outcome": adopted.kind}
                    )
                    await self._settle(run.run_id, adopted)
                elif adopted is None:
                    await self._recover_unstarted(run)
                else:
                    log.info("re-adopted running process")
                    self._slots_used += 1
                    if run.state is JobRunState.STOPPING:
                        adopted.stop()
                    self._spawn(self._watch(run.run_id, adopted))
        await self.promote()

    async def _recover_unstarted(self, run: RunRecord) -> None:
        if run.state is JobRunState.STARTING:
            log.info("starting a run whose process had not started before the restart")
            self._slots_used += 1
            self.launch(run)
        elif run.state is JobRunState.STOPPING:
            await self._store.finish(
                run.run_id, JobRunState.STOPPED, "Stopped before its process started."
            )
        else:
            await self._store.finish(
                run.run_id,
                JobRunState.FAILED,
                "The scheduler found no record of this run's process after a restart; "
                "its outcome is unknown.",
            )

    async def housekeeping(self) -> None:
        """Background loop: promote WAITING runs whenever slots are free."""
        while True:
            await asyncio.sleep(HOUSEKEEPING_SECONDS)
            try:
                await self.promote()
            except Exception:
                log.exception("promoting waiting runs failed; will retry")

    async def close(self) -> None:
        """Stop watching; the processes themselves keep running under their supervisors."""
        self._closing = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- running -----------------------------------------------------------------------------

    def accept_created(self, created: list[RunRecord]) -> None:
        """Take charge of runs a trigger fire just committed: launch the STARTING ones (their
        slots were reserved for them) and promote WAITING ones as slots allow."""
        waiting = False
        for run in created:
            with run_context(run.run_id):
                log.info(
                    "run created by a trigger",
                    extra={"trigger": run.record.get("TriggerName"), "state": run.state.value},
                )
            if run.state is JobRunState.STARTING:
                self.launch(run)
            elif run.state is JobRunState.WAITING:
                waiting = True
        if waiting:
            self.note_waiting()

    def launch(self, run: RunRecord) -> None:
        """Start a STARTING run's process in the background (its slot is already held)."""
        self._spawn(self._execute(run))

    async def promote(self) -> None:
        """Move WAITING runs to STARTING while slots are free, oldest first."""
        async with self._promote_lock:
            free = self._max_processes - self._slots_used
            if free <= 0:
                return
            promoted = await self._store.promote_waiting(free)
            self._slots_used += len(promoted)
            for run in promoted:
                self.launch(run)
            if len(promoted) < free:
                self._maybe_waiting = False

    async def stop(self, run_id: str) -> None:
        """Signal a run's process to stop (no-op if it has none yet; launch checks again)."""
        self._runner.stop(run_id)

    async def _execute(self, run: RunRecord) -> None:
        with run_context(run.run_id):
            try:
                try:
                    argv = build_argv(
                        run.command, run.job_name, run.run_id, run.arguments, self._python
                    )
                    deadline = time.time() + run.timeout_minutes * 60
                    process = await self._runner.launch(run.run_id, argv, deadline)
                except LaunchError as exc:
                    log.info("run could not start", extra={"reason": str(exc)})
                    await self._settle_state(run.run_id, JobRunState.ERROR, str(exc))
                    return
                current = await self._store.mark_running(run.run_id, deadline)
                log.info("run started", extra={"job": run.job_name})
                if current is not None and current.state is JobRunState.STOPPING:
                    process.stop()
                outcome = await process.wait()
                await self._settle(run.run_id, outcome)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("run supervision failed; the run is settled on restart")
            finally:
                self.release_slot()

    async def _watch(self, run_id: str, process: RunningProcess) -> None:
        with run_context(run_id):
            try:
                outcome = await process.wait()
                await self._settle(run_id, outcome)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("run supervision failed; the run is settled on restart")
            finally:
                self.release_slot()

    async def _settle(self, run_id: str, outcome: Outcome) -> None:
        state = _OUTCOME_STATE[outcome.kind]
        # Glue carries an ErrorMessage on FAILED, ERROR and TIMEOUT runs only.
        message = outcome.message or None
        if state in (JobRunState.SUCCEEDED, JobRunState.STOPPED):
            message = None
        await self._settle_state(
            run_id, state, message, started_at=outcome.started_at, ended_at=outcome.ended_at
        )

    async def _settle_state(
        self,
        run_id: str,
        state: JobRunState,
        message: str | None,
        *,
        started_at: float | None = None,
        ended_at: float | None = None,
    ) -> None:
        while True:
            try:
                created = await self._store.finish(
                    run_id, state, message, started_at=started_at, ended_at=ended_at
                )
                break
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("recording the run's outcome failed; retrying")
                await asyncio.sleep(SETTLE_RETRY_SECONDS)
        log.info("run ended", extra={"state": state.value})
        for run in created:
            log.info(
                "run created by this run's end",
                extra={"new_run_id": run.run_id, "job": run.job_name, "attempt": run.attempt},
            )
        if created:
            self.note_waiting()
