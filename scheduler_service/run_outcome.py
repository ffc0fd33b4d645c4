"""What a run's supervisor claims and records in its run directory, and a handle on it.

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

The supervisor is identified by (boot id, pid, start time from ``/proc/<pid>/stat``), so a
reused pid is never mistaken for it, and it is signalled and awaited through a pidfd, which
cannot refer to another process once opened.

``scheduler_service.runner`` starts supervisors (``ProcessRunner``); this module reads what they
leave: the claim (``supervisor.json``), the outcome (``exit.json``), and the outcome of a run
whose supervisor died without one (LOST).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from scheduler_service import supervisor as _sv

OUTPUT_LOG = _sv.OUTPUT_LOG
CLAIM_FILE = _sv.CLAIM_FILE
EXIT_FILE = _sv.EXIT_FILE
SUPERVISOR_LOG = "supervisor.log"
# The job's own directory in a run directory, when the job runs as another user.
WORK_DIR = "job"

# Rounds of SIGKILL to what a lost supervisor's cgroups still hold (see ``lost_outcome``).
LOST_KILL_ROUNDS = 50


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
class Claim:
    """The contents of supervisor.json: who supervises the run, and which job it started."""

    pid: int
    start_time: int
    boot_id: str
    job_pid: int | None
    job_start_time: int | None
    cgroups: tuple[str, ...] = ()


def read_claim(run_dir: Path) -> Claim | str | None:
    """The run's claim; None if there is none, a message if it cannot be read."""
    try:
        data = json.loads((run_dir / CLAIM_FILE).read_bytes())
        return Claim(
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


def read_outcome(run_dir: Path) -> Outcome | None:
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


def lost_outcome(claim: Claim) -> Outcome:
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

    def __init__(self, run_id: str, run_dir: Path, claim: Claim) -> None:
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
        return self.outcome() or lost_outcome(claim)

    def outcome(self) -> Outcome | None:
        """The recorded outcome if the run has ended, else None (it may still be running)."""
        return read_outcome(self._run_dir)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
