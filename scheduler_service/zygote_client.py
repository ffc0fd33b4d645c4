"""The scheduler's end of the supervisor zygote; ``scheduler_service.zygote`` is the zygote.

A scheduler opens a zygote (``ProcessRunner.start_zygote``): one long-lived ``python -I -S``
process of its own, in its own session, with the supervisor already imported, that forks a
launcher-equivalent process per run on a request over a socketpair, instead of an interpreter
start per run (~17-21 ms of CPU). A zygote that died is replaced at the next launch; one that
cannot start leaves the launcher (see ``scheduler_service.runner``).

This module starts the zygote, hands it launch requests over the socketpair and reads each
launch's status line (also for the launcher, ``ProcessRunner._launch_process``).
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from scheduler_service import supervisor as _sv
from scheduler_service import zygote as _zygote

_ZYGOTE_BOOTSTRAP = _zygote.ZYGOTE_BOOTSTRAP.format(
    directory=str(Path(_sv.__file__).resolve().parent)
)
# How long the zygote may take to start and say it is ready (an interpreter start: ~20 ms).
ZYGOTE_START_TIMEOUT_SECONDS = 10.0
# After the zygote failed to start, runs use the launcher this long before it is tried again.
ZYGOTE_RETRY_SECONDS = 30.0
# How long closing waits for the zygote to exit on its socket's EOF before killing it.
ZYGOTE_EXIT_SECONDS = 5.0

log = logging.getLogger(__name__)


# Zygote and launcher waits resolve through this (a pidfd or a pipe became readable).
def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


@dataclass(frozen=True, slots=True)
class LaunchStatus:
    """What a launch's status pipe gave: the line (without its newline), or what it ended with."""

    line: bytes
    eof: bool
    """The pipe closed without a line: no process of the launch holds it any more."""


class Zygote:
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
            async with asyncio.timeout(ZYGOTE_START_TIMEOUT_SECONDS):
                ready = await loop.sock_recv(ours, 64)
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

    async def launch(self, request: bytes, log_fd: int, timeout: float) -> LaunchStatus | None:
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
                return await read_status(read_fd, timeout)
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


async def read_status(fd: int, timeout: float) -> LaunchStatus:
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
                    return LaunchStatus(bytes(received), eof=True)
                received += chunk
                if b"\n" in received:
                    return LaunchStatus(bytes(received).partition(b"\n")[0], eof=False)
    except TimeoutError:
        return LaunchStatus(bytes(received), eof=False)
