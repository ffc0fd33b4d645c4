"""The supervisor zygote: an already-started interpreter that forks each run's supervisor.

Usage (``scheduler_service.zygote_client`` is the only caller; see ``ZYGOTE_BOOTSTRAP``)::

    python -I -S -c ZYGOTE_BOOTSTRAP FD

Starting a supervisor the plain way (``python -I -S -c BOOTSTRAP ...``: the *launcher*) costs
an interpreter start and the import of ``supervisor`` for every run, ~17-21 ms of CPU, more
than the supervisor's own work. A scheduler process therefore keeps one of these: started
once, in a session of its own, with ``supervisor`` already imported, connected to the
scheduler by a ``SOCK_SEQPACKET`` socketpair (fd ``FD``). For every launch the scheduler sends
one message - the launcher's arguments, environment, working directory and umask - with, by
``SCM_RIGHTS``, the write end of the pipe for the supervisor's status line and the
``supervisor.log`` file. The zygote forks a child that becomes the process the launcher's
supervisor would have been (its own session, stdin ``/dev/null``, stdout the status pipe,
stderr the log, the umask, working directory and environment asked for, the locale a fresh
interpreter would pick, ``sys.argv``) and runs the supervisor in it. A launcher forks once
more so that the supervisor is no child of the scheduler's; the zygote's child needs no such
fork - the zygote never waits for it or holds a handle on it (a SIGCHLD handler reaps it
when it exits) - so a run costs one fork of a Python process fewer. The only difference left is
that this supervisor leads its session (a launcher's session leader has exited); it opens no
terminal, so it never gets a controlling one. Everything after - the claim, the subreaper,
the sandbox, exit.json - is the supervisor's unchanged code.

The zygote holds no run: its children outlive it, re-parented like the launcher's
supervisors, so it can die at any time (its scheduler then starts another, or falls back to
the launcher).
It exits when the scheduler's end of the socket closes, which the kernel does however the
scheduler ends (``kill -9`` included); the runs go on.

Imports are few and C-level, like ``supervisor``'s: every page the zygote holds is copied
into page tables at each fork.
"""

from __future__ import annotations

import _socket
import gc
import os
import sys

# ``typing.TYPE_CHECKING`` without importing ``typing`` (mypy knows the name).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

# The C module behind ``signal``; typeshed has no stubs for it, hence the untyped import.
_signal = __import__("_signal")

# ``python -I -S -c ZYGOTE_BOOTSTRAP FD``: both modules from their cached bytecode, found last
# on sys.path like the launcher's ``BOOTSTRAP`` (the package's ``__init__`` is not imported).
ZYGOTE_BOOTSTRAP = (
    "import sys; sys.path.append({directory!r}); import supervisor, zygote; "
    "supervisor.warm_up(); zygote.serve_and_exit(int(sys.argv[1]), supervisor.run_forked_and_exit)"
)
READY = b"ready"
# The largest request: arguments and environment (the scheduler uses the launcher for more).
MAX_REQUEST_BYTES = 65536
# One request's file descriptors: the status pipe's write end and supervisor.log.
REQUEST_FDS = 2
_FD_BYTES = 4
# A fresh interpreter in the C locale switches LC_CTYPE to the first of these it can use, and
# exports it (PEP 538): the job of a launcher-started supervisor inherits it.
_COERCION_TARGETS = ("C.UTF-8", "C.utf8", "UTF-8")


def encode_request(args: list[str], env: dict[str, str], cwd: str, umask: int) -> bytes | None:
    """The message for one launch; None if it cannot be one (a NUL, a key with ``=``, too big).

    Fields are NUL-separated bytes (none of them can hold a NUL: the kernel's ``execve`` could
    not pass it either): the umask in octal, the working directory, the number of arguments,
    the arguments, then ``KEY=VALUE`` per variable.
    """
    fields = [f"{umask:o}", cwd, str(len(args)), *args]
    fields.extend(f"{key}={value}" for key, value in env.items())
    if any("\0" in field for field in fields) or any("=" in key or not key for key in env):
        return None
    data = b"\0".join(os.fsencode(field) for field in fields)
    return data if len(data) <= MAX_REQUEST_BYTES else None


def serve_and_exit(fd: int, enter_supervisor: Callable[[], None]) -> None:
    """Entry point: serve launches on the socket ``fd`` until it closes, then exit."""
    code = serve(fd, enter_supervisor)
    os._exit(code)


def serve(fd: int, enter_supervisor: Callable[[], None]) -> int:
    """Fork one launcher per request received on ``fd``; return when the scheduler is gone."""
    _close_fds_but((0, 1, 2, fd))
    # Whatever the scheduler's thread blocked must not stay blocked in every supervisor.
    _signal.pthread_sigmask(_signal.SIG_SETMASK, ())
    sock = _socket.socket(fileno=fd)
    sock.setblocking(True)
    # The zygote's children are the supervisors: it never waits for one, but reaps each as it
    # exits (their CPU time then counts as the zygote's children's, as a launcher's would).
    _signal.signal(_signal.SIGCHLD, _reap_children)
    # Pages untouched after the fork stay shared with every child (no copy-on-write for the
    # collector's bookkeeping).
    gc.freeze()
    try:
        sock.send(READY)
    except OSError:
        return 0
    ancillary = _socket.CMSG_SPACE(REQUEST_FDS * _FD_BYTES)
    while True:
        try:
            data, ancdata, flags, _ = sock.recvmsg(MAX_REQUEST_BYTES + 1, ancillary)
        except OSError:
            return 0
        fds = [
            int.from_bytes(payload[i : i + _FD_BYTES], sys.byteorder)
            for level, kind, payload in ancdata
            if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS
            for i in range(0, len(payload) - len(payload) % _FD_BYTES, _FD_BYTES)
        ]
        if not data and not fds:
            return 0  # EOF: the scheduler closed its end or died
        try:
            if len(fds) != REQUEST_FDS or flags & (_socket.MSG_TRUNC | _socket.MSG_CTRUNC):
                if fds:
                    _say(fds[0], "error the supervisor zygote received a malformed request")
                continue
            _fork_launcher(sock, data, fds[0], fds[1], enter_supervisor)
        finally:
            for received in fds:
                _close(received)


def _fork_launcher(
    sock: _socket.socket,
    data: bytes,
    status_fd: int,
    log_fd: int,
    enter_supervisor: Callable[[], None],
) -> None:
    try:
        pid = os.fork()
    except OSError as exc:
        _say(status_fd, f"error cannot start the run's supervisor: {exc}")
        return
    if pid == 0:
        _become_launcher(sock, data, status_fd, log_fd, enter_supervisor)


def _become_launcher(
    sock: _socket.socket,
    data: bytes,
    status_fd: int,
    log_fd: int,
    enter_supervisor: Callable[[], None],
) -> None:
    """In the forked child: become the launcher's process, then run the supervisor's entry
    point. Never returns."""
    report_fd = status_fd
    try:
        # The supervisor's children are its own to wait for.
        _signal.signal(_signal.SIGCHLD, _signal.SIG_DFL)
        # No supervisor may hold the scheduler's connection (its EOF ends the zygote).
        sock.close()
        fields = data.split(b"\0")
        umask, cwd, count = int(fields[0], 8), fields[1], int(fields[2])
        args = [os.fsdecode(arg) for arg in fields[3 : 3 + count]]
        env = fields[3 + count :]
        os.setsid()  # as the launcher's start_new_session
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(status_fd, 1)
        os.dup2(log_fd, 2)
        report_fd = 1
        for fd in (null, status_fd, log_fd):
            _close(fd)
        os.umask(umask)
        os.chdir(cwd)
        os.environ.clear()
        for entry in env:
            key, _, value = entry.partition(b"=")
            os.environ[os.fsdecode(key)] = os.fsdecode(value)
        _locale_as_at_start()
        sys.argv = ["-c", *args]
    except BaseException as exc:  # noqa: BLE001 - the scheduler gets one line, as from a launcher
        _say(report_fd, f"error cannot start the run's supervisor: {exc}")
        os._exit(1)
    enter_supervisor()
    os._exit(1)  # not reached: the entry point exits


def _locale_as_at_start() -> None:
    """Set LC_CTYPE from the new environment as a fresh interpreter does at start, including
    PEP 538's coercion of the C locale (which also exports ``LC_CTYPE`` to the job)."""
    _locale = __import__("_locale")  # built in; untyped like ``_signal``
    try:
        current = _locale.setlocale(_locale.LC_CTYPE, "")
    except _locale.Error:
        current = _locale.setlocale(_locale.LC_CTYPE, "C")
    if current != "C" or os.environ.get("LC_ALL"):
        return
    for target in _COERCION_TARGETS:
        try:
            _locale.setlocale(_locale.LC_CTYPE, target)
        except _locale.Error:
            continue
        os.environ["LC_CTYPE"] = target
        return


# try/except rather than contextlib.suppress: every module the zygote imports is mapped into
# every process it forks.


def _reap_children(signum: int, frame: object) -> None:
    """SIGCHLD: reap every child that has exited (the blocked ``recvmsg`` is then resumed)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _say(fd: int, line: str) -> None:
    """Write a status line for the scheduler (it may be gone: ignored)."""
    try:  # noqa: SIM105
        os.write(fd, (line.replace("\n", " ") + "\n").encode("utf-8", "replace"))
    except OSError:
        pass


def _close(fd: int) -> None:
    try:  # noqa: SIM105
        os.close(fd)
    except OSError:
        pass


def _close_fds_but(keep: tuple[int, ...]) -> None:
    """Close every inherited descriptor but ``keep``: a supervisor must hold none of the
    scheduler's (a listening socket, a database connection) that a C library left inheritable."""
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return
    for name in names:
        fd = int(name)
        if fd not in keep:
            _close(fd)
