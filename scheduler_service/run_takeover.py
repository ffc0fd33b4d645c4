"""Taking charge of in-flight runs: at start-up (``recover``), from replicas that stopped
renewing their leases or died (``reaper``), and keeping this replica's own (``heartbeat``).

Taking over a run means: launching it if it was never launched (no site); adopting its
supervisor through the runner if it was launched on this site, whether STARTING or RUNNING (the
run directory's claim decides: the job goes on and its real outcome is recorded, what ended
meanwhile is settled, and what was recorded but never claimed is launched); and, for a run
launched on another site that nothing there has reported on through the orphan grace, settling
it FAILED as unknown, without a retry. ``RunTakeOver`` is a base of ``executor.Executor``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from glue_vocabulary.run_states import TERMINAL, JobRunState
from scheduler_service.leases import heartbeat_interval, reap_interval
from scheduler_service.run_leases import CLAIM_BATCH, ClaimedRun
from scheduler_service.run_outcome import Outcome, OutcomeKind
from scheduler_service.run_process import RunProcesses
from scheduler_service.runs import EndReport
from scheduler_service.site import SiteProcesses
from servicekit.logs import run_context

log = logging.getLogger(__name__)


class RunTakeOver(RunProcesses):
    """Recovers, reaps and keeps the leases of in-flight runs (part of ``executor.Executor``)."""

    _site_processes: SiteProcesses | None
    _owned: dict[str, asyncio.Task[None]]
    _me: str
    _site: str | None
    _lease_seconds: float
    _recovered: bool
    take_over_failures: int

    if TYPE_CHECKING:  # defined by ``executor.Executor``

        def _own(self, run_id: str, coro: Coroutine[Any, Any, None]) -> None: ...

        async def promote(self) -> None: ...

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
                        run.run_id,
                        EndReport(JobRunState.STOPPED, "Stopped before its process started."),
                    )
                else:
                    log.info("launching a run its replica admitted but never launched")
                    self._slots.hold()
                    self.launch(run)
                return
            if run.site not in (None, self._site):
                await self._settle_state(
                    run.run_id,
                    EndReport(
                        JobRunState.FAILED,
                        f"The run's process was launched by scheduler replica {previous} on "
                        f"another machine (data directory {run.site}), and nothing there has "
                        "renewed the run's lease since: that machine is gone or cut off from the "
                        "database, so the run's outcome is unknown. It is not retried "
                        "automatically, because its job may still be running there (if that "
                        "machine comes back, its scheduler stops it); StartJobRun with JobRunId "
                        "set to this run's id retries it.",
                        retry=False,
                    ),
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
