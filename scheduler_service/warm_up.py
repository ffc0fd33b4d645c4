"""ArchiveWarmUp: the scheduler's one background run that writes the class-data archive.

When a glueetl launch finds no archive for its Spark and JDK (``LaunchPlan.archive_missing``),
the executor asks for a warm-up (``request``) and the run goes on without the archive. The
warm-up, if this scheduler runs none and can claim the archive (``class_archive``), is
``runtime/class_archive_warmup.py`` planned like a run (``commands.plan_warm_up``) in a temporary
directory, started as the scheduler's own user, at the lowest CPU priority (nice 19) in a
session of its own; its driver JVM writes the archive when it exits, and a complete one is
renamed into place at once. One object on the scheduler app's exit stack owns it: closing it
kills the warm-up's whole session (its process group, and PySpark's worker daemon, which makes
a process group of its own), and removes its partial ``.tmp`` and its claim, so the next
scheduler to start tries again. A warm-up that fails keeps its claim for an hour
(``class_archive.CLAIM_TTL_S``): a failing one is not retried at every launch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from scheduler_service.class_archive import finish_writing, release_claim
from scheduler_service.commands import CommandSettings, plan_warm_up
from scheduler_service.runner import LaunchError

log = logging.getLogger(__name__)

# Lowers its own priority (by argv[1]), then becomes the warm-up's spark-submit: set before the
# first fork, the niceness is inherited by the whole tree (JVM, Python driver, Python workers).
_NICE_EXEC = "import os, sys; os.nice(int(sys.argv[1])); os.execv(sys.argv[2], sys.argv[2:])"
# The scheduler's warm-up yields the CPU to every run.
LOWEST_PRIORITY = 19
# The last lines of a failed warm-up's output that go to the log.
_TAIL_CHARS = 2000


class ArchiveWarmUp:
    """Starts at most one warm-up at a time, and kills it on ``close``."""

    def __init__(self, commands: CommandSettings, *, niceness: int = LOWEST_PRIORITY) -> None:
        """Args:
        commands: How runs are planned (the warm-up is planned like one).
        niceness: Added to the warm-up's CPU niceness; 0 when nothing else is to go first
            (the test suite writes its archive before any run).
        """
        self._commands = commands
        self._niceness = niceness
        self._task: asyncio.Task[bool] | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._closed = False

    @property
    def process_group(self) -> int | None:
        """The running warm-up's process group (its session leader's pid); None: none runs."""
        process = self._process
        return process.pid if process is not None and process.returncode is None else None

    def request(self) -> None:
        """Start a warm-up in the background unless one is running (called on the loop)."""
        if self._closed or (self._task is not None and not self._task.done()):
            return
        self._task = asyncio.get_running_loop().create_task(self._warm_up())

    async def wait(self) -> bool:
        """Wait for the warm-up under way, if any; whether it wrote an archive."""
        return await asyncio.shield(self._task) if self._task is not None else False

    async def close(self) -> None:
        """Kill a running warm-up (every process of its session) and wait for its task."""
        self._closed = True
        process = self._process
        if process is not None and process.returncode is None:
            # Its members first, while the leader (unreaped) keeps the session id from reuse.
            await asyncio.to_thread(_kill_session, process.pid)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def _warm_up(self) -> bool:
        work = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="glue-class-archive-"))
        try:
            return await self._run_in(work)
        except (LaunchError, OSError) as exc:
            log.warning("class-data archive warm-up could not run", extra={"reason": str(exc)})
            return False
        except Exception:  # nobody awaits this task: a bug here is logged, runs go on
            log.exception("class-data archive warm-up failed")
            return False
        finally:
            await asyncio.to_thread(shutil.rmtree, work, True)

    async def _run_in(self, work: Path) -> bool:
        planned = await asyncio.to_thread(plan_warm_up, self._commands, work)
        if planned is None or self._closed:
            return False  # the archive exists, or another warm-up holds its claim
        plan, tmp = planned
        log.info("class-data archive warm-up started", extra={"archive": str(tmp)})
        started = time.monotonic()
        output = await asyncio.to_thread((work / "output.log").open, "wb")
        with output:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                _NICE_EXEC,
                str(self._niceness),
                *plan.argv,
                cwd=work,
                env=plan.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=output,
                stderr=output,
                start_new_session=True,
            )
        if self._closed:  # closed while it was being started
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)
        code = await self._process.wait()
        seconds = round(time.monotonic() - started, 1)
        complete = await asyncio.to_thread(finish_writing, tmp)
        if code == 0 and complete:
            log.info("class-data archive written", extra={"seconds": seconds})
            return True
        if self._closed:
            # Killed, not failed: the next scheduler to start may try again at once.
            await asyncio.to_thread(release_claim, tmp)
            log.info("class-data archive warm-up killed: the scheduler stops")
            return False
        tail = await asyncio.to_thread(_tail, work / "output.log")
        log.warning(
            "class-data archive warm-up failed",
            extra={"exit_code": code, "seconds": seconds, "output_tail": tail},
        )
        return False


async def write_archive(commands: CommandSettings, *, niceness: int = LOWEST_PRIORITY) -> bool:
    """Run one warm-up to its end and wait for it (the scheduler's runs in the background);
    whether it wrote the archive. For the bench and the test suite, which want the archive
    before their first run."""
    warm_up = ArchiveWarmUp(commands, niceness=niceness)
    warm_up.request()
    try:
        return await warm_up.wait()
    finally:
        await warm_up.close()


def session_members(session: int) -> list[int]:
    """Live (not zombie) processes of a session."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        # After the command name (in parentheses): state, ppid, pgrp, session.
        fields = stat.rpartition(")")[2].split()
        if fields[0] != "Z" and int(fields[3]) == session:
            found.append(int(entry.name))
    return found


def _kill_session(session: int) -> None:
    for pid in session_members(session):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-_TAIL_CHARS:]
    except OSError:
        return ""
