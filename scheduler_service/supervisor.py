"""Supervises one job run's process so that the run outlives the scheduler that started it.

One file on purpose, past the ~400-line rule: every run's supervisor starts from it (imported
by a ``python -I -S`` launcher or the zygote), and each further module would be one more import
on every run's start path; its imports are kept few and C-level for the same reason (below).

Usage (``scheduler_service.runner`` is the intended caller; ``scheduler_service.sandbox``
builds the sandbox flags)::

    python -m scheduler_service.supervisor --run-dir DIR [--deadline EPOCH_SECONDS|none]
        [--grace SECONDS] [SANDBOX FLAGS] -- ARGV...

    SANDBOX FLAGS: [--uid N --gid N | --uid-range LOW-HIGH --uid-locks DIR [--gid N]]
        [--job-dir DIR] [--cgroup DIR ...] [--memory BYTES [--memory-note TEXT]
        [--memory-fallback as]] [--max-processes N] [--max-open-files N]
        [--max-file-bytes N] [--cpu-weight 1-10000] [--max-log-bytes N]

Every run pays for one supervisor start. A scheduler normally pays no interpreter start at all:
its zygote (``scheduler_service.zygote``), an interpreter that has imported this module once,
forks a process per run that is set up exactly like the launcher's below (its own session,
stdio, environment, working directory, umask, locale, ``sys.argv``) and calls
``run_and_exit``. Without a zygote the runner starts the launcher the cheap way (``BOOTSTRAP``
below): ``python -I -S`` (no ``site``: ~6 ms instead of ~15), importing this file as a
top-level module so its cached bytecode is used (a script is compiled afresh every time,
~3 ms), and ending with ``os._exit`` (no interpreter teardown, ~1 ms). For the same reason the
imports are few and C-level: ``_signal`` rather than ``signal`` (which imports ``enum``),
``_json``'s string encoder rather than ``json`` (which imports ``re``), ``_ctypes`` rather
than ``ctypes`` (0.5 ms instead of 2.8), ``resource`` and ``fcntl`` only when a flag needs
them (0.2 ms each), no ``subprocess`` (10 ms), no ``argparse``, no ``contextlib``, no
``dataclasses``.

What it does, in order:

1. Forks and lets the parent exit, so that the supervisor is nobody's child: the scheduler
   never holds a handle whose clean-up could kill it (asyncio kills a subprocess whose
   transport is closed while it runs), and every supervisor is watched the same way
   (a pidfd), whether this scheduler process started it or a previous one did. (A zygote's
   child skips this fork: ``run_forked_and_exit``.) It then
   becomes a child subreaper (``prctl(PR_SET_CHILD_SUBREAPER)``): whatever the job starts,
   however it detaches (``setsid``, double fork), is re-parented to the supervisor, not init.
2. Claims the run directory: writes ``supervisor.json`` (pid, process start time, boot id)
   to a temporary file, fsyncs it, and hard-links it into place. ``link`` fails if the name
   exists, so exactly one supervisor per run gets past this point; a second one reports
   ``busy`` and exits without starting anything.
3. Sets up the sandbox: with ``--uid-range`` takes a uid of its own for the run (an
   ``flock`` on ``<uid-locks>/<uid>``, held for the supervisor's life, so a killed supervisor
   frees it and a restarted scheduler needs no bookkeeping) and kills whatever a previous
   holder of that uid left running; creates the run's cgroups (``--cgroup``, one directory per
   hierarchy) and writes their limits; hands ``--job-dir`` to the job's identity (0700).
4. Starts ARGV (no shell, ``PATH`` lookup) with ``fork`` + ``exec``: the child joins the
   cgroups, sets the rlimits, makes its own process group, drops to the job's identity
   (``setgroups([])``, ``setgid``, ``setuid``) and execs. ``posix_spawn`` cannot do the
   cgroup, rlimit or identity steps, and ``subprocess`` costs 10 ms to import; the fork of
   this small process costs about 1 ms. stdin is ``/dev/null``; stdout and stderr are two
   pipes the supervisor copies into ``output.log`` in whole lines (capped by
   ``--max-log-bytes``: the first half and the last half are kept, with a line saying how
   much was cut where), keeping the last 4 KB of stderr for the error message. Beside it,
   ``output.idx`` says which stream wrote each piece and when (``OutputLog``), so readers
   can keep stdout and stderr apart and time each line, as CloudWatch Logs does.
   ``output.log`` belongs to the supervisor's user, so a job running as another user cannot
   rewrite or truncate its own log.
5. Reports ONE line on stdout and closes it: ``started <job pid>``, ``busy`` or
   ``error <message>``. The parent may be gone by then; a broken pipe is ignored.
6. Waits for the first of: the job's exit; SIGTERM (outcome STOPPED); the deadline (TIMEOUT).
   Stopping sends SIGTERM to the job's process group, waits ``--grace`` seconds, then sends
   SIGKILL. Orphans that exit meanwhile are reaped. When the job's main process has exited,
   everything it started is killed: its process group, every process in its cgroups (which
   can no longer fork: ``pids.max`` is set to 0 first) and every process re-parented to the
   supervisor, until none is left; with ``--uid-range`` also every process of the run's uid.
7. Works out whether a limit ended the run (memory: the cgroup's OOM kills, or a MemoryError;
   processes: the pids cgroup refused a fork; file size: SIGXFSZ or EFBIG) and says so in the
   message and in exit.json's ``limit``; removes the cgroups.
8. Writes ``exit.json`` atomically (temporary file, fsync, rename, fsync of the directory)
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

# ``typing.TYPE_CHECKING`` without importing ``typing`` (mypy knows the name).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import NoReturn

# The C module behind ``signal``; typeshed has no stubs for it, hence the untyped import.
_signal = __import__("_signal")

# ``python -I -S -c BOOTSTRAP --run-dir ...`` runs ``main`` from this file's cached bytecode.
# The directory goes last on sys.path so that nothing beside this file can shadow a stdlib
# module; the package's ``__init__`` is not imported (it may grow heavy imports).
BOOTSTRAP = (
    "import sys; sys.path.append({directory!r}); import supervisor; supervisor.run_and_exit()"
)

STDERR_TAIL_BYTES = 4096
# A line longer than this is written out unfinished rather than held back.
STDERR_LINE_LIMIT = 65536
MESSAGE_MAX_CHARS = 2048
# After the job has ended, wait at most this long for the output pipes' EOF (every writer
# has been killed, so EOF normally comes at once).
STDERR_DRAIN_SECONDS = 1.0
DEFAULT_GRACE_SECONDS = 10.0
# How long the supervisor keeps killing what the job left before it gives up and records
# the outcome anyway (a process stuck in uninterruptible sleep cannot die).
KILL_ALL_SECONDS = 5.0

OUTPUT_LOG = "output.log"
OUTPUT_INDEX = "output.idx"
# output.idx records (see OutputLog): the stream codes, shared with scheduler_service.run_log.
STDOUT_CODE = 0
STDERR_CODE = 1
CUT_CODE = 2
INDEX_RECORD_BYTES = 16
# How long indexed output may wait in memory once the job's pipes are quiet.
INDEX_SYNC_MS = 2
# How many index records the supervisor holds before writing them (see OutputLog._index).
INDEX_BATCH = 256
CLAIM_FILE = "supervisor.json"
EXIT_FILE = "exit.json"
TAIL_FILES = ("output.log.tail-a", "output.log.tail-b")

# Outcome names, shared with ``scheduler_service.run_outcome.OutcomeKind``.
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
TIMEOUT = "TIMEOUT"
STOPPED = "STOPPED"
ERROR = "ERROR"

# Limit names in exit.json's ``limit``, shared with ``scheduler_service.run_outcome``.
LIMIT_MEMORY = "memory"
LIMIT_PROCESSES = "processes"
LIMIT_FILE_SIZE = "file_size"

PR_SET_CHILD_SUBREAPER = 36
# How often a uid sweep sends kill(-1): a process forking while the kernel walks the process
# list may be missed by one round.
UID_KILL_ROUNDS = 3
# Ends a uid's lock file once its holder has made sure nothing of its run is left.
UID_CLEAN = b" clean\n"
_EFBIG_TEXT = "[Errno 27] File too large"
_EAGAIN_TEXT = "[Errno 11] Resource temporarily unavailable"

VALUE_FLAGS = (
    "--run-dir",
    "--deadline",
    "--grace",
    "--uid",
    "--gid",
    "--uid-range",
    "--uid-locks",
    "--job-dir",
    "--cgroup",
    "--memory",
    "--memory-note",
    "--memory-fallback",
    "--max-processes",
    "--max-open-files",
    "--max-file-bytes",
    "--cpu-weight",
    "--max-log-bytes",
)
REPEATABLE_FLAGS = ("--cgroup",)


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

    def __init__(
        self,
        run_dir: str,
        deadline: float | None,
        grace: float,
        argv: list[str],
        *,
        uid: int | None = None,
        gid: int | None = None,
        uid_range: tuple[int, int] | None = None,
        uid_locks: str | None = None,
        job_dir: str | None = None,
        cgroups: list[str] | None = None,
        memory: int | None = None,
        memory_note: str = "",
        memory_fallback_as: bool = False,
        max_processes: int | None = None,
        max_open_files: int | None = None,
        max_file_bytes: int | None = None,
        cpu_weight: int | None = None,
        max_log_bytes: int | None = None,
    ) -> None:
        self.run_dir = run_dir
        self.deadline = deadline
        self.grace = grace
        self.argv = argv
        self.uid = uid
        self.gid = gid
        self.uid_range = uid_range
        self.uid_locks = uid_locks
        self.job_dir = job_dir
        self.cgroups = cgroups or []
        self.memory = memory
        self.memory_note = memory_note
        self.memory_fallback_as = memory_fallback_as
        self.max_processes = max_processes
        self.max_open_files = max_open_files
        self.max_file_bytes = max_file_bytes
        self.cpu_weight = cpu_weight
        self.max_log_bytes = max_log_bytes


def _positive(values: dict[str, list[str]], flag: str) -> int | None:
    if flag not in values:
        return None
    try:
        number = int(values[flag][0])
    except ValueError:
        raise UsageError(f"{flag} needs a whole number") from None
    if number < 1:
        raise UsageError(f"{flag} must be at least 1")
    return number


def _id(values: dict[str, list[str]], flag: str) -> int | None:
    if flag not in values:
        return None
    try:
        number = int(values[flag][0])
    except ValueError:
        raise UsageError(f"{flag} needs a numeric id") from None
    if not 0 <= number < 2**32 - 1:
        raise UsageError(f"{flag} is out of range")
    return number


def parse_args(args: list[str]) -> Options:
    """Parse the command line (see the module docstring).

    Hand-rolled because ``argparse`` would double the supervisor's start-up time.

    Raises:
        UsageError: a flag is unknown, repeated (unless repeatable), lacks its value or has a
            bad one, or ARGV is empty.
    """
    values: dict[str, list[str]] = {}
    i = 0
    while i < len(args) and args[i] != "--":
        flag = args[i]
        if flag not in VALUE_FLAGS:
            raise UsageError(f"unknown flag {flag!r}")
        if flag in values and flag not in REPEATABLE_FLAGS:
            raise UsageError(f"{flag} given twice")
        if i + 1 >= len(args):
            raise UsageError(f"{flag} needs a value")
        values.setdefault(flag, []).append(args[i + 1])
        i += 2
    argv = args[i + 1 :]
    if "--run-dir" not in values:
        raise UsageError("--run-dir is required")
    if not argv:
        raise UsageError("no command after --")
    deadline: float | None = None
    raw_deadline = values.get("--deadline", ["none"])[0]
    try:
        if raw_deadline != "none":
            deadline = float(raw_deadline)
        grace = float(values.get("--grace", [DEFAULT_GRACE_SECONDS])[0])
    except ValueError as exc:
        raise UsageError(f"bad number: {exc}") from None
    if not grace >= 0:  # also rejects NaN
        raise UsageError("--grace must be a non-negative number")
    uid_range: tuple[int, int] | None = None
    if "--uid-range" in values:
        low, _, high = values["--uid-range"][0].partition("-")
        try:
            uid_range = (int(low), int(high))
        except ValueError:
            raise UsageError("--uid-range must be LOW-HIGH") from None
        if not 0 < uid_range[0] <= uid_range[1] < 2**32 - 1:
            raise UsageError("--uid-range must be LOW-HIGH with 0 < LOW <= HIGH")
        if "--uid-locks" not in values:
            raise UsageError("--uid-range needs --uid-locks")
        if "--uid" in values:
            raise UsageError("--uid and --uid-range exclude each other")
    uid, gid = _id(values, "--uid"), _id(values, "--gid")
    if uid is not None and gid is None:
        raise UsageError("--uid needs --gid")
    fallback = values.get("--memory-fallback", ["none"])[0]
    if fallback not in ("none", "as"):
        raise UsageError("--memory-fallback must be none or as")
    cpu_weight = _positive(values, "--cpu-weight")
    if cpu_weight is not None and cpu_weight > 10000:
        raise UsageError("--cpu-weight must be 1 to 10000")
    return Options(
        os.path.abspath(values["--run-dir"][0]),
        deadline,
        grace,
        argv,
        uid=uid,
        gid=gid,
        uid_range=uid_range,
        uid_locks=values.get("--uid-locks", [None])[0],
        job_dir=values.get("--job-dir", [None])[0],
        cgroups=values.get("--cgroup", []),
        memory=_positive(values, "--memory"),
        memory_note=values.get("--memory-note", [""])[0],
        memory_fallback_as=fallback == "as",
        max_processes=_positive(values, "--max-processes"),
        max_open_files=_positive(values, "--max-open-files"),
        max_file_bytes=_positive(values, "--max-file-bytes"),
        cpu_weight=cpu_weight,
        max_log_bytes=_positive(values, "--max-log-bytes"),
    )


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


def write_file(path: str, text: str, *, sync: bool, mode: int = 0o644) -> None:
    """Create or truncate ``path`` and write ``text``, fsynced if ``sync``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        write_all(fd, text.encode())
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def replace_file(path: str, text: str, *, sync: bool, mode: int = 0o644) -> None:
    """Replace ``path`` atomically: readers see the old content or the new, never a part."""
    tmp = f"{path}.{os.getpid()}.tmp"
    write_file(tmp, text, sync=sync, mode=mode)
    os.rename(tmp, path)
    if sync:
        fsync_dir(os.path.dirname(path))


def read_text(path: str) -> str | None:
    """A small file's text; None if it cannot be read."""
    try:
        with open(path, "rb") as f:
            return f.read().decode("ascii", "replace")
    except OSError:
        return None


def write_text(path: str, text: str) -> None:
    """Write a cgroup control file (one ``write``, as the kernel wants it)."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def counter(text: str | None, name: str) -> int:
    """The value of ``name N`` in a cgroup's ``memory.events``-style file; 0 if absent."""
    for line in (text or "").splitlines():
        key, _, value = line.partition(" ")
        if key == name:
            with ignore_os_errors:
                return int(value)
    return 0


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


def format_bytes(size: int) -> str:
    """``1 GB`` for 2**30, ``512 MB``, ``1.5 GB``: binary units with AWS's names."""
    for unit, scale in (("TB", 2**40), ("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if size >= scale:
            value = size / scale
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{size} bytes"


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


def last_line(tail: bytes) -> str:
    """The last non-empty line of stderr."""
    for line in reversed(tail.decode("utf-8", "replace").splitlines()):
        if line.strip():
            return line.strip()
    return ""


def _subreaper_call() -> Callable[[], bool]:
    """Build the call of ``prctl(PR_SET_CHILD_SUBREAPER, 1)``.

    ``prctl`` through ``_ctypes`` directly: the ``ctypes`` package costs 2.3 ms more to import.
    Loading ``_ctypes`` and building the types still cost ~2.5 ms of CPU, so a zygote does it
    once (``warm_up``) for every supervisor it forks.
    """
    # Untyped like ``_signal``: typeshed's stubs describe the ``ctypes`` wrappers, not this.
    _ctypes = __import__("_ctypes")

    # Classes made with type(): their bases are untyped, which a class statement rejects.
    ulong = type("c_ulong", (_ctypes._SimpleCData,), {"_type_": "L"})
    c_int = type("c_int", (_ctypes._SimpleCData,), {"_type_": "i"})
    libc = type("libc", (), {"_handle": _ctypes.dlopen(None, 0)})
    function = type(
        "function",
        (_ctypes.CFuncPtr,),
        {"_flags_": _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO, "_restype_": c_int},
    )
    prctl = function(("prctl", libc))
    args = (ulong(1), ulong(0), ulong(0), ulong(0))

    def set_subreaper() -> bool:
        return bool(prctl(PR_SET_CHILD_SUBREAPER, *args) == 0)

    return set_subreaper


# The call, once built (``warm_up``); a forked supervisor inherits it.
_subreaper: list[Callable[[], bool]] = []


def warm_up() -> None:
    """Do once, before forking supervisors, what each of them would otherwise pay for: build
    the subreaper call and import the modules only sandbox flags need (``resource``,
    ``fcntl``). Called by the zygote (``scheduler_service.zygote``); never by a launcher, which
    starts a single supervisor."""
    try:  # noqa: SIM105 - contextlib costs every launcher ~2 ms to import
        _subreaper.append(_subreaper_call())
    except Exception:  # noqa: BLE001, S110 - each supervisor's become_subreaper tries again
        pass
    for name in ("resource", "fcntl"):
        __import__(name)


def become_subreaper() -> bool:
    """Make orphaned descendants our children instead of init's; False if it failed."""
    try:
        call = _subreaper[0] if _subreaper else _subreaper_call()
        return call()
    except Exception:  # noqa: BLE001 - no subreaper is a weaker run, not a failed one
        return False


class OutputLog:
    """``output.log``, capped: the first half of the cap, a line saying what was cut, the last
    half; and its index ``output.idx``.

    The last part is kept in two files used in turn (``TAIL_FILES``), each a quarter of the
    cap, so nothing large is held in memory and writing stays sequential; ``close`` appends
    the cut line and the two tail files to the log. While the job runs, a reader sees the
    first part only.

    The log stays plain interleaved text (what people and older tools read); the index keeps
    the streams apart. It is a list of 16-byte records, one per write (coalesced while the
    same stream writes within the same millisecond): the little-endian u64 offset where the
    write ENDS in the job's whole output (as if nothing were cut), then the u64
    ``epoch_ms << 2 | stream``. One write costs one extra ``write`` of 16 bytes (a flood is
    copied in pipe-sized chunks, so that is per 64 KB, not per line). ``close`` of a cut log
    appends two CUT_CODE records: their ``end`` is where the head ends, then where the kept
    last part starts, in the whole output; both carry, in place of the time, the byte of
    output.log where the kept part starts (the cut line lies between). The index is
    capped at a quarter of the log's cap: past that, writes extend the last record (their
    lines are then attributed to its stream and time), a degradation rather than unbounded
    growth for a job making millions of tiny writes.
    """

    def __init__(self, run_dir: str, max_bytes: int | None, mode: int) -> None:
        self.path = os.path.join(run_dir, OUTPUT_LOG)
        self.run_dir = run_dir
        self.mode = mode
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, mode)
        self.max_bytes = max_bytes
        # Whatever is in the log already (nothing, normally) counts against the cap.
        self.head_left = None if max_bytes is None else max_bytes // 2 - os.fstat(self.fd).st_size
        self.chunk_bytes = 0 if max_bytes is None else max(1, max_bytes // 4)
        self.tail_fds: list[int] = []
        self.tail_sizes = [0, 0]
        self.current = 0
        self.cut = 0
        # Where the job's output has got to, as if nothing were cut (the index's offsets).
        self.written = os.fstat(self.fd).st_size
        self.index_fd = os.open(
            os.path.join(run_dir, OUTPUT_INDEX),
            os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
            mode,
        )
        self.index_size = 0
        self.index_max = None if max_bytes is None else max(4096, max_bytes // 4)
        self.last_stamp = -1
        # Records not yet in the file (see _index), from byte ``unflushed_at`` of it; the last
        # one ends at ``pending_end`` (it grows while its stream keeps writing).
        self.unflushed: list[tuple[int, int]] = []
        self.unflushed_at = 0
        self.pending_end = 0
        self.dirty = False
        if self.written:
            # Output already there (a log from before the index) is stdout from the start.
            self._index(self.written, int(os.fstat(self.fd).st_mtime * 1000) << 2 | STDOUT_CODE)

    def write(self, data: bytes, stream: int = STDOUT_CODE) -> None:
        """Append ``data`` written by ``stream``; past the first half of the cap it goes to the
        tail files."""
        self._write(data)
        self.written += len(data)
        stamp = (int(time.time() * 1000) << 2) | stream
        if stamp == self.last_stamp:
            # The common case of a flood, kept to a few attribute writes (see _index).
            self.pending_end = self.written
            self.dirty = True
            return
        with ignore_os_errors:
            self._index(self.written, stamp)

    def _index(self, end: int, stamp: int) -> None:
        """Record that the output up to ``end`` was written with ``stamp`` (time and stream).

        Records are kept in memory and written INDEX_BATCH at a time, or as soon as the
        job's pipes go quiet (``sync_index``): a flood of short lines that alternate streams
        would otherwise pay a system call per line (measured: 200k one-line writes
        alternating every line, 2.5 -> 5.9 us a write with a write per record). Same stream
        in the same millisecond (or no room left) extends the last record. A reader lags by
        INDEX_BATCH records or INDEX_SYNC_MS at most; a supervisor killed outright loses that
        much of the index (``run_log`` reads a finished run's unindexed end as its last
        stream's).
        """
        full = self.index_max is not None and self.index_size >= self.index_max
        if self.index_size and (stamp == self.last_stamp or full):
            self.pending_end = end
            self.dirty = True
            return
        if self.unflushed:
            self.unflushed[-1] = (self.pending_end, self.last_stamp)
        self.unflushed.append((end, stamp))
        self.pending_end = end
        self.last_stamp = stamp
        self.index_size += INDEX_RECORD_BYTES
        self.dirty = True
        if len(self.unflushed) >= INDEX_BATCH:
            self.sync_index()

    def sync_index(self) -> None:
        """Write the records held in memory; the last one stays held (it may still grow)."""
        if not self.dirty:
            return
        self.dirty = False
        records = self.unflushed
        records[-1] = (self.pending_end, self.last_stamp)
        data = b"".join(e.to_bytes(8, "little") + t.to_bytes(8, "little") for e, t in records)
        with ignore_os_errors:
            os.pwrite(self.index_fd, data, self.unflushed_at)
        self.unflushed_at += INDEX_RECORD_BYTES * (len(records) - 1)
        del records[:-1]

    def _write(self, data: bytes) -> None:
        with ignore_os_errors:  # a full disk loses log lines, not the run's outcome
            if self.head_left is None:
                write_all(self.fd, data)
                return
            if self.head_left > 0:
                head = data[: self.head_left]
                write_all(self.fd, head)
                self.head_left -= len(head)
                data = data[len(head) :]
            while data:
                room = self.chunk_bytes - self.tail_sizes[self.current]
                if room <= 0:
                    self._rotate()
                    continue
                self._write_tail(data[:room])
                data = data[room:]

    def _write_tail(self, piece: bytes) -> None:
        if not self.tail_fds:
            for name in TAIL_FILES:
                self.tail_fds.append(
                    os.open(
                        os.path.join(self.run_dir, name),
                        os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC,
                        self.mode,
                    )
                )
        write_all(self.tail_fds[self.current], piece)
        self.tail_sizes[self.current] += len(piece)

    def _rotate(self) -> None:
        """The current tail file is full: the other one (the oldest output) is dropped."""
        self.current ^= 1
        self.cut += self.tail_sizes[self.current]
        os.ftruncate(self.tail_fds[self.current], 0)
        os.lseek(self.tail_fds[self.current], 0, os.SEEK_SET)
        self.tail_sizes[self.current] = 0

    def close(self) -> None:
        """Append the cut line and the kept last part; remove the tail files."""
        self.sync_index()
        try:
            if self.tail_fds and self.max_bytes is not None:
                older, newer = self.current ^ 1, self.current
                # Start the kept part at a line: the cut line then stands on its own.
                skip = 0
                if self.cut:
                    first = os.pread(self.tail_fds[older], 65536, 0)
                    newline = first.find(b"\n")
                    skip = newline + 1 if 0 <= newline < len(first) - 1 else 0
                self.cut += skip
                kept = self.tail_sizes[older] + self.tail_sizes[newer] - skip
                if self.cut:
                    head_end = os.fstat(self.fd).st_size
                    line = (
                        f"\n[... {self.cut} bytes of output cut here: the log is capped at "
                        f"{format_bytes(self.max_bytes)} (--max-log-bytes); the first "
                        f"{format_bytes(self.max_bytes // 2)} and the last {kept} bytes "
                        "are kept ...]\n"
                    )
                    write_all(self.fd, line.encode())
                    # Where the head ends and the kept part starts in the whole output, both
                    # with where the kept part starts in output.log (see the class docstring).
                    stamp = ((os.fstat(self.fd).st_size << 2) | CUT_CODE).to_bytes(8, "little")
                    records = head_end.to_bytes(8, "little") + stamp
                    records += (self.written - kept).to_bytes(8, "little") + stamp
                    os.pwrite(self.index_fd, records, self.index_size)
                    self.index_size += 2 * INDEX_RECORD_BYTES
                for index, offset in ((older, skip), (newer, 0)):
                    self._copy(self.tail_fds[index], offset, self.tail_sizes[index] - offset)
        except OSError:
            pass
        finally:
            for fd in self.tail_fds:
                os.close(fd)
            if self.tail_fds:
                for name in TAIL_FILES:
                    with ignore_os_errors:
                        os.unlink(os.path.join(self.run_dir, name))
            self.tail_fds = []
            os.close(self.fd)
            os.close(self.index_fd)

    def _copy(self, fd: int, offset: int, count: int) -> None:
        while count > 0:
            chunk = os.pread(fd, min(count, 1 << 20), offset)
            if not chunk:
                return
            write_all(self.fd, chunk)
            offset += len(chunk)
            count -= len(chunk)


class Stream:
    """One of the job's output pipes, written to the log in whole lines."""

    def __init__(self, fd: int, keep_tail: bool, code: int) -> None:
        self.fd: int | None = fd
        self.keep_tail = keep_tail
        self.code = code
        self.partial = bytearray()


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
        self.log: OutputLog | None = None
        self.streams: list[Stream] = []
        self.subreaper = False
        # The job's identity: fixed (--uid), taken from --uid-range, or None (ours).
        self.uid: int | None = opts.uid
        self.gid: int | None = opts.gid
        self.uid_lock_fd: int | None = None
        # Cgroup directories this supervisor created (and removes).
        self.cgroups: list[str] = []
        self.has_memory_cgroup = False
        self.has_pids_cgroup = False
        self.rlimit_as = False
        self.kill_all_incomplete = False
        # Files only the service user may read once the job is someone else.
        self.file_mode = 0o644 if opts.uid is None and opts.uid_range is None else 0o600

    # -- entry point -------------------------------------------------------------------------

    def run(self) -> int:
        """Claim, supervise, record; the exit status is 0 unless nothing could be claimed."""
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        # Installed before the claim: a SIGTERM that arrives as soon as the claim is visible
        # must stop the job, not kill the supervisor and leave the job unsupervised.
        _signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        _signal.signal(_signal.SIGTERM, self._on_sigterm)
        # Orphans re-parented to us exit with SIGCHLD: the wakeup fd then lets us reap them.
        _signal.signal(_signal.SIGCHLD, self._on_sigchld)
        # A new session has no terminal, but a supervisor started by hand from a shell must
        # still not die with that shell.
        _signal.signal(_signal.SIGHUP, _signal.SIG_IGN)
        _signal.signal(_signal.SIGINT, _signal.SIG_IGN)
        self.subreaper = become_subreaper()
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

    def _on_sigchld(self, signum: int, frame: object) -> None:
        pass  # the wakeup fd does the work

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
        write_file(tmp, self._claim_json(), sync=True, mode=self.file_mode)
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
                "uid": self.uid,
                "gid": self.gid,
                "cgroups": self.cgroups,
                "subreaper": self.subreaper,
            }
        )

    # -- the sandbox -------------------------------------------------------------------------

    def _take_uid(self) -> str | None:
        """Take a free uid of ``--uid-range`` for this run; a message if none is free.

        The ``flock`` is the record: held as long as this process lives, released by the
        kernel however it ends. The search starts at a random uid so that a uid just given
        back is rarely the next one taken.
        """
        import fcntl  # only runs with --uid-range pay for it

        opts = self.opts
        assert opts.uid_range is not None
        assert opts.uid_locks is not None
        low, high = opts.uid_range
        count = high - low + 1
        os.makedirs(opts.uid_locks, 0o700, exist_ok=True)
        start = int.from_bytes(os.urandom(4), "little") % count
        for step in range(count):
            uid = low + (start + step) % count
            fd = os.open(
                os.path.join(opts.uid_locks, str(uid)), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600
            )
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            previous = os.pread(fd, 4096, 0)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.path.basename(opts.run_dir)} {os.getpid()}\n".encode(), 0)
            self.uid_lock_fd = fd
            self.uid = uid
            self.gid = uid if opts.gid is None else opts.gid
            if not previous.endswith(UID_CLEAN):
                # Never used, or its last holder died before it could say that nothing of its
                # run was left (a supervisor killed with -9 leaves its job running).
                self._kill_uid(uid)
            return None
        return f"all {count} uids of --run-uids {low}-{high} are taken by running runs"

    def _kill_uid(self, uid: int) -> None:
        """SIGKILL every process running as ``uid`` (a child drops to it: ``kill(-1)``)."""
        pid = os.fork()
        if pid == 0:
            try:
                os.setgroups([])
                os.setgid(self.gid if self.gid is not None else uid)
                os.setuid(uid)
                # kill(-1) reaches every process this uid may signal, except the caller;
                # repeated because a process may fork while the kernel walks the list. Its
                # result says nothing (0 whenever any other process exists, signalled or not),
                # so the rounds are counted, not ended on ESRCH.
                for _ in range(UID_KILL_ROUNDS):
                    os.kill(-1, _signal.SIGKILL)
            except BaseException:  # noqa: BLE001, S110 - nothing to report from here
                pass
            os._exit(0)
        os.waitpid(pid, 0)

    def _make_cgroups(self) -> None:
        """Create the run's cgroups and write their limits; limits a hierarchy lacks are
        skipped (each hierarchy of cgroup v1 has its own controllers)."""
        opts = self.opts
        for path in opts.cgroups:
            with ignore_os_errors:
                os.mkdir(path, 0o755)
            self.cgroups.append(path)
            if opts.memory is not None:
                if os.path.exists(os.path.join(path, "memory.limit_in_bytes")):  # v1
                    write_text(os.path.join(path, "memory.limit_in_bytes"), str(opts.memory))
                    with ignore_os_errors:  # no swap accounting: nothing to cap
                        write_text(
                            os.path.join(path, "memory.memsw.limit_in_bytes"), str(opts.memory)
                        )
                    self.has_memory_cgroup = True
                elif os.path.exists(os.path.join(path, "memory.max")):  # v2
                    write_text(os.path.join(path, "memory.max"), str(opts.memory))
                    with ignore_os_errors:
                        write_text(os.path.join(path, "memory.swap.max"), "0")
                    self.has_memory_cgroup = True
            if opts.max_processes is not None and os.path.exists(os.path.join(path, "pids.max")):
                write_text(os.path.join(path, "pids.max"), str(opts.max_processes))
                self.has_pids_cgroup = True
            if opts.cpu_weight is not None:
                if os.path.exists(os.path.join(path, "cpu.shares")):  # v1: 1024 is the default
                    write_text(os.path.join(path, "cpu.shares"), str(opts.cpu_weight * 1024 // 100))
                elif os.path.exists(os.path.join(path, "cpu.weight")):  # v2: 100 is the default
                    write_text(os.path.join(path, "cpu.weight"), str(opts.cpu_weight))

    def _rlimits(self) -> list[tuple[int, int]]:
        """The (resource, value) pairs the job gets; imports ``resource`` only if needed."""
        opts = self.opts
        wanted: list[tuple[str, int]] = []
        if opts.max_open_files is not None:
            wanted.append(("RLIMIT_NOFILE", opts.max_open_files))
        if opts.max_file_bytes is not None:
            wanted.append(("RLIMIT_FSIZE", opts.max_file_bytes))
        # RLIMIT_NPROC counts every process of the uid: a limit per run only with a uid per run
        # (with a shared uid it would count other runs', and make exec fail with EAGAIN).
        if opts.max_processes is not None and opts.uid_range is not None:
            wanted.append(("RLIMIT_NPROC", opts.max_processes))
        # Without a memory cgroup, a pythonshell job's memory is capped by its address space
        # (never a JVM's: it reserves far more address space than it uses).
        if opts.memory is not None and opts.memory_fallback_as and not self.has_memory_cgroup:
            wanted.append(("RLIMIT_AS", opts.memory))
            self.rlimit_as = True
        if not wanted:
            return []
        import resource  # 0.2 ms, only when a limit is asked for

        limits = []
        for name, value in wanted:
            which = getattr(resource, name)
            # Raising a hard limit needs CAP_SYS_RESOURCE, which root in a container may lack:
            # a lower limit of the service's own stays.
            hard = resource.getrlimit(which)[1]
            if hard != resource.RLIM_INFINITY:
                value = min(value, hard)
            limits.append((which, value))
        return limits

    def _hand_job_dir(self, uid: int, gid: int) -> None:
        """Give the job its working directory (0700), and what the scheduler put there."""
        job_dir = self.opts.job_dir
        assert job_dir is not None
        os.makedirs(job_dir, 0o700, exist_ok=True)
        os.chown(job_dir, uid, gid, follow_symlinks=False)
        os.chmod(job_dir, 0o700, follow_symlinks=False)
        for entry in os.scandir(job_dir):
            os.chown(entry.path, uid, gid, follow_symlinks=False)

    def _take_back_job_dir(self) -> None:
        """Make the job directory the service's again: a later run given the same uid must not
        read this run's files."""
        if self.opts.job_dir is None or self.uid is None:
            return
        with ignore_os_errors:
            os.chown(self.opts.job_dir, os.getuid(), os.getgid(), follow_symlinks=False)
            os.chmod(self.opts.job_dir, 0o700, follow_symlinks=False)

    # -- supervision -------------------------------------------------------------------------

    def _supervise(self, wake_r: int) -> None:
        opts = self.opts
        self.log = OutputLog(opts.run_dir, opts.max_log_bytes, self.file_mode)
        self.started_at = time.time()
        setup_error: str | None = None
        try:
            if opts.uid_range is not None:
                setup_error = self._take_uid()
            if setup_error is None:
                self._make_cgroups()
                if opts.job_dir is not None and self.uid is not None and self.gid is not None:
                    self._hand_job_dir(self.uid, self.gid)
        except OSError as exc:
            setup_error = f"cannot set up the run's sandbox: {exc}"
        if setup_error is not None:
            self._end_setup_failure(setup_error)
            return
        rlimits = self._rlimits()
        started = self._start_job(rlimits)
        if isinstance(started, str):
            self._end_setup_failure(started)
            return
        pid = self.job_pid = started
        # The leader stays a zombie until we reap it, so the pidfd cannot refer to another
        # process and the process group id stays ours until then.
        pidfd = os.pidfd_open(pid)
        # Lets a restarted scheduler that finds this supervisor dead kill an orphaned job.
        replace_file(
            self.claim_path, self._claim_json(proc_start_time(pid)), sync=False, mode=self.file_mode
        )
        self._report(f"started {pid}")

        reason, killed = self._wait_for_exit(pidfd, wake_r)
        # What the limits saw, read before the clean-up below touches the counters.
        counters = self._limit_counters()
        self._kill_everything()
        _, status = os.waitpid(pid, 0)
        self.job_reaped = True
        ended_at = time.time()
        self._kill_uid_leftovers()
        os.close(pidfd)
        self._drain()
        self._remove_cgroups()
        self._take_back_job_dir()

        exit_code = os.waitstatus_to_exitcode(status)
        code = exit_code if exit_code >= 0 else None
        signum = -exit_code if exit_code < 0 else None
        limit: dict[str, object] | None = None
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
            limit = self._limit_hit(counters, code, signum)
            if limit is not None:
                message = str(limit["message"]) + (
                    f"\n{stderr_message(bytes(self.tail))}" if self.tail.strip() else ""
                )
        if self.kill_all_incomplete:
            note = (
                f"some of the job's processes were still alive {KILL_ALL_SECONDS:g} s after SIGKILL"
            )
            message = f"{message}\n({note})" if message else f"({note})"
        self._write_exit(
            kind,
            exit_code=code,
            signum=signum,
            message=message[: MESSAGE_MAX_CHARS * 2],
            ended_at=ended_at,
            limit=limit,
        )

    def _end_setup_failure(self, message: str) -> None:
        self._kill_everything()
        self._remove_cgroups()
        self._take_back_job_dir()
        self._close_streams()
        if self.log is not None:
            self.log.close()
            self.log = None
        self._write_exit(ERROR, message=message, ended_at=time.time())
        self._report(f"error {message}")

    def _start_job(self, rlimits: list[tuple[int, int]]) -> int | str:
        """Fork and exec the job; its pid, or a message saying why it did not start."""
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        report_r, report_w = os.pipe()
        devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        # cgroup v1: the child writes "0" (itself) to ``tasks``. Moving one thread that is the
        # writer skips the global lock a ``cgroup.procs`` write takes, whose RCU grace period
        # cost ~12 ms per run (measured; the child has one thread, so the thread is the
        # process). v2 has no ``tasks``.
        procs_files = [
            os.path.join(path, "tasks")
            if os.path.exists(os.path.join(path, "tasks"))
            else os.path.join(path, "cgroup.procs")
            for path in self.cgroups
        ]
        try:
            pid = os.fork()
            if pid == 0:  # the child: never returns
                self._exec_job(procs_files, rlimits, devnull, out_w, err_w, report_w)
            os.close(report_w)
            report_w = -1
            # Also set here: a signal sent right after fork must reach the new group.
            with ignore_os_errors:
                os.setpgid(pid, pid)
            # EOF when exec succeeds (the pipe is close-on-exec); the reason when it fails.
            failure = b""
            while chunk := os.read(report_r, 4096):
                failure += chunk
        finally:
            for fd in (out_w, err_w, report_r, report_w, devnull):
                if fd >= 0:
                    os.close(fd)
        self.streams = [
            Stream(out_r, keep_tail=False, code=STDOUT_CODE),
            Stream(err_r, keep_tail=True, code=STDERR_CODE),
        ]
        if failure:
            os.waitpid(pid, 0)
            self._close_streams()
            return failure.decode("utf-8", "replace")
        return pid

    def _exec_job(
        self,
        procs_files: list[str],
        rlimits: list[tuple[int, int]],
        devnull: int,
        out_w: int,
        err_w: int,
        report_w: int,
    ) -> None:
        """In the forked child: join the sandbox, become the job's user, exec ARGV."""
        step = "cannot start the job"
        try:
            _signal.set_wakeup_fd(-1)
            # Dispositions we (or Python) set would survive exec; SIGXFSZ must kill the job.
            for signum in (
                _signal.SIGPIPE, _signal.SIGXFSZ, _signal.SIGHUP, _signal.SIGINT,
                _signal.SIGTERM, _signal.SIGCHLD,
            ):  # fmt: skip
                _signal.signal(signum, _signal.SIG_DFL)
            os.setpgid(0, 0)
            step = "cannot move the job into its cgroup"
            for path in procs_files:
                write_text(path, "0")
            step = "cannot set the job's resource limits"
            if rlimits:
                import resource  # already imported by the parent

                for which, value in rlimits:
                    resource.setrlimit(which, (value, value))
            os.dup2(devnull, 0)
            os.dup2(out_w, 1)
            os.dup2(err_w, 2)
            if self.uid is not None and self.gid is not None:
                step = f"cannot switch to uid {self.uid} gid {self.gid}"
                os.setgroups([])
                os.setgid(self.gid)
                os.setuid(self.uid)
            step = f"cannot execute {self.opts.argv[0]}"
            os.execvpe(self.opts.argv[0], self.opts.argv, os.environ)
        except BaseException as exc:  # noqa: BLE001 - whatever it is, the parent hears of it
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            with ignore_os_errors:
                os.write(report_w, f"{step}: {detail}".encode("utf-8", "replace"))
        os._exit(127)

    def _wait_for_exit(self, pidfd: int, wake_r: int) -> tuple[str | None, bool]:
        """Copy output until the job's main process exits; stop it on SIGTERM or deadline.

        Returns:
            The reason the job was stopped (STOPPED, TIMEOUT or None) and whether SIGKILL
            was needed.
        """
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        poller.register(wake_r, select.POLLIN)
        by_fd: dict[int, Stream] = {}
        for stream in self.streams:
            if stream.fd is not None:
                poller.register(stream.fd, select.POLLIN)
                by_fd[stream.fd] = stream
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
            log = self.log
            if log is not None and log.dirty:
                # Output is waiting to be indexed: do it as soon as the pipes go quiet.
                timeout_ms = INDEX_SYNC_MS if timeout_ms < 0 else min(timeout_ms, INDEX_SYNC_MS)
            exited = False
            events = poller.poll(timeout_ms)
            if not events and log is not None:
                log.sync_index()
            for fd, _ in events:
                if fd == pidfd:
                    exited = True
                elif fd == wake_r:
                    with ignore_os_errors:
                        os.read(wake_r, 512)
                    self._reap_orphans()
                elif fd in by_fd and not self._pump(by_fd[fd]):
                    poller.unregister(fd)
                    del by_fd[fd]
            if exited:
                return reason, killed

    def _pump(self, stream: Stream) -> bool:
        """Copy one chunk of a pipe to the log (and stderr's to the tail); False at EOF."""
        assert stream.fd is not None
        try:
            chunk = os.read(stream.fd, 65536)
        except OSError:
            chunk = b""
        if not chunk:
            self._write_log(bytes(stream.partial), stream.code)
            stream.partial.clear()
            os.close(stream.fd)
            stream.fd = None
            return False
        if stream.keep_tail:
            self.tail += chunk
            del self.tail[:-STDERR_TAIL_BYTES]
        # Written in whole lines: a line written in pieces (print() writes text and newline
        # separately) is not split by a line of the other stream landing in between.
        if not stream.partial and chunk.endswith(b"\n"):
            self._write_log(chunk, stream.code)  # the common case, without copies (a flood's cost)
            return True
        stream.partial += chunk
        end = stream.partial.rfind(b"\n") + 1
        if end == 0 and len(stream.partial) >= STDERR_LINE_LIMIT:
            end = len(stream.partial)
        if end:
            self._write_log(bytes(stream.partial[:end]), stream.code)
            del stream.partial[:end]
        return True

    def _write_log(self, data: bytes, stream: int) -> None:
        if data and self.log is not None:
            self.log.write(data, stream)

    def _drain(self) -> None:
        """Copy what the job left in its pipes, up to their EOF or a short limit; close the
        log."""
        poller = select.poll()
        by_fd = {s.fd: s for s in self.streams if s.fd is not None}
        for fd in by_fd:
            poller.register(fd, select.POLLIN)
        until = time.monotonic() + STDERR_DRAIN_SECONDS
        try:
            while by_fd and (left := until - time.monotonic()) > 0:
                for fd, _ in poller.poll(int(left * 1000) + 1):
                    if fd in by_fd and not self._pump(by_fd[fd]):
                        poller.unregister(fd)
                        del by_fd[fd]
        finally:
            for stream in self.streams:
                if stream.fd is not None:
                    self._write_log(bytes(stream.partial), stream.code)
            self._close_streams()
            if self.log is not None:
                self.log.close()
                self.log = None

    def _close_streams(self) -> None:
        for stream in self.streams:
            if stream.fd is not None:
                os.close(stream.fd)
                stream.fd = None

    def _killpg(self, signum: int) -> None:
        if self.job_pid is None or self.job_reaped:
            return
        with ignore_os_errors:  # the group is already gone
            os.killpg(self.job_pid, signum)

    # -- ending all of it --------------------------------------------------------------------

    def _children(self) -> list[int]:
        """Our children (the job's leader and every orphan of the job), zombies included."""
        me = os.getpid()
        text = read_text(f"/proc/{me}/task/{me}/children")
        if text is not None:
            return [int(pid) for pid in text.split()]
        # Kernels without CONFIG_PROC_CHILDREN: scan every process's parent.
        children = []
        for name in os.listdir("/proc"):
            if name.isdigit():
                stat = read_text(f"/proc/{name}/stat")
                if stat and int(stat[stat.rindex(")") + 2 :].split()[1]) == me:
                    children.append(int(name))
        return children

    def _reap_orphans(self) -> None:
        """Reap exited orphans of the job (never the job's leader: the pidfd watches it)."""
        while True:
            try:
                found = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return
            if found is None or found.si_pid == self.job_pid:
                return
            with ignore_os_errors:
                os.waitpid(found.si_pid, 0)

    def _cgroup_pids(self) -> set[int]:
        pids: set[int] = set()
        for path in self.cgroups:
            text = read_text(os.path.join(path, "cgroup.procs"))
            if text:
                pids.update(int(pid) for pid in text.split())
        return pids

    def _kill_everything(self) -> None:
        """SIGKILL every process of the run until none is left (see step 6)."""
        self._killpg(_signal.SIGKILL)
        for path in self.cgroups:
            # No fork succeeds any more, so the list of processes only shrinks.
            with ignore_os_errors:
                write_text(os.path.join(path, "pids.max"), "0")
            with ignore_os_errors:  # cgroup v2 (5.14+): the kernel kills them all at once
                write_text(os.path.join(path, "cgroup.kill"), "1")
        give_up = time.monotonic() + KILL_ALL_SECONDS
        pause = 0.0005
        me = os.getpid()
        while True:
            live = self._cgroup_pids()
            for pid in self._children():
                if pid == self.job_pid:
                    continue
                # A zombie child is reaped here; a live one is killed and reaped next round.
                try:
                    done, _ = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    done = pid
                if not done:
                    live.add(pid)
            live.discard(me)
            if self.job_pid is not None:
                live.discard(self.job_pid)
            if not live:
                break
            if time.monotonic() > give_up:
                self.kill_all_incomplete = True
                break
            for pid in live:
                with ignore_os_errors:
                    os.kill(pid, _signal.SIGKILL)
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def _kill_uid_leftovers(self) -> None:
        """With a uid of its own, make sure nothing of the run's uid is left, and say so in
        the uid's lock file (the next holder then needs no sweep of its own).

        With a pids cgroup nothing can be left: every process of the job was in it (only
        root may move a process out) and is dead. Without, the subreaper caught whatever
        left the job's tree, and a sweep of the uid (a fork, ~1 ms) makes sure.
        """
        if self.uid is None or self.opts.uid_range is None or self.uid_lock_fd is None:
            return
        if not self.has_pids_cgroup or self.kill_all_incomplete:
            self._kill_uid(self.uid)
        with ignore_os_errors:
            fd = self.uid_lock_fd
            os.pwrite(fd, os.pread(fd, 4096, 0).rstrip(b"\n") + UID_CLEAN, 0)

    def _remove_cgroups(self) -> None:
        for path in self.cgroups:
            for _ in range(50):
                try:
                    os.rmdir(path)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)  # EBUSY: a killed task is still leaving

    # -- the outcome -------------------------------------------------------------------------

    def _limit_counters(self) -> dict[str, int]:
        """The cgroups' limit counters: OOM kills and refused forks."""
        found = {"oom_kill": 0, "under_oom": 0, "pids_max": 0}
        for path in self.cgroups:
            v1 = read_text(os.path.join(path, "memory.oom_control"))
            if v1 is not None:
                found["oom_kill"] += counter(v1, "oom_kill")
                found["under_oom"] += counter(v1, "under_oom")
            found["oom_kill"] += counter(read_text(os.path.join(path, "memory.events")), "oom_kill")
            found["pids_max"] += counter(read_text(os.path.join(path, "pids.events")), "max")
        return found

    def _limit_hit(
        self, counters: dict[str, int], code: int | None, signum: int | None
    ) -> dict[str, object] | None:
        """Which limit ended a failed run, with the message naming it; None if none did."""
        opts = self.opts
        last = last_line(bytes(self.tail))
        if opts.memory is not None and (
            counters["oom_kill"] > 0
            or counters["under_oom"] > 0
            or ((self.has_memory_cgroup or self.rlimit_as) and last.startswith("MemoryError"))
        ):
            note = f" ({opts.memory_note})" if opts.memory_note else ""
            how = (
                "the kernel's out-of-memory killer ended it"
                if counters["oom_kill"] or counters["under_oom"]
                else "an allocation failed (MemoryError)"
            )
            return {
                "name": LIMIT_MEMORY,
                "value": opts.memory,
                "message": f"The job exceeded its {format_bytes(opts.memory)} memory limit"
                f"{note}: {how}.",
            }
        if opts.max_processes is not None and (
            counters["pids_max"] > 0 or (opts.uid_range is not None and _EAGAIN_TEXT in last)
        ):
            return {
                "name": LIMIT_PROCESSES,
                "value": opts.max_processes,
                "message": f"The job reached its {opts.max_processes}-process limit "
                "(processes and threads; --max-run-processes): a fork failed.",
            }
        if opts.max_file_bytes is not None and (
            # Killed by SIGXFSZ; a shell reporting so (128 + signal); Python, which ignores
            # SIGXFSZ, failing with EFBIG.
            signum == _signal.SIGXFSZ or code == 128 + _signal.SIGXFSZ or _EFBIG_TEXT in last
        ):
            return {
                "name": LIMIT_FILE_SIZE,
                "value": opts.max_file_bytes,
                "message": "The job tried to write a file beyond its "
                f"{format_bytes(opts.max_file_bytes)} file-size limit (--max-run-file-bytes).",
            }
        return None

    def _write_exit(
        self,
        kind: str,
        *,
        message: str,
        ended_at: float,
        exit_code: int | None = None,
        signum: int | None = None,
        limit: dict[str, object] | None = None,
    ) -> None:
        record = {
            "outcome": kind,
            "exit_code": exit_code,
            "signal": signum,
            "signal_name": signal_name(signum) if signum is not None else None,
            "message": message,
            "limit": None if limit is None else {"name": limit["name"], "value": limit["value"]},
            "started_at": self.started_at,
            "ended_at": ended_at,
            "job_pid": self.job_pid,
            "supervisor_pid": os.getpid(),
            "uid": self.uid,
        }
        replace_file(self.exit_path, to_json(record) + "\n", sync=True, mode=self.file_mode)

    def _fail(self, exc: BaseException) -> None:
        message = f"the supervisor failed: {type(exc).__name__}: {exc}"
        try:
            self._kill_everything()
            if self.job_pid is not None and not self.job_reaped:
                os.waitpid(self.job_pid, 0)
                self.job_reaped = True
            self._kill_uid_leftovers()
        except OSError:
            pass
        try:
            self._remove_cgroups()
            self._write_exit(ERROR, message=message, ended_at=time.time())
        finally:
            self._report(f"error {message}")


def main(args: list[str] | None = None, *, orphan: bool = True) -> int:
    """Run the supervisor; see the module docstring for the protocol.

    ``orphan`` False: the caller is already nobody's handle (a zygote's child), so step 1's
    fork is skipped.
    """
    try:
        opts = parse_args(sys.argv[1:] if args is None else args)
    except UsageError as exc:
        report(f"error usage: {exc}")
        return 2
    if orphan:
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
    _exit(main())


def run_forked_and_exit() -> None:
    """Entry point in a zygote's child (``scheduler_service.zygote``): ``main`` without the
    orphaning fork - the zygote holds no handle on its children and never waits for them, so
    the child can be the supervisor itself, one fork of a Python process fewer per run."""
    _exit(main(orphan=False))


def _exit(code: int) -> NoReturn:
    """Exit without interpreter teardown (nothing is left open)."""
    with ignore_os_errors:
        sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run_and_exit()
