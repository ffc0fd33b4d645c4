"""A run's process: planned, launched under its supervisor, watched, and its end settled.

The end is recorded with what follows from it (``run_end``): the slot it frees goes, in that
transaction, to the oldest waiting run, which is launched here. Every state write is fenced
(``runs.NotOwnerError``): a run lost to another replica is dropped, never written over.
``RunProcesses`` is a base of ``executor.Executor``.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from glue_vocabulary.run_states import JobRunState
from scheduler_service.commands import (
    BOOKMARK_IN,
    BOOKMARK_OUT,
    CommandSettings,
    capacity,
    plan_launch,
    script_error,
    sizes_executors_itself,
)
from scheduler_service.run_end import RunEnd
from scheduler_service.run_outcome import Outcome, OutcomeKind, RunningProcess
from scheduler_service.run_record import RunRecord
from scheduler_service.runner import LaunchError, ProcessRunner
from scheduler_service.running import RunningWrites
from scheduler_service.runs import EndReport, NotOwnerError, RunStore
from scheduler_service.sandbox import run_limits
from scheduler_service.slots import ProcessSlots
from scheduler_service.spark_cluster import ExecutorsDoNotFit, preflight
from scheduler_service.warm_up import ArchiveWarmUp
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


class RunProcesses:
    """Launches, watches and settles the processes of runs (part of ``executor.Executor``)."""

    _store: RunStore
    _run_end: RunEnd
    _running: RunningWrites
    _runner: ProcessRunner
    _slots: ProcessSlots
    _commands: CommandSettings
    _warm_up: ArchiveWarmUp | None
    _caretaker: bool
    _stops: set[str]

    if TYPE_CHECKING:  # defined by ``executor.Executor``

        def launch(self, run: RunRecord) -> None: ...

        def note_waiting(self) -> None: ...

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
                        run.run_id, EndReport(JobRunState.ERROR, str(exc)), slot_held=True
                    )
                    return
                except Exception:  # a bug planning this one run must not leave it in flight
                    log.exception("run could not be planned")
                    await self._settle_state(
                        run.run_id,
                        EndReport(
                            JobRunState.ERROR,
                            "The run could not be prepared (an internal error; the scheduler "
                            "log has the details).",
                        ),
                        slot_held=True,
                    )
                    return
                if plan.archive_missing and self._warm_up is not None:
                    # In the background: this run goes on without the archive.
                    self._warm_up.request()
                if not await self._executors_fit(run):
                    return
                if run.run_id in self._stops:
                    await self._settle_state(
                        run.run_id,
                        EndReport(JobRunState.STOPPED, "Stopped before its process started."),
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
                            EndReport(JobRunState.STOPPED, "Stopped before its process started."),
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
                        run.run_id, EndReport(JobRunState.ERROR, str(exc)), slot_held=True
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
                await self._settle(
                    run.run_id,
                    outcome,
                    slot_held=True,
                    started=True,
                    # Only a glueetl script has awsglue's Job, which commits bookmarks.
                    bookmarked=run.command.get("Name") == "glueetl",
                )
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
            await self._settle_state(
                run.run_id, EndReport(JobRunState.FAILED, str(exc)), slot_held=True
            )
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
        self,
        run_id: str,
        outcome: Outcome,
        *,
        slot_held: bool = False,
        started: bool = False,
        bookmarked: bool = True,
    ) -> None:
        state = _OUTCOME_STATE[outcome.kind]
        # Glue carries an ErrorMessage on FAILED, ERROR and TIMEOUT runs only.
        message = outcome.message or None
        run_dir = self._runner.work_dir(run_id)
        if outcome.kind is OutcomeKind.FAILED and outcome.limit is None:
            # A glueetl script's exception, rather than the tail of Spark's shutdown log (but
            # a limit's message says more than the exception it caused).
            message = script_error(run_dir) or message
        # What the script's job.commit() left, whatever the end (commit took effect then);
        # ``bookmarked`` False: the run cannot have committed one (no thread hop to look).
        bookmark = (
            await asyncio.to_thread(_read_if_exists, run_dir / BOOKMARK_OUT) if bookmarked else None
        )
        if state in (JobRunState.SUCCEEDED, JobRunState.STOPPED):
            message = None
        report = EndReport(
            state,
            message,
            started_at=outcome.started_at,
            ended_at=outcome.ended_at,
            started=started,
            bookmark=bookmark,
        )
        await self._settle_state(run_id, report, slot_held=slot_held)

    async def _settle_state(
        self, run_id: str, report: EndReport, *, slot_held: bool = False
    ) -> None:
        """Record a run's end (``run_end``). A run that held a process slot (``slot_held``;
        the caller gives the slot back afterwards) offers it to the oldest waiting run, which
        is promoted in the same transaction and launched here in a slot of its own."""
        # Only while runs may wait: otherwise the slot goes back to new admissions.
        offered = 1 if slot_held and not self._caretaker and self._slots.maybe_waiting else 0
        while True:
            try:
                ended = await self._run_end.finish(run_id, report, free_slots=offered)
                break
            except NotOwnerError as exc:
                # Fenced: this replica lost the run (paused past its lease); the new owner
                # records the outcome.
                log.warning(
                    "another replica owns this run now; not recording its outcome",
                    extra={"owner": exc.owner, "state": report.state.value},
                )
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("recording the run's outcome failed; retrying")
                await asyncio.sleep(SETTLE_RETRY_SECONDS)
        if ended.run is not None:
            log.info("run ended", extra={"state": report.state.value})
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
