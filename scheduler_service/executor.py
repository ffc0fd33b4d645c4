"""Executes admitted runs: a bounded number of processes, supervised, settled exactly once.

A run holding one of the replica's process slots (``slots.ProcessSlots``, shared with
admissions and fires) is STARTING, RUNNING or STOPPING; the rest wait in WAITING and are
promoted oldest first as slots free up. As in Glue, a run is STARTING until its process runs:
once the supervisor reports the job started, the run's RUNNING write is batched with other
runs' (``running.RunningWrites``), or written with its end if that comes first (``run_end``).
Processes run under a supervisor that outlives the scheduler (see ``runner``), so shutting the
scheduler down never kills a job.

With several replicas (see ``leases``) each in-flight run is owned by one of them. This
executor watches the runs its replica owns and renews their leases (``heartbeat``); its
``reaper`` takes over runs whose owner stopped renewing or whose owner's process is known dead
on this site, and ``recover`` does the same at start-up for the replica's own runs too. A run's
launch is recorded before its supervisor starts: with the admission, fire or promotion that gave
it a slot (``RunStore.launched_here``), or by ``RunStore.record_launch`` for a run taken over
without one. A run's end is recorded with what follows from it (``run_end``): the slot it frees
goes, in that transaction, to the oldest waiting run, which is launched here. Taking over a run
means: launching it if it was never launched (no site); adopting its supervisor through the
runner if it was launched on this site, whether STARTING or RUNNING (the run directory's claim
decides: the job goes on and its real outcome is recorded, what ended meanwhile is settled,
and what was recorded but never claimed is launched); and, for a run launched on
another site that nothing there has reported on through the orphan grace, settling it FAILED
as unknown, without a retry. Every state write is fenced (``runs.NotOwnerError``): a run lost
to another replica is dropped, never written over. A caretaker (``caretaker``) is an executor
that only takes over, never promotes waiting runs.

``Executor`` is one object (one set of owned runs and slots) built from a base per job:
``run_process.RunProcesses`` launches, watches and settles a run's process;
``run_takeover.RunTakeOver`` recovers, reaps and renews leases; here: slots, the background
tasks, promotion and shutdown.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import Counter
from collections.abc import Coroutine
from typing import Any

from glue_vocabulary.run_states import JobRunState
from scheduler_service.commands import CommandSettings
from scheduler_service.run_end import RunEnd
from scheduler_service.run_record import RunRecord
from scheduler_service.run_takeover import RunTakeOver
from scheduler_service.runner import ProcessRunner
from scheduler_service.running import RunningWrites
from scheduler_service.runs import RunStore
from scheduler_service.site import SiteProcesses
from scheduler_service.slots import ProcessSlots
from scheduler_service.warm_up import ArchiveWarmUp
from servicekit.logs import run_context

log = logging.getLogger(__name__)

HOUSEKEEPING_SECONDS = 1.0
# On graceful shutdown, how long expiring this replica's leases may take before it gives up
# (the leases then expire by themselves).
RELEASE_TIMEOUT_SECONDS = 2.0


class Executor(RunTakeOver):
    """Launches, watches and settles runs within the process cap."""

    def __init__(
        self,
        store: RunStore,
        runner: ProcessRunner,
        *,
        run_end: RunEnd,
        slots: ProcessSlots,
        commands: CommandSettings,
        site_processes: SiteProcesses | None = None,
        caretaker: bool = False,
        warm_up: ArchiveWarmUp | None = None,
    ) -> None:
        self._store = store
        self._run_end = run_end
        # STARTING -> RUNNING once a run's process started, batched across runs.
        self._running = RunningWrites(store)
        self._runner = runner
        self._slots = slots
        slots.when_freed(self._slots_freed)
        self._commands = commands
        # Writes the class-data archive a glueetl launch found missing (None: nothing does).
        self._warm_up = warm_up
        # Which processes of this data directory are alive (None: unknown, as in tests that
        # run replicas in one process).
        self._site_processes = site_processes
        # A caretaker looks after a dead replica's runs and starts no new ones.
        self._caretaker = caretaker
        # Stops requested for runs whose process is being launched: signalled once it runs.
        self._stops: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        # The runs this replica owns and watches, each with the task that launches or awaits
        # its process: exactly the runs whose leases the heartbeat renews.
        self._owned: dict[str, asyncio.Task[None]] = {}
        self._me = store.replica.replica_id
        self._site = store.replica.site
        self._lease_seconds = store.replica.lease_seconds
        self._promote_lock = asyncio.Lock()
        self._closing = False
        self._recovered = False
        self.take_over_failures = 0
        """Claimed runs whose take-over failed (logged each; see ``_take_over_one``)."""

    # -- slots -------------------------------------------------------------------------------

    def _slots_freed(self) -> None:
        # Runs of other replicas and retries out of their backoff are promoted by the
        # housekeeping loop; a freed slot goes to this replica's queue at once.
        if self._slots.maybe_waiting:
            self._spawn(self.promote())

    def note_waiting(self) -> None:
        """A run was admitted or created WAITING."""
        self._slots.runs_waiting()
        self._spawn(self.promote())

    # -- lifecycle ---------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
        if self._closing:
            coro.close()
            return None
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _own(self, run_id: str, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` as the task that watches ``run_id``, a run this replica owns."""
        task = self._spawn(coro)
        if task is not None:
            self._owned[run_id] = task
            task.add_done_callback(functools.partial(self._disown, run_id))

    def _disown(self, run_id: str, task: asyncio.Task[None]) -> None:
        if self._owned.get(run_id) is task:
            del self._owned[run_id]
            self._stops.discard(run_id)

    @property
    def owned_runs(self) -> frozenset[str]:
        """The runs this replica owns and watches right now."""
        return frozenset(self._owned)

    async def housekeeping(self) -> None:
        """Background loop: promote WAITING runs whenever slots are free."""
        while True:
            await asyncio.sleep(HOUSEKEEPING_SECONDS)
            try:
                await self.promote()
            except Exception:
                log.exception("promoting waiting runs failed; will retry")

    async def close(self) -> None:
        """Stop watching and hand the owned runs over: their leases expire now, so a process of
        this site (or any replica, for runs never launched) takes them without waiting. The
        processes keep running under their supervisors."""
        self._closing = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._running.close()
        if not self._recovered:
            # Start-up failed before recover() (e.g. the port was taken, or the database is not
            # migrated yet): this replica owns no runs, and the tables may not exist.
            return
        try:
            async with asyncio.timeout(RELEASE_TIMEOUT_SECONDS):
                released = await self._store.leases.release_leases()
        except Exception:
            log.warning("could not release run leases; they expire by themselves", exc_info=True)
        else:
            if released:
                log.info("released run leases for other replicas", extra={"runs": released})

    # -- running -----------------------------------------------------------------------------

    def accept_created(self, created: list[RunRecord]) -> None:
        """Take charge of runs a trigger fire just committed: launch the STARTING ones (their
        slots were reserved for them, their launch recorded with the fire) and promote WAITING
        ones as slots allow."""
        if not created:
            return
        # One line per run only at DEBUG: a burst creates thousands at once, and a log line
        # costs ~60 us of the event loop that is firing them. Launched runs log on their own.
        per_run = log.isEnabledFor(logging.DEBUG)
        states: Counter[str] = Counter()
        for run in created:
            states[run.state.value] += 1
            if per_run:
                with run_context(run.run_id):
                    log.debug(
                        "run created by a trigger",
                        extra={"trigger": run.record.get("TriggerName"), "state": run.state.value},
                    )
            if run.state is JobRunState.STARTING:
                self.launch(run)
        by_state = {state.lower(): count for state, count in states.items()}
        log.info("runs created by trigger fires", extra={"runs": len(created), **by_state})
        if states[JobRunState.WAITING.value]:
            self.note_waiting()

    def launch(self, run: RunRecord) -> None:
        """Start a run's process in the background (its slot is already held).

        The run must be owned by this replica (admitted, promoted or claimed by it).
        """
        self._own(run.run_id, self._execute(run))

    async def promote(self) -> None:
        """Promote WAITING runs while slots are free, oldest first, and launch them."""
        if self._caretaker:
            return
        async with self._promote_lock:
            free = self._slots.take_free(self._slots.capacity)
            if free <= 0:
                return
            try:
                promotion = await self._store.promote_waiting(free)
            except BaseException:
                self._slots.release(free, notify=False)  # housekeeping tries again
                raise
            for run in promotion.runs:
                self.launch(run)
            if promotion.exhausted:
                self._slots.none_waiting()
            # Runs still waiting for their job's room get these when a run of it ends.
            self._slots.release(free - len(promotion.runs), notify=False)

    async def stop(self, run_id: str) -> None:
        """Signal a run's process to stop; one being launched is signalled once it runs."""
        if not self._runner.stop(run_id) and run_id in self._owned:
            self._stops.add(run_id)
