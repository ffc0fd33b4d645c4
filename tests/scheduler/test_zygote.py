"""The supervisor zygote against real processes: same supervisors as the launcher's, restarts,
fallback, and runs that outlive it and its scheduler.

``tests/scheduler/test_runner.py`` runs every runner test both ways (its ``runner`` fixture);
these are the zygote's own properties.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import stat
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Literal

import pytest

from scheduler_service.cgroups import CgroupSupport
from scheduler_service.run_outcome import OUTPUT_LOG, OutcomeKind, RunningProcess
from scheduler_service.runner import ProcessRunner
from scheduler_service.sandbox import Sandbox
from tests.conftest import Stack
from tests.helpers.stand_in_scheduler import launch_then_end_scheduler
from tests.scheduler.test_runner import (
    GRACE,
    WAIT_FOR_RELEASE,
    build_argv,
    has_exited,
    launch_script,
    pythonshell,
    wait_exited,
    wait_for_file,
    write_script,
)
from tests.scheduler.test_sandbox import (
    CGROUPS,
    LEAVES_DETACHED_PROCESSES,
    PROBES_THE_SCHEDULER,
    RUN_UIDS,
    alive,
    job_script,
    make_runner,
    needs_cgroup,
    needs_root,
    pythonshell_limits,
    run_job,
    shared_dir,  # noqa: F401 - the fixture
)


@pytest.fixture
async def zygote_runner(tmp_path: Path) -> AsyncIterator[ProcessRunner]:
    runner = ProcessRunner(tmp_path / "runs", stop_grace=GRACE)
    assert await runner.start_zygote()
    try:
        yield runner
    finally:
        await runner.close()
        for run_dir in runner.runs_dir.iterdir():
            runner.stop(run_dir.name)


@pytest.fixture
def job_env() -> dict[str, str]:
    """A small environment without a locale: a fresh interpreter coerces it (PEP 538)."""
    return {"PATH": os.environ["PATH"], "HOME": "/nonexistent", "ODD": "a=b c\tü"}


# What the job and its supervisor (the job's parent) look like from the inside; paths under
# the run directory are made relative so that two runs compare.
DESCRIBES_ITS_PROCESSES = """
    import json, os, sys

    def status(pid):
        fields = {}
        for line in open(f"/proc/{pid}/status"):
            key, _, value = line.partition(":")
            fields[key] = value.strip()
        return {k: fields[k] for k in ("Umask", "SigBlk", "SigIgn", "SigCgt", "NoNewPrivs")}

    def fds(pid):
        found = []
        for name in sorted(os.listdir(f"/proc/{pid}/fd"), key=int):
            try:
                target = os.readlink(f"/proc/{pid}/fd/{name}")
            except OSError:
                continue
            if target.startswith(("pipe:", "socket:")):
                target = target.partition(":")[0]
            found.append((int(name), target.replace(sys.argv[1], "RUN")))
        return found

    def ids(pid):
        stat = open(f"/proc/{pid}/stat").read().rpartition(")")[2].split()
        pgid, sid = int(stat[2]), int(stat[3])
        return {"own_group": pgid == pid, "own_session": sid == pid}

    supervisor = os.getppid()
    print(json.dumps({
        "env": dict(os.environ),
        "cwd": os.getcwd().replace(sys.argv[1], "RUN"),
        "job": {**status("self"), "fds": fds(os.getpid()), **ids(os.getpid())},
        "supervisor": {
            **status(supervisor),
            "fds": fds(supervisor),
            "cmd_is_python": open(f"/proc/{supervisor}/comm").read().startswith("python"),
            "leads_session": os.getsid(supervisor) == supervisor,
        },
    }))
"""


async def describe(runner: ProcessRunner, tmp_path: Path, env: dict[str, str]) -> object:
    script = write_script(tmp_path, DESCRIBES_ITS_PROCESSES, name="describe.py")
    run_dir = str(runner.run_dir("jr_describe"))
    handle = await runner.launch(
        "jr_describe", [sys.executable, str(script), run_dir], None, env=env
    )
    outcome = await handle.wait()
    assert outcome.kind is OutcomeKind.SUCCEEDED, outcome.message
    return json.loads(runner.log_path("jr_describe").read_text())


async def test_a_zygote_supervisor_is_the_launchers_supervisor(
    tmp_path: Path, zygote_runner: ProcessRunner, job_env: dict[str, str]
) -> None:
    old_umask = os.umask(0o027)  # the umask at launch time counts, not the zygote's start's
    try:
        launched = await describe(
            ProcessRunner(tmp_path / "launcher", stop_grace=GRACE), tmp_path, job_env
        )
        zygoted = await describe(zygote_runner, tmp_path, job_env)
    finally:
        os.umask(old_umask)
    # The one difference (zygote's docstring): a zygote's child is the supervisor itself, so it
    # leads the session it made; a launcher's supervisor is the child of the session's leader.
    assert isinstance(launched, dict) and isinstance(zygoted, dict)
    assert (
        launched["supervisor"].pop("leads_session"),
        zygoted["supervisor"].pop("leads_session"),
    ) == (False, True)
    assert zygoted == launched
    # What the comparison covers, spelled out: PEP 538's coercion reached the job both ways,
    # the umask is the launch's, and the supervisor holds only its own files.
    assert isinstance(launched, dict)
    assert launched["env"] == {**job_env, "LC_CTYPE": "C.UTF-8"}
    assert launched["job"]["Umask"] == "0027"
    assert launched["job"]["SigBlk"] == "0000000000000000"
    assert all(target != "socket" for _, target in launched["supervisor"]["fds"])


async def test_launches_at_once_each_get_their_own_supervisor(
    tmp_path: Path, zygote_runner: ProcessRunner, job_env: dict[str, str]
) -> None:
    script = write_script(tmp_path, "import sys; print(sys.argv[1:])")
    argv = build_argv(pythonshell(script), "job-1", "jr", {"--n": "1"}, sys.executable)
    handles = await asyncio.gather(
        *(zygote_runner.launch(f"jr_{n}", argv, None, env=job_env) for n in range(24))
    )
    assert len({handle.supervisor_pid for handle in handles}) == 24
    outcomes = await asyncio.gather(*(handle.wait() for handle in handles))
    assert {outcome.kind for outcome in outcomes} == {OutcomeKind.SUCCEEDED}
    for n in range(24):
        assert "'--n', '1'" in zygote_runner.log_path(f"jr_{n}").read_text()


async def test_a_killed_zygote_is_replaced_at_the_next_launch(
    tmp_path: Path, zygote_runner: ProcessRunner, job_env: dict[str, str]
) -> None:
    script = write_script(tmp_path, "print('ran')")
    first = zygote_runner.zygote_pid
    assert first is not None
    os.kill(first, signal.SIGKILL)
    # Launched at once, before the loop has seen the exit: the send fails or the request is
    # lost with the zygote, and the run still starts, exactly once.
    handle = await launch_script(zygote_runner, "jr_after_kill", script, job_env)
    assert (await handle.wait()).kind is OutcomeKind.SUCCEEDED
    await wait_exited(first)

    handle = await launch_script(zygote_runner, "jr_next", script, job_env)
    assert (await handle.wait()).kind is OutcomeKind.SUCCEEDED
    replaced = zygote_runner.zygote_pid
    assert replaced is not None
    assert replaced != first
    assert "ran" in zygote_runner.log_path("jr_next").read_text()


async def test_a_zygote_that_cannot_start_leaves_the_launcher(
    tmp_path: Path, job_env: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    # An interpreter that runs supervisors but refuses to become a zygote.
    python = tmp_path / "python"
    python.write_text(
        f'#!/bin/sh\ncase "$*" in *serve_and_exit*) exit 3;; esac\nexec {sys.executable} "$@"\n'
    )
    python.chmod(0o755)
    runner = ProcessRunner(tmp_path / "runs", stop_grace=GRACE, supervisor_python=str(python))
    with caplog.at_level(logging.WARNING, logger="scheduler_service.zygote_client"):
        assert await runner.start_zygote() is False
    assert "cannot start the supervisor zygote" in caplog.text
    try:
        script = write_script(tmp_path, "print('ran')")
        handle = await launch_script(runner, "jr_fallback", script, job_env)
        assert (await handle.wait()).kind is OutcomeKind.SUCCEEDED
        assert runner.zygote_pid is None
    finally:
        await runner.close()


async def test_closing_the_runner_ends_the_zygote_not_the_runs(
    tmp_path: Path, zygote_runner: ProcessRunner, job_env: dict[str, str]
) -> None:
    script = write_script(tmp_path, WAIT_FOR_RELEASE)
    handle = await launch_script(zygote_runner, "jr_outlives", script, job_env)
    await wait_for_file(tmp_path / "ready")
    zygote = zygote_runner.zygote_pid
    assert zygote is not None

    await zygote_runner.close()

    assert has_exited(zygote)
    assert handle.is_alive()
    (tmp_path / "release").touch()
    assert (await handle.wait()).kind is OutcomeKind.SUCCEEDED


@pytest.mark.slow
@pytest.mark.parametrize("how", ["exit", "kill-9"])
async def test_scheduler_exit_or_kill_ends_its_zygote_not_the_run(
    runs_dir: Path, tmp_path: Path, how: Literal["exit", "kill-9"]
) -> None:
    script = write_script(tmp_path, WAIT_FOR_RELEASE)
    argv = build_argv(pythonshell(script), "job-1", "jr_survive", {}, sys.executable)
    ended = await launch_then_end_scheduler(
        runs_dir, "jr_survive", argv, how, ready=tmp_path / "ready", through="zygote"
    )

    assert ended.zygote_pid is not None
    await wait_exited(ended.zygote_pid)  # the socket's EOF ended it
    adopted = await ProcessRunner(runs_dir).adopt("jr_survive")
    assert isinstance(adopted, RunningProcess)
    assert adopted.supervisor_pid == ended.supervisor_pid
    (tmp_path / "release").touch()
    assert (await adopted.wait()).kind is OutcomeKind.SUCCEEDED


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    return tmp_path / "runs"


# -- sandboxed launches through the zygote (root) -----------------------------------------------


@needs_root
@needs_cgroup("pids")
async def test_sandboxed_run_through_the_zygote(shared_dir: Path) -> None:  # noqa: F811
    runner = make_runner(shared_dir, Sandbox(cgroups=CGROUPS, run_uids=RUN_UIDS))
    (shared_dir / "data").mkdir(parents=True, exist_ok=True)
    assert await runner.start_zygote()
    try:
        probe = job_script(shared_dir, PROBES_THE_SCHEDULER)
        outcome = await run_job(runner, "jr_probe", probe, str(os.getpid()), "/nonexistent")
        assert outcome.kind is OutcomeKind.SUCCEEDED, outcome.message
        results = (runner.run_dir("jr_probe") / OUTPUT_LOG).read_text()
        assert "'scheduler': 'denied'" in results
        assert "'supervisor': 'denied'" in results
        assert stat.S_IMODE(runner.run_dir("jr_probe").stat().st_mode) == 0o711

        detached = job_script(shared_dir, LEAVES_DETACHED_PROCESSES)
        outcome = await run_job(runner, "jr_detached", detached)
        assert outcome.kind is OutcomeKind.SUCCEEDED, outcome.message
        work = runner.work_dir("jr_detached")
        pids = [int((work / f"{how}.pid").read_text()) for how in ("setsid", "double-fork")]
        assert [pid for pid in pids if alive(pid)] == []
    finally:
        await runner.close()


async def test_limits_through_the_zygote(shared_dir: Path) -> None:  # noqa: F811
    runner = make_runner(shared_dir, Sandbox(cgroups=CgroupSupport()))
    assert await runner.start_zygote()
    try:
        hog = job_script(shared_dir, 'data = b"x" * (2 * 2**30)\nprint(len(data))\n')
        outcome = await run_job(runner, "jr_hog", hog, limits=pythonshell_limits(0.0625))
        assert outcome.kind is OutcomeKind.FAILED
        assert outcome.limit == "memory"
    finally:
        await runner.close()


# -- the scheduler service's own zygote ---------------------------------------------------------


def zygotes_of(parent: int) -> list[int]:
    """The children of ``parent`` that are supervisor zygotes (by their command line)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            stat_line = Path(f"/proc/{name}/stat").read_text()
            command = Path(f"/proc/{name}/cmdline").read_bytes()
        except OSError:
            continue
        if int(stat_line.rpartition(")")[2].split()[1]) == parent and b"serve_and_exit" in command:
            found.append(int(name))
    return found


async def test_the_scheduler_launches_through_its_zygote_and_its_exit_leaves_the_run(
    stack: Stack, tmp_path: Path
) -> None:
    (zygote,) = zygotes_of(os.getpid())
    script = write_script(tmp_path, WAIT_FOR_RELEASE)
    await stack.create_job("zygoted", script)
    run_id = await stack.start_run("zygoted")
    await stack.wait_run("zygoted", run_id, {"RUNNING"})
    claim = json.loads((stack.scheduler_settings.runs_dir / run_id / "supervisor.json").read_text())
    # Forked by the zygote: it carries the zygote's command line, not the launcher's.
    assert b"serve_and_exit" in Path(f"/proc/{claim['pid']}/cmdline").read_bytes()

    await stack.stop_scheduler()
    await wait_exited(zygote)
    assert not has_exited(claim["pid"])
    (tmp_path / "release").touch()
    await stack.start_scheduler()
    run = await stack.wait_run("zygoted", run_id)
    assert run.job_run_state == "SUCCEEDED", run.error_message
