"""A stand-in for the scheduler process: it launches one run through a ``ProcessRunner`` (its
zygote, or the plain launcher), then ends - by returning from ``asyncio.run`` without closing
the runner (a crash's way out), or by kill -9 of its whole process group. What the run does
after that is the caller's to check (tests/scheduler/test_runner.py, test_zygote.py)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

REPO = Path(__file__).resolve().parents[2]

# Prints the supervisor's pid and the zygote's (0: none), then returns or hangs until killed.
STAND_IN = """
import asyncio, sys
from scheduler_service.runner import ProcessRunner

async def main() -> None:
    runs_dir, run_id, mode, through, *argv = sys.argv[1:]
    runner = ProcessRunner(runs_dir)
    if through == "zygote":
        assert await runner.start_zygote()
    handle = await runner.launch(run_id, argv, None)
    print(handle.supervisor_pid, runner.zygote_pid or 0, flush=True)
    if mode == "hang":
        await asyncio.sleep(60)

asyncio.run(main())
"""


@dataclass(frozen=True)
class EndedScheduler:
    """What the stand-in left behind."""

    supervisor_pid: int
    zygote_pid: int | None


async def launch_then_end_scheduler(
    runs_dir: Path,
    run_id: str,
    argv: list[str],
    how: Literal["exit", "kill-9"],
    *,
    ready: Path,
    through: Literal["launcher", "zygote"] = "launcher",
    env: dict[str, str] | None = None,
) -> EndedScheduler:
    """Have a stand-in scheduler launch ``argv`` as run ``run_id``, wait until the job wrote
    ``ready``, then end the scheduler ``how``; asserts that it ended that way."""
    scheduler = await asyncio.create_subprocess_exec(
        sys.executable, "-c", STAND_IN, str(runs_dir), run_id,
        "exit" if how == "exit" else "hang", through, *argv,
        stdout=asyncio.subprocess.PIPE, env=env, cwd=REPO, start_new_session=True,
    )  # fmt: skip
    assert scheduler.stdout is not None
    supervisor_pid, zygote_pid = map(int, (await scheduler.stdout.readline()).split())
    await _wait_for_file(ready)
    if how == "kill-9":
        os.killpg(scheduler.pid, signal.SIGKILL)  # the scheduler and its whole process group
    assert await scheduler.wait() == (0 if how == "exit" else -signal.SIGKILL)
    return EndedScheduler(supervisor_pid, zygote_pid or None)


async def _wait_for_file(path: Path, timeout: float = 30.0) -> None:
    """Poll for the file the job writes once it runs (a loaded machine may take seconds)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not path.exists():
        assert loop.time() < deadline, f"{path} was not written within {timeout:g} s"
        await asyncio.sleep(0.01)
