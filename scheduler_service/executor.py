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
"""

from __future__ import annotations

import asyncio
import errno
import functools
import logging
import os
import time
from collections import Counter
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from glue_vocabulary.run_states import TERMINAL, JobRunState
from scheduler_service.commands import (
    BOOKMARK_IN,
    BOOKMARK_OUT,
    CommandSettings,
    capacity,
    plan_launch,
    script_error,
    sizes_executors_itself,
)
from scheduler_service.leases import heartbeat_interval, reap_interval
from scheduler_service.run_end import RunEnd
from scheduler_service.run_leases import CLAIM_BATCH, ClaimedRun
from scheduler_service.run_outcome import Outcome, OutcomeKind, RunningProcess
from scheduler_service.run_record import RunRecord
from scheduler_service.runner import LaunchError, ProcessRunner
from scheduler_service.running import RunningWrites
from scheduler_service.runs import NotOwnerError, RunStore
from scheduler_service.sandbox import run_limits
from scheduler_service.site import SiteProcesses
from scheduler_service.slots import ProcessSlots
from scheduler_service.spark_cluster import ExecutorsDoNotFit, preflight
from servicekit.logs import run_context

log = logging.getLogger(__name__)

_OUTCOME_STATE = {
    OutcomeKind.SUCCEEDED: JobRunState.SUCCEEDED,
    OutcomeKind.FAILED: JobRunState.FAILED,
    OutcomeKind.TIMEOUT: JobRunState.TIMEOUT,
    OutcomeKind.STOPPED: JobRunState.STOPPED,
    OutcomeKind.ERROR: JobRunState.ERROR,
    # The supervisor vanished (kill -9 of its process group, a reboot): the outcome is unknown,
    # and a job it left running has been killed, so the run counts as failed and may be
    # retried without running twice at once.
    OutcomeKind.LOST: JobRunState.FAILED,
}

# Settling retries this often while the database is unreachable; the outcome is durable in
# the run directory, so nothing is lost by waiting.
SETTLE_RETRY_SECONDS = 1.0
HOUSEKEEPING_SECONDS = 1.0
# On graceful shutdown, how long expiring this replica's leases may take before it gives up
# (the leases then expire by themselves).
RELEASE_TIMEOUT_SECONDS = 2.0


class Executor:
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
    ) -> None:
        self._store = store
        self._run_end = run_end
        # STARTING -> RUNNING once a run's process started, batched across runs.
        self._running = RunningWrites(store)
        self._runner = runner
        self._slots = slots
        slots.when_freed(self._slots_freed)
        self._commands = commands
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

    async def recover(self) -> None:
        """At start-up: take charge of this replica's own in-flight runs (a restart under the
        same replica id), runs nobody owns, runs of dead processes of this site, and runs whose
        owner's lease expired; then start waiting runs (not a caretaker).

        In single-process mode (SQLite, held by a file lock) every in-flight run is taken at
        once: whoever owned it is certainly gone, so its lease need not run out first.
        """
        self._recovered = True
        while True:
            claimed = await self._store.leases.claim_runs(
                include_own=True,
                include_all=self._store.leases.single_process and not self._caretaker,
                dead_owners=await self._dead_owners(),
                site_only=self._caretaker,
            )
            for claim in claimed:
                await self._take_over_one(claim)
            if len(claimed) < CLAIM_BATCH:
                break
        await self.promote()

    async def reap(self) -> int:
        """Take over in-flight runs whose owner stopped renewing its lease, or whose owner's
        process is dead on this site; returns how many. A caretaker takes only its site's."""
        claimed = await self._store.leases.claim_runs(
            include_own=False, dead_owners=await self._dead_owners(), site_only=self._caretaker
        )
        for claim in claimed:
            await self._take_over_one(claim)
        return len(claimed)

    async def _dead_owners(self) -> list[str]:
        """Owners of in-flight runs that are processes of this site and no longer alive."""
        if self._site_processes is None:
            return []
        owners = await self._store.leases.other_owners()
        return await asyncio.to_thread(self._site_processes.dead, owners) if owners else []

    async def _take_over_one(self, claim: ClaimedRun) -> None:
        """``_take_over``, but a run that cannot be taken over is logged and left (its lease
        runs out and the reaper tries again) instead of stopping start-up or the reaper for
        every other run."""
        try:
            await self._take_over(claim)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.take_over_failures += 1
            with run_context(claim.run.run_id):
                log.exception(
                    "could not take over a run; skipping it",
                    extra={"failures": self.take_over_failures},
                )

    async def _take_over(self, claim: ClaimedRun) -> None:
        """Launch, adopt or settle a run just claimed (see the module docstring)."""
        run = claim.run
        with run_context(run.run_id):
            if run.run_id in self._owned:
                # Our own lease had lapsed (the heartbeat was late) and our reaper took the run
                # back, renewing the lease: it is still being watched.
                log.warning("renewed the lapsed lease of a run this replica watches")
                return
            previous = claim.previous_owner
            if previous not in (None, self._me):
                log.info(
                    "taking over a run whose replica stopped renewing its lease or died",
                    extra={"previous_owner": previous, "state": run.state.value},
                )
            if run.site is None and run.state is not JobRunState.RUNNING:
                # Never launched (the launch is recorded before a supervisor starts): launch it
                # here, or end it if a stop came first. A RUNNING run without a site is from
                # before launches were recorded; it ran on this data directory. A STARTING run
                # with a site had its launch recorded and goes on below: it may have a
                # supervisor, and only the claim in its run directory says.
                if run.state is JobRunState.STOPPING:
                    await self._settle_state(
                        run.run_id, JobRunState.STOPPED, "Stopped before its process started."
                    )
                else:
                    log.info("launching a run its replica admitted but never launched")
                    self._slots.hold()
                    self.launch(run)
                return
            if run.site not in (None, self._site):
                await self._settle_state(
                    run.run_id,
                    JobRunState.FAILED,
                    f"The run's process was launched by scheduler replica {previous} on another "
                    f"machine (data directory {run.site}), and nothing there has renewed the "
                    "run's lease since: that machine is gone or cut off from the database, so "
                    "the run's outcome is unknown. It is not retried automatically, because its "
                    "job may still be running there (if that machine comes back, its scheduler "
                    "stops it); StartJobRun with JobRunId set to this run's id retries it.",
                    retry=False,
                )
                return
            adopted = await self._runner.adopt(run.run_id)
            if isinstance(adopted, Outcome):
                log.info("run ended while no scheduler watched it", extra={"outcome": adopted.kind})
                # Its process ran unless it could not start (ERROR) or the supervisor vanished
                # without saying (LOST: unknown, and STARTING -> FAILED is Glue's too).
                started = adopted.kind not in (OutcomeKind.ERROR, OutcomeKind.LOST)
                await self._settle(run.run_id, adopted, started=started)
            elif adopted is None:
                # Its launch was recorded here but no supervisor ever claimed the run directory
                # (the replica died in between): start it now. The directory's claim lets only
                # one supervisor start, should the old launch still be on its way.
                log.info("launching a run whose recorded launch never started a process")
                self._slots.hold()
                self.launch(run)
            else:
                log.info("adopted running process", extra={"previous_owner": previous})
                # An adopted run takes a slot even beyond max_processes: it runs anyway.
                self._slots.hold()
                if run.state is JobRunState.STOPPING:
                    adopted.stop()
                elif run.state is JobRunState.STARTING:
                    # Its supervisor claimed the run before its RUNNING write happened.
                    self._running.started(run.run_id)
                self._own(run.run_id, self._watch(run.run_id, adopted))

    async def housekeeping(self) -> None:
        """Background loop: promote WAITING runs whenever slots are free."""
        while True:
            await asyncio.sleep(HOUSEKEEPING_SECONDS)
            try:
                await self.promote()
            except Exception:
                log.exception("promoting waiting runs failed; will retry")

    async def heartbeat(self) -> None:
        """Background loop: renew the leases of owned runs every third of the lease."""
        while True:
            await asyncio.sleep(heartbeat_interval(self._lease_seconds))
            try:
                await self.renew_leases()
            except Exception:
                log.exception("renewing run leases failed; will retry")

    async def reaper(self) -> None:
        """Background loop: take over runs whose owner's lease expired."""
        while True:
            await asyncio.sleep(reap_interval(self._lease_seconds))
            try:
                await self.reap()
            except Exception:
                log.exception("reaping runs with expired leases failed; will retry")

    async def renew_leases(self) -> None:
        """Renew the leases of owned runs; drop runs another replica took; re-signal stops.

        A stop requested through another replica sets STOPPING and signals the supervisor if
        that replica can see it (one machine); signalling again here, on every renewal, is
        what reaches a supervisor on this machine from a replica elsewhere. Repeating it is
        harmless.
        """
        run_ids = list(self._owned)
        if not run_ids:
            return
        seen = await self._store.leases.renew_leases(run_ids)
        for run_id in run_ids:
            found = seen.get(run_id)
            if found is None or run_id not in self._owned:
                continue
            owner, state = found
            if owner != self._me:
                self._lose(run_id, owner, state)
            elif state is JobRunState.STOPPING:
                self._runner.stop(run_id)

    def _lose(self, run_id: str, owner: str | None, state: JobRunState) -> None:
        """Stop watching a run another replica took (this one was paused or cut off)."""
        with run_context(run_id):
            log.warning(
                "another replica took over this run while this one could not renew its lease; "
                "dropping it",
                extra={"new_owner": owner, "state": state.value},
            )
            task = self._owned.pop(run_id, None)
            if task is not None:
                task.cancel()  # its clean-up gives the process slot back
            if state in TERMINAL and self._runner.stop(run_id):
                # Settled by a replica that could not see the process (another machine, after
                # this one was cut off past the orphan grace): its result would never be
                # recorded, and the job must not go on beside a manual retry.
                log.warning("stopped the process of a run another replica settled")

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
            released = await asyncio.wait_for(
                self._store.leases.release_leases(), RELEASE_TIMEOUT_SECONDS
            )
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

    async def _execute(self, run: RunRecord) -> None:
        with run_context(run.run_id):
            try:
                # The job's own directory: its user's, when it runs as another user.
                run_dir = self._runner.work_dir(run.run_id)
                try:
                    # Off the event loop: the plan stats the script's path, directory by
                    # directory, to check the run's identity can read it.
                    plan = await asyncio.to_thread(
                        plan_launch,
                        run.record,
                        run.job_name,
                        run.run_id,
                        run.arguments,
                        run_dir,
                        self._commands,
                    )
                except LaunchError as exc:
                    log.info("run could not start", extra={"reason": str(exc)})
                    await self._settle_state(
                        run.run_id, JobRunState.ERROR, str(exc), slot_held=True
                    )
                    return
                except Exception:  # a bug planning this one run must not leave it in flight
                    log.exception("run could not be planned")
                    await self._settle_state(
                        run.run_id,
                        JobRunState.ERROR,
                        "The run could not be prepared (an internal error; the scheduler log "
                        "has the details).",
                        slot_held=True,
                    )
                    return
                if not await self._executors_fit(run):
                    return
                if run.run_id in self._stops:
                    await self._settle_state(
                        run.run_id,
                        JobRunState.STOPPED,
                        "Stopped before its process started.",
                        slot_held=True,
                    )
                    return
                stopping = False
                if run.site is None or run.deadline is None:
                    # Taken over without its launch recorded (a run admitted before launches
                    # were recorded with admissions): record it now, before the supervisor.
                    recorded = await self._store.record_launch(
                        run.run_id, run.deadline or time.time() + run.timeout_minutes * 60
                    )
                    if recorded is None:
                        return
                    if not recorded.launch:
                        await self._settle_state(
                            run.run_id,
                            JobRunState.STOPPED,
                            "Stopped before its process started.",
                            slot_held=True,
                        )
                        return
                    run = recorded.run
                    stopping = run.state is JobRunState.STOPPING
                # Recorded by the admission, fire or promotion that gave the run its slot (or
                # just above): the site is written before any supervisor starts (§7, §8).
                deadline = run.deadline
                assert deadline is not None
                if run.command.get("Name") == "glueetl":
                    await self._hand_bookmark_over(run, run_dir / BOOKMARK_IN)
                try:
                    # The plan's environment is the whole of it: nothing of the scheduler's
                    # own (database URL, credentials) reaches the job (``job_env``).
                    process = await self._runner.launch(
                        run.run_id,
                        plan.argv,
                        deadline,
                        env=plan.env,
                        limits=run_limits(run.record, self._commands),
                    )
                except LaunchError as exc:
                    log.info("run could not start", extra={"reason": str(exc)})
                    await self._settle_state(
                        run.run_id, JobRunState.ERROR, str(exc), slot_held=True
                    )
                    return
                log.info("run started", extra={"job": run.job_name})
                # The supervisor reported the job's process started: now it is RUNNING (a run
                # STOPPING meanwhile stays so; ``RunStore.mark_running`` moves STARTING only).
                self._running.started(run.run_id)
                if stopping or run.run_id in self._stops:
                    process.stop()
                outcome = await process.wait()
                self._running.ended(run.run_id)
                await self._settle(run.run_id, outcome, slot_held=True, started=True)
            except NotOwnerError as exc:
                log.warning(
                    "another replica owns this run now; dropping it", extra={"owner": exc.owner}
                )
            except asyncio.CancelledError:
                raise
            except Exception:
                # No longer watched, so its lease lapses and a reaper (maybe this replica's)
                # takes it over.
                log.exception("run supervision failed; a reaper takes the run over")
            finally:
                self._slots.release()

    async def _executors_fit(self, run: RunRecord) -> bool:
        """For a glueetl run bound for a standalone cluster whose UI is known: whether some
        worker can hold its executors; if none can, the run ends FAILED saying so."""
        settings = self._commands
        if (
            run.command.get("Name") != "glueetl"
            or settings.spark_master_ui is None
            or not settings.spark_master.startswith("spark://")
            or sizes_executors_itself(run.arguments)
        ):
            return True
        try:
            await preflight(settings.spark_master_ui, capacity(run.record), settings.spark_master)
        except ExecutorsDoNotFit as exc:
            log.info("run's executors fit no worker", extra={"reason": str(exc)})
            await self._settle_state(run.run_id, JobRunState.FAILED, str(exc), slot_held=True)
            return False
        return True

    async def _hand_bookmark_over(self, run: RunRecord, path: Path) -> None:
        """Write the job's bookmark where the run's awsglue library reads it (none: no file)."""
        state = await self._store.bookmark_for_next_run(run.job_name)
        if state is not None:
            await asyncio.to_thread(_write_new, path, state)

    async def _watch(self, run_id: str, process: RunningProcess) -> None:
        with run_context(run_id):
            try:
                outcome = await process.wait()
                self._running.ended(run_id)
                await self._settle(run_id, outcome, slot_held=True, started=True)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("run supervision failed; a reaper takes the run over")
            finally:
                self._slots.release()

    async def _settle(
        self, run_id: str, outcome: Outcome, *, slot_held: bool = False, started: bool = False
    ) -> None:
        state = _OUTCOME_STATE[outcome.kind]
        # Glue carries an ErrorMessage on FAILED, ERROR and TIMEOUT runs only.
        message = outcome.message or None
        run_dir = self._runner.work_dir(run_id)
        if outcome.kind is OutcomeKind.FAILED and outcome.limit is None:
            # A glueetl script's exception, rather than the tail of Spark's shutdown log (but
            # a limit's message says more than the exception it caused).
            message = script_error(run_dir) or message
        # What the script's job.commit() left, whatever the end (commit took effect then).
        bookmark = await asyncio.to_thread(_read_if_exists, run_dir / BOOKMARK_OUT)
        if state in (JobRunState.SUCCEEDED, JobRunState.STOPPED):
            message = None
        await self._settle_state(
            run_id,
            state,
            message,
            started_at=outcome.started_at,
            ended_at=outcome.ended_at,
            bookmark=bookmark,
            slot_held=slot_held,
            started=started,
        )

    async def _settle_state(
        self,
        run_id: str,
        state: JobRunState,
        message: str | None,
        *,
        started_at: float | None = None,
        ended_at: float | None = None,
        retry: bool = True,
        bookmark: str | None = None,
        slot_held: bool = False,
        started: bool = False,
    ) -> None:
        """Record a run's end (``run_end``). A run that held a process slot (``slot_held``;
        the caller gives the slot back afterwards) offers it to the oldest waiting run, which
        is promoted in the same transaction and launched here in a slot of its own.
        ``started``: the run's process ran, so a run still STARTING passes through RUNNING."""
        # Only while runs may wait: otherwise the slot goes back to new admissions.
        offered = 1 if slot_held and not self._caretaker and self._slots.maybe_waiting else 0
        while True:
            try:
                ended = await self._run_end.finish(
                    run_id,
                    state,
                    message,
                    started_at=started_at,
                    ended_at=ended_at,
                    retry=retry,
                    bookmark=bookmark,
                    free_slots=offered,
                    started=started,
                )
                break
            except NotOwnerError as exc:
                # Fenced: this replica lost the run (paused past its lease); the new owner
                # records the outcome.
                log.warning(
                    "another replica owns this run now; not recording its outcome",
                    extra={"owner": exc.owner, "state": state.value},
                )
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("recording the run's outcome failed; retrying")
                await asyncio.sleep(SETTLE_RETRY_SECONDS)
        if ended.run is not None:
            log.info("run ended", extra={"state": state.value})
        for run in ended.created:
            log.info(
                "run created by this run's end",
                extra={"new_run_id": run.run_id, "job": run.job_name, "attempt": run.attempt},
            )
        for run in ended.promoted:
            # Its own slot: the ended run's is given back by its caller, as always.
            self._slots.hold()
            self.launch(run)
        if offered and ended.queue_exhausted and not ended.created:
            self._slots.none_waiting()
        if ended.created:
            self.note_waiting()


def _write_new(path: Path, text: str) -> None:
    """Write a file the run reads: the run directory (0700, the run's own) guards it, so the
    file itself is readable by the run's identity whoever wrote it."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    with os.fdopen(fd, "w") as out:
        os.fchmod(fd, 0o644)
        out.write(text)


def _read_if_exists(path: Path) -> str | None:
    """A file the job wrote; not followed if it is a symbolic link (the job may run as another
    user, and this runs as the service's: a link could name any file the service can read)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return None
        raise
    with os.fdopen(fd, encoding="utf-8") as f:
        return f.read()
