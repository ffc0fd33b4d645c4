"""Starts, stops, times out and re-adopts job run processes, each under its own supervisor.

A run's process is started by a small supervisor process (``scheduler_service.supervisor``)
that lives in its own session and is nobody's child, so a scheduler restart - graceful or
``kill -9`` - never kills a running job. The supervisor enforces the deadline, stops the job on
SIGTERM and records the outcome durably in the run directory, even while no scheduler runs; a
restarted scheduler finds it again with ``ProcessRunner.adopt``.

The run directory's files, the claim and the outcome are in ``scheduler_service.run_outcome``;
the client side of the zygote is ``scheduler_service.zygote_client``.

How a supervisor starts: by default through the *launcher*, ``python -I -S -c BOOTSTRAP ARGS``,
an interpreter start per run (~17-21 ms of CPU). A scheduler opens a *zygote* instead
(``start_zygote``, ``scheduler_service.zygote``): one long-lived ``python -I -S`` process of its
own, in its own session, with the supervisor already imported, that forks a launcher-equivalent
process per run on a request over a socketpair. Either way the launcher's process forks the
supervisor and exits, so the supervisor is nobody's child either way. A
zygote that died is replaced at the next launch; one that cannot start leaves the launcher.

Needs Linux 5.4 or later (pidfds). Supervisors outlive the scheduler only if whatever stops
the scheduler stops just its process: systemd needs ``KillMode=process`` (the default,
``control-group``, kills every process of the unit), and stopping a container kills all
of them regardless.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from scheduler_service import supervisor as _sv
from scheduler_service import zygote as _zygote
from scheduler_service.run_outcome import (
    OUTPUT_LOG,
    SUPERVISOR_LOG,
    WORK_DIR,
    Claim,
    Outcome,
    OutcomeKind,
    RunningProcess,
    lost_outcome,
    read_claim,
    read_outcome,
)
from scheduler_service.zygote_client import LaunchStatus, Zygote

if TYPE_CHECKING:  # sandbox imports commands, which imports this module
    from scheduler_service.sandbox import RunLimits, Sandbox

SUPERVISOR_SCRIPT = Path(_sv.__file__).resolve()
_BOOTSTRAP = _sv.BOOTSTRAP.format(directory=str(SUPERVISOR_SCRIPT.parent))

DEFAULT_STOP_GRACE_SECONDS = 10.0
# How long launch() waits for the supervisor's one status line. Normally a few milliseconds;
# the limit only matters if the supervisor hangs before the job starts (a stuck disk).
DEFAULT_REPORT_TIMEOUT_SECONDS = 30.0

log = logging.getLogger(__name__)


# A run id names a directory: no separators, no "." or "..", nothing hidden.
_RUN_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,254}")


def is_safe_run_id(run_id: str) -> bool:
    """Whether ``run_id`` can name a run directory (see ``ProcessRunner.run_dir``)."""
    return _RUN_ID.fullmatch(run_id) is not None


class LaunchError(Exception):
    """A run's process could not be started; the message says why, for the run's ErrorMessage.

    A NUL in the message (from a ScriptLocation or an argument) is written as ``\\x00``:
    PostgreSQL text cannot hold the character itself, and the run must still be recorded.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message.replace("\x00", "\\x00"))


class ProcessRunner:
    """Starts and re-adopts run processes; owns the runs directory ``<data-dir>/runs``.

    Args:
        runs_dir: where run directories live; created if missing.
        stop_grace: seconds between SIGTERM and SIGKILL when a run is stopped or times out.
        supervisor_python: the interpreter that runs supervisors (not jobs).
        report_timeout: how long ``launch`` waits for a supervisor's status line.
        sandbox: who jobs run as, their cgroups and limits; None: jobs run as this process's
            user without cgroups or limits (orphans are still ended with the run).
    """

    def __init__(
        self,
        runs_dir: Path | str,
        *,
        stop_grace: float = DEFAULT_STOP_GRACE_SECONDS,
        supervisor_python: str = sys.executable,
        report_timeout: float = DEFAULT_REPORT_TIMEOUT_SECONDS,
        sandbox: Sandbox | None = None,
    ) -> None:
        self.runs_dir = Path(runs_dir).resolve()
        self.stop_grace = stop_grace
        self._python = supervisor_python
        self._report_timeout = report_timeout
        self._sandbox = sandbox
        self._other_user = sandbox is not None and sandbox.changes_identity
        self._runs_dir_ready = False
        self._zygote: Zygote | None = None

    async def start_zygote(self) -> bool:
        """Start supervisors from now on through a zygote (``scheduler_service.zygote``): a
        process of our own that forks each one from an already-started interpreter, instead of
        an interpreter start per run. ``close`` ends it; runs are not affected either way.

        Returns:
            False if it could not start (logged): launches then use the launcher, and the
            zygote is tried again later.
        """
        if self._zygote is None:
            self._zygote = Zygote(self._python)
        return await self._zygote.start()

    @property
    def zygote_pid(self) -> int | None:
        """The live zygote's pid; None if there is none (not started, or dead until the next
        launch restarts it)."""
        return None if self._zygote is None else self._zygote.pid

    async def close(self) -> None:
        """End the zygote, if one was started; running supervisors go on."""
        if self._zygote is not None:
            await self._zygote.close()

    def run_dir(self, run_id: str) -> Path:
        """The run's directory.

        Raises:
            ValueError: the run id cannot be a directory name.
        """
        if not _RUN_ID.fullmatch(run_id):
            raise ValueError(f"run id {run_id!r} cannot name a run directory")
        return self.runs_dir / run_id

    def work_dir(self, run_id: str) -> Path:
        """Where the job works and writes its files (bookmarks, script errors, Spark events):
        its own ``job/`` if it runs as another user, else the run directory."""
        run_dir = self.run_dir(run_id)
        return run_dir / WORK_DIR if self._other_user else run_dir

    def log_path(self, run_id: str) -> Path:
        """The file that holds the run's stdout and stderr."""
        return self.run_dir(run_id) / OUTPUT_LOG

    async def launch(
        self,
        run_id: str,
        argv: Sequence[str],
        deadline: float | None,
        *,
        grace: float | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | str | None = None,
        limits: RunLimits | None = None,
    ) -> RunningProcess:
        """Start the run's process under a new supervisor, or join the one that has it.

        At most one process is ever started per run id: if a supervisor already claimed the
        run directory (a launch repeated around a crash, or two at once), this returns a
        handle on that supervisor, whose ``wait`` may return at once. If the launch is
        cancelled, the process may have started; ``adopt`` finds it. A deadline already past
        starts the job and stops it at once (outcome TIMEOUT).

        Args:
            run_id: the run; names its directory.
            argv: the job's command line (see ``commands``); run without a shell.
            deadline: epoch seconds at which the run times out; None for no limit.
            grace: seconds between SIGTERM and SIGKILL; defaults to the runner's stop_grace.
            env: the job's environment; defaults to the scheduler's.
            cwd: the job's working directory; defaults to ``work_dir``.
            limits: the run's job-dependent limits (``sandbox.run_limits``).

        Raises:
            LaunchError: the job could not be started (the run directory then holds an
                exit.json with outcome ERROR, unless the supervisor itself could not start).
            ValueError: bad run id or empty argv.
        """
        if not argv:
            raise ValueError("argv is empty")
        run_dir = self.run_dir(run_id)
        run_dir.mkdir(parents=True, exist_ok=True)
        existing = self._existing(run_id, run_dir)
        if existing is not None:
            return existing
        work_dir = self.work_dir(run_id)
        if self._other_user:
            self._prepare_for_other_user(run_dir, work_dir)
        sandbox_args = (
            []
            if self._sandbox is None
            else self._sandbox.supervisor_args(run_id, self.runs_dir, work_dir, limits)
        )
        args = [
            "--run-dir",
            str(run_dir),
            "--deadline",
            "none" if deadline is None else repr(float(deadline)),
            "--grace",
            repr(float(self.stop_grace if grace is None else grace)),
            *sandbox_args,
            "--",
            *argv,
        ]
        cwd = work_dir if cwd is None else cwd
        # Unbuffered, append-only: the supervisor writes here only when it cannot report.
        log_fd = os.open(
            run_dir / SUPERVISOR_LOG,
            os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC,
            0o600 if self._other_user else 0o644,
        )
        try:
            status = await self._launch_through_zygote(run_id, run_dir, args, env, cwd, log_fd)
            how = "through the zygote"
            if status is None:
                status, how = await self._launch_process(args, env, cwd, log_fd)
        finally:
            os.close(log_fd)
        code, _, detail = status.line.decode("utf-8", "replace").rstrip("\n").partition(" ")
        if code == "error":
            raise LaunchError(detail)
        # "started" and "busy" both leave a claim: ours, or the supervisor's that has the run.
        existing = self._existing(run_id, run_dir)
        if existing is not None:
            return existing
        tail = _tail(run_dir / SUPERVISOR_LOG)
        raise LaunchError(
            f"the run's supervisor did not report ({status.line!r}, {how})"
            + (f": {tail}" if tail else "")
        )

    async def _launch_through_zygote(
        self,
        run_id: str,
        run_dir: Path,
        args: list[str],
        env: Mapping[str, str] | None,
        cwd: Path | str,
        log_fd: int,
    ) -> LaunchStatus | None:
        """The status of a launch through the zygote; None if the launcher must do it."""
        if self._zygote is None:
            return None
        request = _zygote.encode_request(
            args, dict(os.environ if env is None else env), os.fspath(cwd), _umask()
        )
        if request is None:
            return None  # the launcher raises the same error as before, or copes with the size
        status = await self._zygote.launch(request, log_fd, self._report_timeout)
        # EOF without a line: nothing holds the status pipe any more and nothing reported (the
        # zygote died with the request, or its child before the supervisor could claim). A
        # claim made meanwhile is a supervisor's; without one, none can appear (it would hold
        # the pipe), so the launcher may start the run instead.
        lost = status is not None and status.eof and not status.line
        if lost and self._existing(run_id, run_dir) is None:
            log.warning("a launch through the supervisor zygote was lost; using the launcher")
            return None
        return status

    async def _launch_process(
        self, args: list[str], env: Mapping[str, str] | None, cwd: Path | str, log_fd: int
    ) -> tuple[LaunchStatus, str]:
        """Start the launcher (``python -I -S -c BOOTSTRAP ARGS``) and read its status."""
        try:
            proc = await asyncio.create_subprocess_exec(
                self._python,
                "-I",
                "-S",
                "-c",
                _BOOTSTRAP,
                *args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=log_fd,
                start_new_session=True,
                env=env,
                cwd=cwd,
            )
        except OSError as exc:
            raise LaunchError(f"cannot start the run's supervisor: {exc}") from exc
        assert proc.stdout is not None
        try:
            async with asyncio.timeout(self._report_timeout):
                line = await proc.stdout.readline()
        except TimeoutError:
            line = b""
        finally:
            # The process we started only forks the supervisor and exits; reaping it (and the
            # pipe's EOF) lets asyncio close its transport.
            await proc.wait()
        status = LaunchStatus(line.rstrip(b"\n"), eof=not line.endswith(b"\n"))
        return status, f"exit status {proc.returncode}"

    def _prepare_for_other_user(self, run_dir: Path, work_dir: Path) -> None:
        """Make the run directory passable, not readable, for the job's user (see the module
        docstring); the supervisor hands ``work_dir`` over to that user."""
        if not self._runs_dir_ready:
            # Other users pass through to their job/; they list nothing.
            self.runs_dir.chmod(0o711)
            self._runs_dir_ready = True
        run_dir.chmod(0o711)
        work_dir.mkdir(mode=0o700, exist_ok=True)

    def _existing(self, run_id: str, run_dir: Path) -> RunningProcess | None:
        claim = read_claim(run_dir)
        if isinstance(claim, Claim):
            return RunningProcess(run_id, run_dir, claim)
        if isinstance(claim, str):
            raise LaunchError(claim)
        return None

    async def adopt(self, run_id: str) -> RunningProcess | Outcome | None:
        """Find a run's process after a scheduler restart.

        Returns:
            The recorded ``Outcome`` if the run has ended; a handle if its supervisor is
            alive; None if no supervisor ever claimed it (the process never started); or an
            Outcome of kind LOST if the supervisor died without recording a result (a job it
            left running is then killed).
        """
        run_dir = self.run_dir(run_id)
        outcome = read_outcome(run_dir)
        if outcome is not None:
            return outcome
        claim = read_claim(run_dir)
        if claim is None:
            return None
        if isinstance(claim, str):
            return Outcome(kind=OutcomeKind.LOST, message=claim)
        handle = RunningProcess(run_id, run_dir, claim)
        if handle.is_alive():
            return handle
        # It may have recorded the outcome and exited since we first looked.
        return read_outcome(run_dir) or lost_outcome(claim)

    def stop(self, run_id: str) -> bool:
        """Ask the run's supervisor to stop the job; False if it has no live supervisor."""
        claim = read_claim(self.run_dir(run_id))
        if not isinstance(claim, Claim):
            return False
        return RunningProcess(run_id, self.run_dir(run_id), claim).stop()


def _umask() -> int:
    """This process's umask, read without changing it (``os.umask`` sets it, for every thread)."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _tail(path: Path, size: int = 2048) -> str:
    """The last ``size`` bytes of a small file, as text; empty if unreadable."""
    try:
        with path.open("rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - size))
            return f.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""
