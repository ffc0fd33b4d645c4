"""Starts, stops, times out and re-adopts job run processes, each under its own supervisor.

A run's process is started by a small supervisor process (``scheduler_service.supervisor``)
that lives in its own session and is nobody's child, so a scheduler restart - graceful or
``kill -9`` - never kills a running job. The supervisor enforces the deadline, stops the job on
SIGTERM and records the outcome durably in the run directory, even while no scheduler runs; a
restarted scheduler finds it again with ``ProcessRunner.adopt``.

Run directory, ``<runs_dir>/<run_id>/``::

    output.log       the job's stdout and stderr, copied (and capped) by the supervisor
    supervisor.json  the claim: supervisor pid, start time and boot id, then the job's pid,
                     its uid and its cgroups
    exit.json        the outcome, written once, atomically, when the run has ended
    supervisor.log   the supervisor's own stderr; empty unless something went badly wrong
    job/             only when the job runs as another user (``sandbox``): the job's working
                     directory, its user's (0700) while it runs and the service's after

A run directory belongs to the service's user. When the job runs as another user, the run
directory is 0711 and its files 0600: the job can reach ``job/`` but cannot read, replace or
truncate the files the scheduler trusts (a job that could rewrite supervisor.json could make
the scheduler signal any process it names) nor its own log.

How a supervisor starts: by default through the *launcher*, ``python -I -S -c BOOTSTRAP ARGS``,
an interpreter start per run (~17-21 ms of CPU). A scheduler opens a *zygote* instead
(``start_zygote``, ``scheduler_service.zygote``): one long-lived ``python -I -S`` process of its
own, in its own session, with the supervisor already imported, that forks a launcher-equivalent
process per run on a request over a socketpair. Either way the launcher's process forks the
supervisor and exits, so the supervisor is nobody's child and everything below holds alike. A
zygote that died is replaced at the next launch; one that cannot start leaves the launcher.

The supervisor is identified by (boot id, pid, start time from ``/proc/<pid>/stat``), so a
reused pid is never mistaken for it, and it is signalled and awaited through a pidfd, which
cannot refer to another process once opened.

Needs Linux 5.4 or later (pidfds). Supervisors outlive the scheduler only if whatever stops
the scheduler stops just its process: systemd needs ``KillMode=process`` (the default,
``control-group``, kills every process of the unit), and stopping a container kills all
of them regardless.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import enum
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from scheduler_service import supervisor as _sv
from scheduler_service import zygote as _zygote

if TYPE_CHECKING:  # sandbox imports commands, which imports this module
    from scheduler_service.sandbox import RunLimits, Sandbox

SUPERVISOR_SCRIPT = Path(_sv.__file__).resolve()
_BOOTSTRAP = _sv.BOOTSTRAP.format(directory=str(SUPERVISOR_SCRIPT.parent))
_ZYGOTE_BOOTSTRAP = _zygote.ZYGOTE_BOOTSTRAP.format(directory=str(SUPERVISOR_SCRIPT.parent))
OUTPUT_LOG = _sv.OUTPUT_LOG
CLAIM_FILE = _sv.CLAIM_FILE
EXIT_FILE = _sv.EXIT_FILE
SUPERVISOR_LOG = "supervisor.log"
# The job's own directory in a run directory, when the job runs as another user.
WORK_DIR = "job"

DEFAULT_STOP_GRACE_SECONDS = 10.0
# Rounds of SIGKILL to what a lost supervisor's cgroups still hold (see ``_lost``).
LOST_KILL_ROUNDS = 50
# How long launch() waits for the supervisor's one status line. Normally a few milliseconds;
# the limit only matters if the supervisor hangs before the job starts (a stuck disk).
DEFAULT_REPORT_TIMEOUT_SECONDS = 30.0
# How long the zygote may take to start and say it is ready (an interpreter start: ~20 ms).
ZYGOTE_START_TIMEOUT_SECONDS = 10.0
# After the zygote failed to start, runs use the launcher this long before it is tried again.
ZYGOTE_RETRY_SECONDS = 30.0
# How long closing waits for the zygote to exit on its socket's EOF before killing it.
ZYGOTE_EXIT_SECONDS = 5.0

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


class OutcomeKind(enum.Enum):
    """How a run's process ended."""

    SUCCEEDED = "SUCCEEDED"
    """The job exited with code 0."""
    FAILED = "FAILED"
    """The job exited with a non-zero code or was killed by a signal nobody here sent."""
    TIMEOUT = "TIMEOUT"
    """The deadline passed; the job was sent SIGTERM, then SIGKILL after the grace period."""
    STOPPED = "STOPPED"
    """Stopped on request (``stop``): SIGTERM, then SIGKILL after the grace period."""
    ERROR = "ERROR"
    """The job could not be started (missing interpreter, not executable) or the supervisor
    itself failed."""
    LOST = "LOST"
    """The supervisor disappeared without recording a result (``kill -9``, a reboot): the
    outcome is unknown."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """The end of a run's process, as recorded by its supervisor."""

    kind: OutcomeKind
    """How it ended."""
    exit_code: int | None = None
    """The job's exit code, if it exited rather than being killed by a signal."""
    signal: int | None = None
    """The signal that killed the job, if one did."""
    message: str = ""
    """Why it did not succeed: the tail of the job's stderr, or what the supervisor did."""
    started_at: float | None = None
    """When the job's process was started (epoch seconds); None if unknown."""
    ended_at: float | None = None
    """When the job's process ended (epoch seconds); None if unknown."""
    limit: str | None = None
    """The sandbox limit that ended a FAILED run (``memory``, ``processes``, ``file_size``);
    the message then names it and its size."""


# -- identifying a supervisor ------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _Claim:
    """The contents of supervisor.json: who supervises the run, and which job it started."""

    pid: int
    start_time: int
    boot_id: str
    job_pid: int | None
    job_start_time: int | None
    cgroups: tuple[str, ...] = ()


def _read_claim(run_dir: Path) -> _Claim | str | None:
    """The run's claim; None if there is none, a message if it cannot be read."""
    try:
        data = json.loads((run_dir / CLAIM_FILE).read_bytes())
        return _Claim(
            pid=int(data["pid"]),
            start_time=int(data["start_time"]),
            boot_id=str(data["boot_id"]),
            job_pid=None if data.get("job_pid") is None else int(data["job_pid"]),
            job_start_time=(
                None if data.get("job_start_time") is None else int(data["job_start_time"])
            ),
            cgroups=tuple(str(path) for path in data.get("cgroups") or ()),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"{run_dir / CLAIM_FILE} is unreadable ({exc})"


# A boot id cannot change while this process runs.
_BOOT_ID = _sv.boot_id()


def is_process(pid: int, start_time: int, boot_id: str) -> bool:
    """Whether the process with this pid is alive and is the one that started at start_time."""
    if boot_id != _BOOT_ID:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    fields = stat[stat.rindex(b")") + 2 :].split()
    # A zombie has exited; nothing may reap it if its parent is an init that does not.
    return fields[0] not in (b"Z", b"X") and int(fields[19]) == start_time


def _open_pidfd(pid: int, start_time: int, boot_id: str) -> int | None:
    """A pidfd for the process, if it is alive and is the one meant; None otherwise.

    The pidfd is opened before the identity check: if the check passes, the pidfd refers to
    the right process, even if that process exits and its pid is reused the next instant.
    """
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return None
    if is_process(pid, start_time, boot_id):
        return pidfd
    os.close(pidfd)
    return None


def _read_outcome(run_dir: Path) -> Outcome | None:
    """The outcome the supervisor recorded; None if it has not recorded one."""
    path = run_dir / EXIT_FILE
    try:
        data = json.loads(path.read_bytes())
        return Outcome(
            kind=OutcomeKind(data["outcome"]),
            exit_code=data.get("exit_code"),
            signal=data.get("signal"),
            message=data.get("message") or "",
            started_at=data.get("started_at"),
            ended_at=data.get("ended_at"),
            limit=(data.get("limit") or {}).get("name"),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        # exit.json is written by rename, so this is damage, not a half-written file.
        return Outcome(kind=OutcomeKind.LOST, message=f"{path} is unreadable ({exc})")


def _lost(claim: _Claim) -> Outcome:
    """The outcome of a run whose supervisor died without recording one.

    A job the dead supervisor left running is killed with its process group: nothing would
    record its end, and the run may be retried, so it must not go on beside its retry.
    """
    message = (
        f"The run's supervisor (pid {claim.pid}) disappeared without recording the job's "
        "result; the result is unknown."
    )
    job_pid, job_start = claim.job_pid, claim.job_start_time
    # The job's leader is its process group id; checking that it is still the job we
    # started makes sure the group id has not been reused by an unrelated process.
    if (
        job_pid is not None
        and job_start is not None
        and is_process(job_pid, job_start, claim.boot_id)
    ):
        try:
            os.killpg(job_pid, signal.SIGKILL)
        except OSError:
            pass
        else:
            message += f" Its job (pid {job_pid}) was still running and has been killed."
    # What else of the job runs in its cgroups (it may have left its process group). No fork
    # succeeds once pids.max is 0, so a few short rounds end it; this blocks the event loop
    # for about a millisecond per round, and only for a run whose supervisor was killed.
    for path in claim.cgroups:
        with contextlib.suppress(OSError):
            Path(path, "pids.max").write_text("0")
    for _ in range(LOST_KILL_ROUNDS):
        live = [pid for path in claim.cgroups for pid in _cgroup_pids(path)]
        if not live:
            break
        for pid in live:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.001)
    for path in claim.cgroups:
        with contextlib.suppress(OSError):
            os.rmdir(path)
    return Outcome(kind=OutcomeKind.LOST, message=message)


def _cgroup_pids(path: str) -> list[int]:
    try:
        return [int(pid) for pid in Path(path, "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []


def _reap_if_ours(pidfd: int) -> None:
    """Reap the exited supervisor if it became our child (we are PID 1 or a subreaper)."""
    with contextlib.suppress(ChildProcessError):  # the usual case: init reaps it
        os.waitid(os.P_PIDFD, pidfd, os.WEXITED | os.WNOHANG)


# -- handles -------------------------------------------------------------------------------------


class RunningProcess:
    """A handle on a run's supervisor: wait for the outcome, or ask it to stop.

    Holds no open resources: each call opens (and closes) its own pidfd, so a handle may be
    dropped at any time, and the process runs on regardless.
    """

    def __init__(self, run_id: str, run_dir: Path, claim: _Claim) -> None:
        self.run_id = run_id
        self._run_dir = run_dir
        self._claim = claim

    def __repr__(self) -> str:
        return (
            f"RunningProcess(run_id={self.run_id!r}, supervisor_pid={self.supervisor_pid}, "
            f"job_pid={self.job_pid})"
        )

    @property
    def supervisor_pid(self) -> int:
        """The supervisor's pid."""
        return self._claim.pid

    @property
    def job_pid(self) -> int | None:
        """The job's pid (also its process group id); None if it did not start."""
        return self._claim.job_pid

    def is_alive(self) -> bool:
        """Whether the supervisor is still running (the run has not ended)."""
        return is_process(self._claim.pid, self._claim.start_time, self._claim.boot_id)

    def stop(self) -> bool:
        """Ask the supervisor to stop the job (TERM, grace, KILL; outcome STOPPED).

        Returns immediately; ``wait`` reports the outcome. Repeating it is harmless.

        Returns:
            False if the supervisor had already exited (the run has ended).
        """
        claim = self._claim
        pidfd = _open_pidfd(claim.pid, claim.start_time, claim.boot_id)
        if pidfd is None:
            return False
        try:
            signal.pidfd_send_signal(pidfd, signal.SIGTERM)
        except ProcessLookupError:
            return False
        finally:
            os.close(pidfd)
        return True

    async def wait(self) -> Outcome:
        """Wait for the run to end and return its outcome.

        Awaits the supervisor's exit through a pidfd on the event loop (no polling), then reads
        ``exit.json``. Cancelling the wait does not affect the run.
        """
        claim = self._claim
        pidfd = _open_pidfd(claim.pid, claim.start_time, claim.boot_id)
        if pidfd is not None:
            try:
                loop = asyncio.get_running_loop()
                exited: asyncio.Future[None] = loop.create_future()
                loop.add_reader(pidfd, _resolve, exited)
                try:
                    await exited
                finally:
                    loop.remove_reader(pidfd)
                _reap_if_ours(pidfd)
            finally:
                os.close(pidfd)
        return self.outcome() or _lost(claim)

    def outcome(self) -> Outcome | None:
        """The recorded outcome if the run has ended, else None (it may still be running)."""
        return _read_outcome(self._run_dir)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


# -- the zygote ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Status:
    """What a launch's status pipe gave: the line (without its newline), or what it ended with."""

    line: bytes
    eof: bool
    """The pipe closed without a line: no process of the launch holds it any more."""


class _Zygote:
    """The scheduler's end of the supervisor zygote (``scheduler_service.zygote``).

    Owns the zygote process, its socket and the pidfd that tells when it died; ``close`` ends
    all three. No asyncio child watcher is involved (no thread per process): the zygote is
    awaited and reaped through its pidfd, and launches go over the socket, not through
    ``create_subprocess_exec``.

    Restarted at the next launch when it has died; while it cannot start, ``launch`` returns
    None and the runner starts the launcher instead (tried again after
    ``ZYGOTE_RETRY_SECONDS``).
    """

    def __init__(self, python: str) -> None:
        self._python = python
        self._sock: socket.socket | None = None
        self._pid: int | None = None
        self._pidfd: int | None = None
        self._closed = False
        self._retry_at = 0.0
        self._starting = asyncio.Lock()
        # One sender at a time: a full socket buffer is waited for with add_writer, which
        # holds one callback per descriptor.
        self._sending = asyncio.Lock()

    @property
    def pid(self) -> int | None:
        """The live zygote's pid; None while there is none."""
        return self._pid if self._sock is not None else None

    async def start(self) -> bool:
        """Start the zygote if none is running; False (logged) if it cannot start."""
        if self._sock is not None:
            return True
        async with self._starting:
            if self._sock is not None:
                return True
            if self._closed or time.monotonic() < self._retry_at:
                return False
            try:
                await self._spawn()
            except (OSError, TimeoutError, ValueError) as exc:
                self._retry_at = time.monotonic() + ZYGOTE_RETRY_SECONDS
                log.warning(
                    "cannot start the supervisor zygote (%s); runs start through the launcher "
                    "(an interpreter per run) and it is tried again in %g s",
                    exc or type(exc).__name__,
                    ZYGOTE_RETRY_SECONDS,
                )
                return False
            return True

    async def _spawn(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        process: subprocess.Popen[bytes] | None = None
        pidfd: int | None = None
        try:
            # Popen, as the launcher's asyncio subprocess does (not os.posix_spawn: glibc's
            # leaves its internal signals 32 and 33 ignored in the child, which a job would
            # inherit). Its own session: a signal to the scheduler's process group must not
            # reach it. No asyncio watcher: the pidfd below tells when it exits.
            process = subprocess.Popen(  # noqa: ASYNC220 - vfork + exec: returns at once
                [self._python, "-I", "-S", "-c", _ZYGOTE_BOOTSTRAP, str(theirs.fileno())],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,
            )
            theirs.close()
            # Our unreaped child: the pid cannot be reused, so the pidfd is the zygote's.
            pidfd = os.pidfd_open(process.pid)
            ours.setblocking(False)
            loop = asyncio.get_running_loop()
            ready = await asyncio.wait_for(loop.sock_recv(ours, 64), ZYGOTE_START_TIMEOUT_SECONDS)
            if ready != _zygote.READY:
                raise OSError(f"it said {ready!r} instead of {_zygote.READY!r}")
        except BaseException:
            theirs.close()
            ours.close()
            if pidfd is not None:
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                await _wait_exit(pidfd, None)
                os.close(pidfd)
            raise
        finally:
            if process is not None:
                # Reaped through the pidfd; Popen must not try again (nor warn at exit).
                process.returncode = 0
        self._sock, self._pid, self._pidfd = ours, process.pid, pidfd
        asyncio.get_running_loop().add_reader(pidfd, self._exited, ours)
        log.debug("supervisor zygote started", extra={"zygote_pid": process.pid})

    def _exited(self, sock: socket.socket) -> None:
        """The zygote's pidfd is readable: it has exited. Reap it; the next launch restarts it."""
        if self._sock is not sock or self._pidfd is None:
            return
        pidfd, pid = self._pidfd, self._pid
        asyncio.get_running_loop().remove_reader(pidfd)
        status = None
        with contextlib.suppress(ChildProcessError):
            status = os.waitid(os.P_PIDFD, pidfd, os.WEXITED | os.WNOHANG)
        os.close(pidfd)
        sock.close()
        self._sock = self._pid = self._pidfd = None
        if not self._closed:
            log.warning(
                "the supervisor zygote (pid %s) ended (%s); the next launch starts another",
                pid,
                "unknown status"
                if status is None
                else f"code {status.si_code}, status {status.si_status}",
            )

    async def launch(self, request: bytes, log_fd: int, timeout: float) -> _Status | None:
        """Have the zygote start a launcher for ``request``; its status, or None if the request
        could not be handed over (then nothing was started for it)."""
        for _ in range(2):  # a zygote found dead is restarted once
            if not await self.start():
                return None
            sock = self._sock
            assert sock is not None
            read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
            try:
                os.set_blocking(read_fd, False)
                try:
                    async with asyncio.timeout(timeout):
                        await self._send(sock, request, (write_fd, log_fd))
                except (OSError, TimeoutError) as exc:
                    # Dead (EPIPE, ECONNRESET) or stuck: either way it did not get the request.
                    log.warning("the supervisor zygote did not take a launch (%s)", exc)
                    await self._discard(sock)
                    continue
                finally:
                    os.close(write_fd)
                return await _read_status(read_fd, timeout)
            finally:
                os.close(read_fd)
        return None

    async def _send(self, sock: socket.socket, data: bytes, fds: tuple[int, ...]) -> None:
        rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))]
        async with self._sending:
            while True:
                try:
                    sock.sendmsg([data], rights)
                    return
                except BlockingIOError:
                    await _ready(sock.fileno(), writable=True)

    async def _discard(self, sock: socket.socket) -> None:
        """Give up on a zygote that refused a request: kill it and reap it."""
        if self._sock is not sock or self._pidfd is None:
            return  # another launch did it already
        pidfd = self._pidfd
        asyncio.get_running_loop().remove_reader(pidfd)
        self._sock = self._pid = self._pidfd = None
        sock.close()
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        try:
            await _wait_exit(pidfd, None)
        finally:
            os.close(pidfd)

    async def close(self) -> None:
        """Close the socket (the zygote exits on its EOF), wait for the exit and reap it."""
        self._closed = True
        async with self._starting:
            sock, pidfd = self._sock, self._pidfd
            if sock is None or pidfd is None:
                return
            asyncio.get_running_loop().remove_reader(pidfd)
            self._sock = self._pid = self._pidfd = None
            sock.close()
            try:
                await _wait_exit(pidfd, ZYGOTE_EXIT_SECONDS)
            finally:
                os.close(pidfd)


async def _ready(fd: int, *, writable: bool = False) -> None:
    """Wait until ``fd`` is readable (or writable) on the event loop."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()
    if writable:
        loop.add_writer(fd, _resolve, ready)
    else:
        loop.add_reader(fd, _resolve, ready)
    try:
        await ready
    finally:
        if writable:
            loop.remove_writer(fd)
        else:
            loop.remove_reader(fd)


async def _wait_exit(pidfd: int, timeout: float | None) -> None:
    """Wait for our child behind ``pidfd`` to exit (SIGKILL after ``timeout``) and reap it."""
    try:
        async with asyncio.timeout(timeout):
            await _ready(pidfd)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        await _ready(pidfd)
    with contextlib.suppress(ChildProcessError):  # exited: the pidfd said so; this only reaps
        os.waitid(os.P_PIDFD, pidfd, os.WEXITED | os.WNOHANG)  # noqa: ASYNC222


async def _read_status(fd: int, timeout: float) -> _Status:
    """Read the supervisor's status line from the non-blocking pipe ``fd``."""
    received = bytearray()
    try:
        async with asyncio.timeout(timeout):
            while True:
                try:
                    chunk = os.read(fd, 4096)
                except BlockingIOError:
                    await _ready(fd)
                    continue
                if not chunk:
                    return _Status(bytes(received), eof=True)
                received += chunk
                if b"\n" in received:
                    return _Status(bytes(received).partition(b"\n")[0], eof=False)
    except TimeoutError:
        return _Status(bytes(received), eof=False)


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
        self._zygote: _Zygote | None = None

    async def start_zygote(self) -> bool:
        """Start supervisors from now on through a zygote (``scheduler_service.zygote``): a
        process of our own that forks each one from an already-started interpreter, instead of
        an interpreter start per run. ``close`` ends it; runs are not affected either way.

        Returns:
            False if it could not start (logged): launches then use the launcher, and the
            zygote is tried again later.
        """
        if self._zygote is None:
            self._zygote = _Zygote(self._python)
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
    ) -> _Status | None:
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
    ) -> tuple[_Status, str]:
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
            line = await asyncio.wait_for(proc.stdout.readline(), self._report_timeout)
        except TimeoutError:
            line = b""
        finally:
            # The process we started only forks the supervisor and exits; reaping it (and the
            # pipe's EOF) lets asyncio close its transport.
            await proc.wait()
        status = _Status(line.rstrip(b"\n"), eof=not line.endswith(b"\n"))
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
        claim = _read_claim(run_dir)
        if isinstance(claim, _Claim):
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
        outcome = _read_outcome(run_dir)
        if outcome is not None:
            return outcome
        claim = _read_claim(run_dir)
        if claim is None:
            return None
        if isinstance(claim, str):
            return Outcome(kind=OutcomeKind.LOST, message=claim)
        handle = RunningProcess(run_id, run_dir, claim)
        if handle.is_alive():
            return handle
        # It may have recorded the outcome and exited since we first looked.
        return _read_outcome(run_dir) or _lost(claim)

    def stop(self, run_id: str) -> bool:
        """Ask the run's supervisor to stop the job; False if it has no live supervisor."""
        claim = _read_claim(self.run_dir(run_id))
        if not isinstance(claim, _Claim):
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
