"""The job sandbox against real processes: identity, ending every process, limits, log cap.

Each test runs hostile job scripts under real supervisors. Tests that need root (another uid,
cgroups) skip elsewhere, saying why; CI runs as root.
"""

from __future__ import annotations

import ast
import asyncio
import os
import shutil
import signal
import sqlite3
import stat
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from scheduler_service.cgroups import CgroupSupport, detect_cgroups
from scheduler_service.commands import CommandSettings
from scheduler_service.run_outcome import (
    CLAIM_FILE,
    OUTPUT_LOG,
    Outcome,
    OutcomeKind,
    RunningProcess,
)
from scheduler_service.runner import LaunchError, ProcessRunner
from scheduler_service.sandbox import (
    RunLimits,
    Sandbox,
    protect_data_dir,
    run_cgroup_name,
    run_limits,
)

GRACE = 0.5
# Jobs that run as another uid need an interpreter that uid can reach (not one under /root).
SYSTEM_PYTHON = "/usr/bin/python3"
RUN_UIDS = (61000, 61099)
IS_ROOT = os.geteuid() == 0

needs_root = pytest.mark.skipif(not IS_ROOT, reason="needs root: runs jobs as other uids")


def _cgroups() -> CgroupSupport:
    return detect_cgroups() if IS_ROOT else CgroupSupport(reason="not root")


CGROUPS = _cgroups()


def needs_cgroup(controller: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(
        controller not in CGROUPS.controllers,
        reason=f"needs a {controller} cgroup this process can create ({CGROUPS.reason or 'none'})",
    )


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory every uid can pass through (pytest's tmp_path is 0700 under root's)."""
    path = Path(tempfile.mkdtemp(prefix="sandbox-test-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def python_for_jobs() -> str:
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        pytest.skip(f"needs {SYSTEM_PYTHON}, an interpreter other uids can run")
    return SYSTEM_PYTHON


def job_script(directory: Path, body: str) -> Path:
    path = directory / "job.py"
    path.write_text(textwrap.dedent(body))
    path.chmod(0o644)
    return path


def make_runner(shared_dir: Path, sandbox: Sandbox | None) -> ProcessRunner:
    return ProcessRunner(shared_dir / "data" / "runs", stop_grace=GRACE, sandbox=sandbox)


async def run_job(
    runner: ProcessRunner,
    run_id: str,
    script: Path,
    *args: str,
    limits: RunLimits | None = None,
    deadline: float | None = None,
) -> Outcome:
    handle = await runner.launch(
        run_id,
        [python_for_jobs(), str(script), *args],
        deadline,
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        limits=limits,
    )
    return await asyncio.wait_for(handle.wait(), 30)


def alive(pid: int) -> bool:
    """Whether the process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def pythonshell_limits(max_capacity: float) -> RunLimits:
    record = {"_Command": {"Name": "pythonshell"}, "MaxCapacity": max_capacity}
    return run_limits(record, CommandSettings(python=SYSTEM_PYTHON))


# -- ending a run ends all of it -----------------------------------------------------------

LEAVES_DETACHED_PROCESSES = """
    import os, sys, time
    # A grandchild in a session of its own, and a double-forked daemon.
    for how in ("setsid", "double-fork"):
        if os.fork() == 0:
            if how == "setsid":
                os.setsid()
                if os.fork() == 0:
                    open(f"{how}.pid", "w").write(str(os.getpid()))
                    time.sleep(60)
                os._exit(0)
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    open(f"{how}.pid", "w").write(str(os.getpid()))
                    time.sleep(60)
                os._exit(0)
            os._exit(0)
    for name in ("setsid.pid", "double-fork.pid"):
        while not os.path.exists(name) or not open(name).read():
            time.sleep(0.01)
    print("left two processes behind")
"""


@pytest.mark.parametrize(
    "sandbox",
    [
        pytest.param(None, id="no-sandbox"),
        pytest.param(
            Sandbox(cgroups=CGROUPS, run_uids=RUN_UIDS),
            id="cgroups-and-run-uids",
            marks=[needs_root, needs_cgroup("pids")],
        ),
    ],
)
async def test_setsid_and_double_forked_processes_end_with_the_run(
    shared_dir: Path, sandbox: Sandbox | None
) -> None:
    runner = make_runner(shared_dir, sandbox)
    script = job_script(shared_dir, LEAVES_DETACHED_PROCESSES)

    outcome = await run_job(runner, "jr_detached", script)

    assert outcome.kind is OutcomeKind.SUCCEEDED, outcome.message
    work = runner.work_dir("jr_detached")
    pids = [int((work / f"{how}.pid").read_text()) for how in ("setsid", "double-fork")]
    assert [pid for pid in pids if alive(pid)] == []


# -- identity --------------------------------------------------------------------------------

PROBES_THE_SCHEDULER = """
    import os, sys
    scheduler_pid, database = int(sys.argv[1]), sys.argv[2]
    results = {"uid": os.getuid(), "groups": os.getgroups()}
    for name, pid in (("scheduler", scheduler_pid), ("supervisor", os.getppid())):
        try:
            os.kill(pid, 0)
            results[name] = "signalled"
        except PermissionError:
            results[name] = "denied"
    try:
        open(database, "rb").read(16)
        results["database"] = "read"
    except PermissionError:
        results["database"] = "denied"
    except FileNotFoundError:
        results["database"] = "missing"
    print(results)
"""


@needs_root
async def test_job_cannot_signal_the_scheduler_or_read_its_database(shared_dir: Path) -> None:
    data_dir = shared_dir / "data"
    data_dir.mkdir()
    database = data_dir / "scheduler.db"
    sqlite3.connect(database).close()  # created as SQLite creates it: 0644
    database.chmod(0o644)
    runner = make_runner(shared_dir, Sandbox(run_uids=RUN_UIDS))
    # What the scheduler does at start-up when jobs run as other users.
    protect_data_dir(data_dir)
    script = job_script(shared_dir, PROBES_THE_SCHEDULER)

    outcome = await run_job(runner, "jr_probe", script, str(os.getpid()), str(database))

    assert outcome.kind is OutcomeKind.SUCCEEDED, outcome.message
    output = (runner.run_dir("jr_probe") / OUTPUT_LOG).read_text()
    results = ast.literal_eval(output.strip())
    assert RUN_UIDS[0] <= results["uid"] <= RUN_UIDS[1]
    assert results["groups"] == []
    assert results["scheduler"] == "denied"
    assert results["supervisor"] == "denied"
    assert results["database"] == "denied"
    # The job's files are out of its reach once it has ended; the run's own files never were.
    run_dir = runner.run_dir("jr_probe")
    assert stat.S_IMODE(run_dir.stat().st_mode) == 0o711
    assert run_dir.stat().st_uid == 0
    assert runner.work_dir("jr_probe").stat().st_uid == 0
    for name in (OUTPUT_LOG, CLAIM_FILE):
        assert stat.S_IMODE((run_dir / name).stat().st_mode) == 0o600


@needs_root
async def test_run_as_runs_every_job_as_that_user(shared_dir: Path) -> None:
    nobody = (65534, 65534)
    runner = make_runner(shared_dir, Sandbox(run_as=nobody))
    (shared_dir / "data").mkdir()
    script = job_script(shared_dir, PROBES_THE_SCHEDULER)

    outcome = await run_job(runner, "jr_nobody", script, str(os.getpid()), "/nonexistent")

    assert outcome.kind is OutcomeKind.SUCCEEDED, outcome.message
    results = ast.literal_eval((runner.run_dir("jr_nobody") / OUTPUT_LOG).read_text().strip())
    assert results["uid"] == nobody[0]
    assert results["scheduler"] == "denied"
    assert results["supervisor"] == "denied"


WAITS_FOR_RELEASE = """
    import os, time
    open("ready", "w").write(str(os.getuid()))
    for _ in range(3000):
        if os.path.exists(os.environ["RELEASE"]):
            break
        time.sleep(0.01)
"""


@needs_root
async def test_concurrent_runs_get_distinct_uids_that_survive_adoption(shared_dir: Path) -> None:
    sandbox = Sandbox(run_uids=(61000, 61001))
    runner = make_runner(shared_dir, sandbox)
    script = job_script(shared_dir, WAITS_FOR_RELEASE)
    release = shared_dir / "release"
    handles = [
        await runner.launch(
            run_id,
            [python_for_jobs(), str(script)],
            None,
            env={"PATH": "/usr/bin", "RELEASE": str(release)},
        )
        for run_id in ("jr_a", "jr_b")
    ]
    uids = set()
    for run_id in ("jr_a", "jr_b"):
        ready = runner.work_dir(run_id) / "ready"
        for _ in range(500):
            if ready.exists() and ready.read_text():
                break
            await asyncio.sleep(0.01)
        uids.add(int(ready.read_text()))
    assert uids == {61000, 61001}
    # A third run finds every uid taken and ends in ERROR without starting.
    with pytest.raises(LaunchError, match="uids of --run-uids 61000-61001 are taken"):
        await runner.launch("jr_c", [python_for_jobs(), str(script)], None)

    adopted = await make_runner(shared_dir, sandbox).adopt("jr_a")  # a restarted scheduler
    assert isinstance(adopted, RunningProcess)
    release.touch()
    assert (await adopted.wait()).kind is OutcomeKind.SUCCEEDED
    assert (await handles[1].wait()).kind is OutcomeKind.SUCCEEDED


# -- limits ----------------------------------------------------------------------------------

ALLOCATES_2_GB = """
    data = b"x" * (2 * 2**30)  # written, so really allocated
    print(len(data))
"""


@pytest.mark.parametrize(
    "cgroups",
    [
        pytest.param(CGROUPS, id="memory-cgroup", marks=[needs_root, needs_cgroup("memory")]),
        pytest.param(CgroupSupport(), id="rlimit-as-fallback"),
    ],
)
async def test_memory_hog_fails_naming_its_memory_limit(
    shared_dir: Path, cgroups: CgroupSupport
) -> None:
    runner = make_runner(shared_dir, Sandbox(cgroups=cgroups))
    script = job_script(shared_dir, ALLOCATES_2_GB)

    outcome = await run_job(runner, "jr_hog", script, limits=pythonshell_limits(0.0625))

    assert outcome.kind is OutcomeKind.FAILED
    assert outcome.limit == "memory"
    assert "exceeded its 1 GB memory limit (MaxCapacity 0.0625)" in outcome.message


FORKS_UNTIL_REFUSED = """
    import os, sys, time
    started = 0
    try:
        for _ in range(300):
            if os.fork() == 0:
                time.sleep(30)
                os._exit(0)
            started += 1
    finally:
        print("forked", started, flush=True)
"""


@needs_root
@needs_cgroup("pids")
async def test_fork_bomb_is_bounded_and_named(shared_dir: Path) -> None:
    runner = make_runner(shared_dir, Sandbox(cgroups=CGROUPS, max_processes=40))
    script = job_script(shared_dir, FORKS_UNTIL_REFUSED)

    outcome = await run_job(runner, "jr_forks", script)

    forked = int(
        (runner.run_dir("jr_forks") / OUTPUT_LOG).read_text().split("forked")[1].split()[0]
    )
    assert forked < 40
    assert outcome.kind is OutcomeKind.FAILED
    assert outcome.limit == "processes"
    assert "reached its 40-process limit" in outcome.message


WRITES_2_MB = """
    with open("big", "wb") as f:
        for _ in range(32):
            f.write(b"x" * 65536)
"""


async def test_file_size_limit_fails_naming_it(shared_dir: Path) -> None:
    runner = make_runner(shared_dir, Sandbox(max_file_bytes=2**20))
    script = job_script(shared_dir, WRITES_2_MB)

    outcome = await run_job(runner, "jr_big", script)

    assert outcome.kind is OutcomeKind.FAILED
    assert outcome.limit == "file_size"
    assert "beyond its 1 MB file-size limit" in outcome.message
    assert (runner.work_dir("jr_big") / "big").stat().st_size <= 2**20


async def test_file_size_limit_kills_a_program_that_keeps_sigxfsz(shared_dir: Path) -> None:
    runner = make_runner(shared_dir, Sandbox(max_file_bytes=2**20))
    handle = await runner.launch(
        "jr_dd",
        ["/bin/sh", "-c", "head -c 2000000 /dev/zero > big"],
        None,
        env={"PATH": "/usr/bin:/bin"},
    )
    outcome = await asyncio.wait_for(handle.wait(), 30)

    assert outcome.kind is OutcomeKind.FAILED
    assert outcome.limit == "file_size", outcome.message


FLOODS_THE_LOG = """
    import sys
    out = sys.stdout
    for i in range(40000):
        out.write(f"line {i:06d} " + "." * 40 + "\\n")
    out.flush()  # before stderr's line, which would otherwise overtake the buffer
    print("the last words", file=sys.stderr)
"""


async def test_log_flood_keeps_head_and_tail_with_the_cut_line(shared_dir: Path) -> None:
    cap = 200_000
    runner = make_runner(shared_dir, Sandbox(max_log_bytes=cap))
    script = job_script(shared_dir, FLOODS_THE_LOG)

    outcome = await run_job(runner, "jr_flood", script)

    assert outcome.kind is OutcomeKind.SUCCEEDED, outcome.message
    log = (runner.run_dir("jr_flood") / OUTPUT_LOG).read_text()
    assert len(log) <= cap + 300
    assert log.startswith("line 000000 ")
    assert "line 039999 " in log
    assert log.rstrip().endswith("the last words")
    head, cut, tail = log.partition("[... ")
    assert cut
    cut_bytes = int(tail.split()[0])
    assert "bytes of output cut here" in tail.splitlines()[0]
    # The cut line starts on a line of its own.
    assert (
        len(head.encode()) - 1 + cut_bytes + len(tail.split("\n", 1)[1].encode()) == 40000 * 53 + 15
    )
    # The kept tail starts at a line, and nothing is left of the supervisor's work files.
    assert tail.split("\n", 1)[1].startswith("line ")
    assert sorted(p.name for p in runner.run_dir("jr_flood").iterdir() if "tail" in p.name) == []


async def test_stop_still_ends_a_sandboxed_run(shared_dir: Path) -> None:
    sandbox = Sandbox(
        cgroups=CGROUPS, run_uids=RUN_UIDS if IS_ROOT else None, max_processes=77, cpu_weight=50
    )
    runner = make_runner(shared_dir, sandbox)
    script = job_script(shared_dir, "import time\nopen('ready', 'w').write('1')\ntime.sleep(30)\n")
    handle = await runner.launch(
        "jr_stop",
        [python_for_jobs(), str(script)],
        None,
        env={"PATH": "/usr/bin"},
        limits=RunLimits(memory_bytes=3 * 2**30, memory_note="test"),
    )
    ready = runner.work_dir("jr_stop") / "ready"
    for _ in range(500):
        if ready.exists():
            break
        await asyncio.sleep(0.01)
    # The limits sit in the run's cgroups while it runs.
    expected = {
        "pids.max": "77",
        "cpu.shares": str(50 * 1024 // 100),
        "cpu.weight": "50",
        "memory.limit_in_bytes": str(3 * 2**30),
        "memory.max": str(3 * 2**30),
    }
    for parent in CGROUPS.parents:
        for name, value in expected.items():
            path = Path(parent, run_cgroup_name(runner.runs_dir, "jr_stop"), name)
            if path.exists():
                assert path.read_text().strip() == value, path
    assert handle.stop()
    outcome = await asyncio.wait_for(handle.wait(), 10)
    assert outcome.kind is OutcomeKind.STOPPED
    assert handle.job_pid is not None
    assert not alive(handle.job_pid)
    # The run's cgroups are gone with it.
    for parent in CGROUPS.parents:
        assert not Path(parent, run_cgroup_name(runner.runs_dir, "jr_stop")).exists()


@needs_root
@needs_cgroup("pids")
async def test_killed_supervisor_leaves_nothing_in_its_cgroups(shared_dir: Path) -> None:
    """A supervisor killed with -9 leaves its job; the runner kills what is in its cgroups."""
    runner = make_runner(shared_dir, Sandbox(cgroups=CGROUPS))
    script = job_script(shared_dir, textwrap.dedent(LEAVES_DETACHED_PROCESSES) + "time.sleep(30)\n")
    handle = await runner.launch(
        "jr_lost", [python_for_jobs(), str(script)], None, env={"PATH": "/usr/bin"}
    )
    pidfile = runner.work_dir("jr_lost") / "double-fork.pid"
    for _ in range(500):
        if pidfile.exists() and pidfile.read_text():
            break
        await asyncio.sleep(0.01)
    daemon = int(pidfile.read_text())
    os.kill(handle.supervisor_pid, signal.SIGKILL)
    outcome = await asyncio.wait_for(handle.wait(), 10)
    assert outcome.kind is OutcomeKind.LOST
    for _ in range(100):
        if not alive(daemon):
            break
        await asyncio.sleep(0.01)
    assert not alive(daemon)


@needs_cgroup("pids")
async def test_two_schedulers_runs_of_one_id_have_cgroups_of_their_own(tmp_path: Path) -> None:
    """Two schedulers in one cgroup (two installations on a host, the suite's stacks) each
    running a run of the same id: the one that ends first kills nothing of the other's."""
    sandbox = Sandbox(cgroups=CGROUPS)
    first = make_runner(tmp_path / "first", sandbox)
    second = make_runner(tmp_path / "second", sandbox)
    assert run_cgroup_name(first.runs_dir, "jr_same") != run_cgroup_name(second.runs_dir, "jr_same")
    sleeper = job_script(tmp_path, "import time\nopen('ready', 'w').write('1')\ntime.sleep(30)\n")
    (tmp_path / "quick").mkdir()
    quick = job_script(tmp_path / "quick", "print('done')\n")
    long_run = await first.launch(
        "jr_same", [python_for_jobs(), str(sleeper)], None, env={"PATH": "/usr/bin"}
    )
    ready = first.work_dir("jr_same") / "ready"
    for _ in range(500):
        if ready.exists():
            break
        await asyncio.sleep(0.01)
    assert ready.exists()
    short_run = await second.launch(
        "jr_same", [python_for_jobs(), str(quick)], None, env={"PATH": "/usr/bin"}
    )
    assert (await asyncio.wait_for(short_run.wait(), 20)).kind is OutcomeKind.SUCCEEDED
    # The other scheduler's run of the same id is still running.
    assert long_run.job_pid is not None and alive(long_run.job_pid)
    assert long_run.stop()
    assert (await asyncio.wait_for(long_run.wait(), 10)).kind is OutcomeKind.STOPPED
