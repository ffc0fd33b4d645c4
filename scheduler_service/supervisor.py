"""Supervises one job run's process so that the run outlives the scheduler that started it.

Usage (``scheduler_service.runner`` is the intended caller)::

    python -m scheduler_service.supervisor --run-dir DIR [--deadline EPOCH_SECONDS|none]
        [--grace SECONDS] -- ARGV...

Every run pays for one supervisor start, so the runner starts it the cheap way (``BOOTSTRAP``
below): ``python -I -S`` (no ``site``: ~6 ms instead of ~15), importing this file as a
top-level module so its cached bytecode is used (a script is compiled afresh every time,
~3 ms), and ending with ``os._exit`` (no interpreter teardown, ~1 ms). For the same reason the
imports are few and C-level: ``_signal`` rather than ``signal`` (which imports ``enum``),
``_json``'s string encoder rather than ``json`` (which imports ``re``), no ``argparse``, no
``contextlib``, no ``dataclasses``.

What it does, in order:

1. Forks and lets the parent exit, so that the supervisor is nobody's child: the scheduler
   never holds a handle whose clean-up could kill it (asyncio kills a subprocess whose
   transport is closed while it runs), and every supervisor is watched the same way
   (a pidfd), whether this scheduler process started it or a previous one did.
2. Claims the run directory: writes ``supervisor.json`` (pid, process start time, boot id)
   to a temporary file, fsyncs it, and hard-links it into place. ``link`` fails if the name
   exists, so exactly one supervisor per run gets past this point; a second one reports
   ``busy`` and exits without starting anything.
3. Starts ARGV (no shell, ``PATH`` lookup) in its own process group, stdin ``/dev/null``,
   stdout appended to ``output.log``, stderr piped through the supervisor into the same file
   while the last 4 KB are kept for the error message.
4. Reports ONE line on stdout and closes it: ``started <job pid>``, ``busy`` or
   ``error <message>``. The parent may be gone by then; a broken pipe is ignored.
5. Waits for the first of: the job's exit; SIGTERM (outcome STOPPED); the deadline (TIMEOUT).
   Stopping sends SIGTERM to the job's process group, waits ``--grace`` seconds, then sends
   SIGKILL. When the job's main process has exited, whatever is left of its process group is
   killed: a run owns its group, and nothing of it outlives the run.
6. Writes ``exit.json`` atomically (temporary file, fsync, rename, fsync of the directory)
   and exits 0. Every path after a successful claim ends in ``exit.json``, including a
   failure to start the job (outcome ERROR) and an unexpected error in the supervisor itself.
"""

from __future__ import annotations

import math
import os
import select
import sys
import time
from _json import encode_basestring_ascii

# The C module behind ``signal``; typeshed has no stubs for it, hence the untyped import.
_signal = __import__("_signal")

# ``python -I -S -c BOOTSTRAP --run-dir ...`` runs ``main`` from this file's cached bytecode.
# The directory goes last on sys.path so that nothing beside this file can shadow a stdlib
# module; the package's ``__init__`` is not imported (it may grow heavy imports).
BOOTSTRAP = (
    "import sys; sys.path.append({directory!r}); import supervisor; supervisor.run_and_exit()"
)

STDERR_TAIL_BYTES = 4096
# A stderr line longer than this is written out unfinished rather than held back.
STDERR_LINE_LIMIT = 65536
MESSAGE_MAX_CHARS = 2048
# After the job's main process exits, wait at most this long for the stderr pipe's EOF: a
# process that escaped the job's process group may hold the pipe open forever.
STDERR_DRAIN_SECONDS = 1.0
DEFAULT_GRACE_SECONDS = 10.0

OUTPUT_LOG = "output.log"
CLAIM_FILE = "supervisor.json"
EXIT_FILE = "exit.json"

# Outcome names, shared with ``scheduler_service.runner.OutcomeKind``.
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
TIMEOUT = "TIMEOUT"
STOPPED = "STOPPED"
ERROR = "ERROR"


class _IgnoreOSErrors:
    """``contextlib.suppress(OSError)`` without importing contextlib (~2 ms of a ~7 ms start)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> bool:
        return exc_type is not None and issubclass(exc_type, OSError)


ignore_os_errors = _IgnoreOSErrors()


class UsageError(Exception):
    """The command line is not one this module understands."""


class Options:
    """The parsed command line."""

    def __init__(self, run_dir: str, deadline: float | None, grace: float, argv: list[str]) -> None:
        self.run_dir = run_dir
        self.deadline = deadline
        self.grace = grace
        self.argv = argv


def parse_args(args: list[str]) -> Options:
    """Parse ``--run-dir DIR [--deadline EPOCH] [--grace SECONDS] -- ARGV...``.

    Hand-rolled because ``argparse`` would double the supervisor's start-up time.

    Raises:
        UsageError: a flag is unknown, repeated, lacks its value or has a bad one, or ARGV
            is empty.
    """
    values: dict[str, str] = {}
    i = 0
    while i < len(args) and args[i] != "--":
        flag = args[i]
        if flag not in ("--run-dir", "--deadline", "--grace"):
            raise UsageError(f"unknown flag {flag!r}")
        if flag in values:
            raise UsageError(f"{flag} given twice")
        if i + 1 >= len(args):
            raise UsageError(f"{flag} needs a value")
        values[flag] = args[i + 1]
        i += 2
    argv = args[i + 1 :]
    if "--run-dir" not in values:
        raise UsageError("--run-dir is required")
    if not argv:
        raise UsageError("no command after --")
    deadline: float | None = None
    raw_deadline = values.get("--deadline", "none")
    try:
        if raw_deadline != "none":
            deadline = float(raw_deadline)
        grace = float(values.get("--grace", DEFAULT_GRACE_SECONDS))
    except ValueError as exc:
        raise UsageError(f"bad number: {exc}") from None
    if not grace >= 0:  # also rejects NaN
        raise UsageError("--grace must be a non-negative number")
    return Options(os.path.abspath(values["--run-dir"]), deadline, grace, argv)


def report(line: str) -> None:
    """Send the one status line to whoever started us, then close stdout.

    Replacing fd 1 with ``/dev/null`` (rather than closing it) gives the reader its EOF while
    keeping fd 1 from being reused by a file we open later.
    """
    # The scheduler may have died since it started us: a broken pipe is fine, the run goes on.
    with ignore_os_errors:
        os.write(1, (line.replace("\n", " ") + "\n").encode("utf-8", "replace"))
    with ignore_os_errors:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)


def to_json(value: object) -> str:
    """Encode None, bool, int, float, str, list and dict (of those) as JSON."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        # repr() is valid JSON for finite floats; JSON has no infinities or NaN.
        return repr(value) if math.isfinite(value) else "null"
    if isinstance(value, str):
        return encode_basestring_ascii(value)
    if isinstance(value, list):
        return "[" + ", ".join(to_json(item) for item in value) + "]"
    if isinstance(value, dict):
        items = (f"{encode_basestring_ascii(str(k))}: {to_json(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data``; ``os.write`` may write less than asked."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def fsync_dir(path: str) -> None:
    """Make a rename or link in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file(path: str, text: str, *, sync: bool) -> None:
    """Create or truncate ``path`` and write ``text``, fsynced if ``sync``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        write_all(fd, text.encode())
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def replace_file(path: str, text: str, *, sync: bool) -> None:
    """Replace ``path`` atomically: readers see the old content or the new, never a part."""
    tmp = f"{path}.{os.getpid()}.tmp"
    write_file(tmp, text, sync=sync)
    os.rename(tmp, path)
    if sync:
        fsync_dir(os.path.dirname(path))


def proc_start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat: start time in clock ticks after boot; None if gone.

    A pid and its start time name one process for the life of the machine: a reused pid has
    a later start time.
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may contain spaces and ')'.
    fields = stat[stat.rindex(b")") + 2 :].split()
    return int(fields[19])


def boot_id() -> str:
    """This boot's random id; a pid and start time from another boot name no process."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return ""


def signal_name(signum: int) -> str:
    """``SIGKILL`` for 9; ``signal N`` for numbers without a name."""
    for name in dir(_signal):
        # dir() is sorted, so the conventional name wins over its alias (SIGABRT/SIGIOT).
        if (
            name.startswith("SIG")
            and not name.startswith("SIG_")
            and getattr(_signal, name) == signum
        ):
            return name
    return f"signal {signum}"


def stderr_message(tail: bytes) -> str:
    """The last non-empty lines of stderr, at most ``MESSAGE_MAX_CHARS`` characters."""
    lines = [line.rstrip() for line in tail.decode("utf-8", "replace").splitlines()]
    kept: list[str] = []
    size = 0
    for line in reversed([line for line in lines if line.strip()]):
        if size + len(line) + 1 > MESSAGE_MAX_CHARS:
            if not kept:
                kept.append(line[-MESSAGE_MAX_CHARS:])
            break
        kept.append(line)
        size += len(line) + 1
    return "\n".join(reversed(kept))


class Supervisor:
    """One run's supervisor: claims the run directory, runs the job, records its outcome."""

    def __init__(self, opts: Options) -> None:
        self.opts = opts
        self.claim_path = os.path.join(opts.run_dir, CLAIM_FILE)
        self.exit_path = os.path.join(opts.run_dir, EXIT_FILE)
        self.stop_requested = False
        self.reported = False
        self.job_pid: int | None = None
        self.job_reaped = False
        self.started_at: float | None = None
        self.tail = bytearray()
        self.partial_line = bytearray()
        self.log_fd = -1
        self.err_fd: int | None = None

    # -- entry point -------------------------------------------------------------------------

    def run(self) -> int:
        """Claim, supervise, record; the exit status is 0 unless nothing could be claimed."""
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        # Installed before the claim: a SIGTERM that arrives as soon as the claim is visible
        # must stop the job, not kill the supervisor and leave the job unsupervised.
        _signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        _signal.signal(_signal.SIGTERM, self._on_sigterm)
        # A new session has no terminal, but a supervisor started by hand from a shell must
        # still not die with that shell.
        _signal.signal(_signal.SIGHUP, _signal.SIG_IGN)
        _signal.signal(_signal.SIGINT, _signal.SIG_IGN)
        try:
            claimed = self._claim()
        except Exception as exc:  # noqa: BLE001 - whatever it is, the parent gets one line
            self._report(f"error cannot claim run directory {self.opts.run_dir}: {exc}")
            return 1
        if not claimed:
            self._report("busy")
            return 0
        try:
            self._supervise(wake_r)
        except BaseException as exc:  # noqa: BLE001 - see the comment below
            # A bug or a failing disk: the job must not run on unsupervised, and the run
            # must still end in exit.json rather than in a traceback nobody reads.
            self._fail(exc)
        return 0

    def _on_sigterm(self, signum: int, frame: object) -> None:
        self.stop_requested = True

    def _report(self, line: str) -> None:
        if not self.reported:
            self.reported = True
            report(line)

    # -- the claim ---------------------------------------------------------------------------

    def _claim(self) -> bool:
        """Atomically take the run directory; False if another supervisor has it."""
        pid = os.getpid()
        tmp = os.path.join(self.opts.run_dir, f".{CLAIM_FILE}.{pid}.tmp")
        # fsynced before the link so that after a machine crash the claim is either absent
        # (the job never started) or complete - never an empty file that reads as neither.
        write_file(tmp, self._claim_json(), sync=True)
        try:
            os.link(tmp, self.claim_path)
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp)
        fsync_dir(self.opts.run_dir)
        return True

    def _claim_json(self, job_start_time: int | None = None) -> str:
        pid = os.getpid()
        return to_json(
            {
                "pid": pid,
                "start_time": proc_start_time(pid),
                "boot_id": boot_id(),
                "job_pid": self.job_pid,
                "job_start_time": job_start_time,
                "deadline": self.opts.deadline,
                "grace": self.opts.grace,
                "argv": self.opts.argv,
            }
        )

    # -- supervision -------------------------------------------------------------------------

    def _supervise(self, wake_r: int) -> None:
        opts = self.opts
        self.log_fd = os.open(
            os.path.join(opts.run_dir, OUTPUT_LOG),
            os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC,
            0o644,
        )
        err_r, err_w = os.pipe()
        self.err_fd = err_r
        devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        self.started_at = time.time()
        try:
            # Python creates descriptors close-on-exec, so the job inherits only 0, 1 and 2.
            self.job_pid = os.posix_spawnp(
                opts.argv[0],
                opts.argv,
                os.environ,
                file_actions=[
                    (os.POSIX_SPAWN_DUP2, devnull, 0),
                    (os.POSIX_SPAWN_DUP2, self.log_fd, 1),
                    (os.POSIX_SPAWN_DUP2, err_w, 2),
                ],
                setpgroup=0,
                # Dispositions we (or Python) set to "ignore" would survive exec.
                setsigdef=(_signal.SIGPIPE, _signal.SIGXFSZ, _signal.SIGHUP, _signal.SIGINT),
                setsigmask=(),
            )
        except OSError as exc:
            self._close_stderr()
            message = f"cannot execute {opts.argv[0]}: {exc.strerror or exc}"
            self._write_exit(ERROR, message=message, ended_at=time.time())
            self._report(f"error {message}")
            return
        finally:
            os.close(err_w)
            os.close(devnull)
        pid = self.job_pid
        # The leader stays a zombie until we reap it, so the pidfd cannot refer to another
        # process and the process group id stays ours until then.
        pidfd = os.pidfd_open(pid)
        # Lets a restarted scheduler that finds this supervisor dead kill an orphaned job.
        replace_file(self.claim_path, self._claim_json(proc_start_time(pid)), sync=False)
        self._report(f"started {pid}")

        reason, killed = self._wait_for_exit(pidfd, wake_r)
        # Kill what is left of the group while the unreaped leader still holds its id.
        self._killpg(_signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        self.job_reaped = True
        ended_at = time.time()
        os.close(pidfd)
        self._drain_stderr()

        exit_code = os.waitstatus_to_exitcode(status)
        code = exit_code if exit_code >= 0 else None
        signum = -exit_code if exit_code < 0 else None
        if reason is not None:
            how = f"SIGKILL after {opts.grace:g} s grace" if killed else "SIGTERM"
            what = "stopped on request" if reason == STOPPED else "timed out at the deadline"
            message = f"{what}; the job's process group was ended with {how}"
            kind = reason
        elif code == 0:
            kind, message = SUCCEEDED, ""
        else:
            kind = FAILED
            message = stderr_message(bytes(self.tail))
            if not message and signum is not None:
                message = f"killed by signal {signal_name(signum)}"
            elif not message:
                message = f"exit code {code}"
        self._write_exit(kind, exit_code=code, signum=signum, message=message, ended_at=ended_at)

    def _wait_for_exit(self, pidfd: int, wake_r: int) -> tuple[str | None, bool]:
        """Pump stderr until the job's main process exits; stop it on SIGTERM or deadline.

        Returns:
            The reason the job was stopped (STOPPED, TIMEOUT or None) and whether SIGKILL
            was needed.
        """
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        poller.register(wake_r, select.POLLIN)
        err_r = self.err_fd
        if err_r is not None:
            poller.register(err_r, select.POLLIN)
        deadline: float | None = None
        if self.opts.deadline is not None:
            # Measured on the monotonic clock from here on, so a wall-clock step cannot end
            # a run early or late; the absolute deadline is what survives restarts.
            deadline = time.monotonic() + (self.opts.deadline - time.time())
        reason: str | None = None
        kill_at: float | None = None
        killed = False
        while True:
            now = time.monotonic()
            if reason is None:
                if self.stop_requested:
                    reason = STOPPED
                elif deadline is not None and now >= deadline:
                    reason = TIMEOUT
                if reason is not None:
                    self._killpg(_signal.SIGTERM)
                    kill_at = now + self.opts.grace
            if kill_at is not None and now >= kill_at:
                self._killpg(_signal.SIGKILL)
                killed = True
                kill_at = None
            wake_at = kill_at if reason is not None else deadline
            timeout_ms = -1 if wake_at is None else max(0, int((wake_at - now) * 1000) + 1)
            exited = False
            for fd, _ in poller.poll(timeout_ms):
                if fd == pidfd:
                    exited = True
                elif fd == err_r:
                    if not self._pump_stderr(fd):
                        poller.unregister(fd)
                        self._close_stderr()
                        err_r = None
                elif fd == wake_r:
                    with ignore_os_errors:
                        os.read(wake_r, 512)
            if exited:
                return reason, killed

    def _pump_stderr(self, fd: int) -> bool:
        """Copy one chunk of stderr to the log and the tail; False at EOF."""
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            chunk = b""
        if not chunk:
            self._write_log(bytes(self.partial_line))
            self.partial_line.clear()
            return False
        self.tail += chunk
        del self.tail[:-STDERR_TAIL_BYTES]
        # stdout reaches the log directly, so stderr is written in whole lines: a line
        # written in pieces (print() writes text and newline separately) is not split by
        # a stdout line that lands in between.
        self.partial_line += chunk
        end = self.partial_line.rfind(b"\n") + 1
        if end == 0 and len(self.partial_line) >= STDERR_LINE_LIMIT:
            end = len(self.partial_line)
        if end:
            self._write_log(bytes(self.partial_line[:end]))
            del self.partial_line[:end]
        return True

    def _write_log(self, data: bytes) -> None:
        with ignore_os_errors:  # a full disk loses log lines, not the run's outcome
            write_all(self.log_fd, data)

    def _drain_stderr(self) -> None:
        """Read what the job left in the stderr pipe, up to its EOF or a short limit."""
        fd = self.err_fd
        if fd is None:
            return  # already at EOF
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        until = time.monotonic() + STDERR_DRAIN_SECONDS
        try:
            while (left := until - time.monotonic()) > 0:
                if poller.poll(int(left * 1000) + 1) and not self._pump_stderr(fd):
                    break
        finally:
            self._close_stderr()

    def _close_stderr(self) -> None:
        if self.err_fd is not None:
            os.close(self.err_fd)
            self.err_fd = None

    def _killpg(self, signum: int) -> None:
        if self.job_pid is None or self.job_reaped:
            return
        with ignore_os_errors:  # the group is already gone
            os.killpg(self.job_pid, signum)

    # -- the outcome -------------------------------------------------------------------------

    def _write_exit(
        self,
        kind: str,
        *,
        message: str,
        ended_at: float,
        exit_code: int | None = None,
        signum: int | None = None,
    ) -> None:
        record = {
            "outcome": kind,
            "exit_code": exit_code,
            "signal": signum,
            "signal_name": signal_name(signum) if signum is not None else None,
            "message": message,
            "started_at": self.started_at,
            "ended_at": ended_at,
            "job_pid": self.job_pid,
            "supervisor_pid": os.getpid(),
        }
        replace_file(self.exit_path, to_json(record) + "\n", sync=True)

    def _fail(self, exc: BaseException) -> None:
        message = f"the supervisor failed: {type(exc).__name__}: {exc}"
        try:
            self._killpg(_signal.SIGKILL)
            if self.job_pid is not None and not self.job_reaped:
                os.waitpid(self.job_pid, 0)
        except OSError:
            pass
        try:
            self._write_exit(ERROR, message=message, ended_at=time.time())
        finally:
            self._report(f"error {message}")


def main(args: list[str] | None = None) -> int:
    """Run the supervisor; see the module docstring for the protocol."""
    try:
        opts = parse_args(sys.argv[1:] if args is None else args)
    except UsageError as exc:
        report(f"error usage: {exc}")
        return 2
    try:
        if os.fork() != 0:
            # The parent's only job was to make the supervisor an orphan (see step 1).
            os._exit(0)
    except OSError as exc:
        report(f"error cannot fork the supervisor: {exc}")
        return 1
    return Supervisor(opts).run()


def run_and_exit() -> None:
    """Entry point: ``main``, then exit without interpreter teardown (nothing is left open)."""
    code = main()
    with ignore_os_errors:
        sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run_and_exit()
