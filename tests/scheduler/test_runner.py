"""The process runner against real processes: outcomes, stop, timeout, logs and re-adoption."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Literal

import pytest

from scheduler_service.commands import RUNTIME_DIR, CommandSettings, plan_launch
from scheduler_service.run_outcome import Outcome, OutcomeKind, RunningProcess
from scheduler_service.runner import SUPERVISOR_SCRIPT, LaunchError, ProcessRunner
from tests.helpers.stand_in_scheduler import launch_then_end_scheduler

GRACE = 0.5


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    return tmp_path / "runs"


@pytest.fixture(params=["launcher", "zygote"])
async def runner(runs_dir: Path, request: pytest.FixtureRequest) -> AsyncIterator[ProcessRunner]:
    """A runner that starts supervisors the plain way (an interpreter per launch) or through
    its zygote: every test using it must see the same outcomes both ways."""
    runner = ProcessRunner(runs_dir, stop_grace=GRACE)
    if request.param == "zygote":
        assert await runner.start_zygote()
    try:
        yield runner
    finally:
        await runner.close()
        # A failed test must not leave jobs behind: stop whatever still runs (TERM, then KILL).
        if runs_dir.exists():
            for run_dir in runs_dir.iterdir():
                runner.stop(run_dir.name)


@pytest.fixture
def job_env() -> dict[str, str]:
    """The scheduler's environment, plus runtime/ so job scripts can import awsglue."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(RUNTIME_DIR), env.get("PYTHONPATH")]))
    return env


def write_script(directory: Path, body: str, name: str = "job.py") -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(body))
    return path


def pythonshell(script: Path | str) -> dict[str, str]:
    return {"Name": "pythonshell", "ScriptLocation": str(script), "PythonVersion": "3"}


def build_argv(
    command: dict[str, str], job: str, run_id: str, arguments: dict[str, str], python: str
) -> list[str]:
    """The run's command line as the executor plans it (``commands.plan_launch``)."""
    plan = plan_launch(
        {"_Command": command},
        job,
        run_id,
        arguments,
        Path("/nonexistent"),
        CommandSettings(python=python),
    )
    return plan.argv


async def launch_script(
    runner: ProcessRunner,
    run_id: str,
    script: Path,
    env: dict[str, str],
    *,
    deadline: float | None = None,
    arguments: dict[str, str] | None = None,
) -> RunningProcess:
    argv = build_argv(pythonshell(script), "job-1", run_id, arguments or {}, sys.executable)
    return await runner.launch(run_id, argv, deadline, env=env)


def read_if_written(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def has_exited(pid: int) -> bool:
    """Whether the process is gone or a zombie (init may take a while to reap orphans)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


async def wait_for_file(path: Path) -> str:
    """Poll for a file a job writes to say it got somewhere (test-only; polling is fine)."""
    for _ in range(500):
        if text := read_if_written(path):
            return text
        await asyncio.sleep(0.01)
    raise AssertionError(f"{path} was not written within 5 s")


async def wait_exited(pid: int) -> None:
    for _ in range(300):
        if has_exited(pid):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"process {pid} still runs after 3 s")


# A job that says it is ready, then runs until a release file appears (or 30 s pass).
WAIT_FOR_RELEASE = """
    import pathlib, sys, time
    here = pathlib.Path(sys.argv[0]).parent
    (here / "ready").write_text("ready")
    for _ in range(3000):
        if (here / "release").exists():
            break
        time.sleep(0.01)
    print("released")
"""

# A job that ignores SIGTERM (after noting it, and when it came), so only SIGKILL ends it.
IGNORES_SIGTERM = """
    import pathlib, signal, sys, time
    here = pathlib.Path(sys.argv[0]).parent
    def on_term(signum, frame):
        (here / "term_at").write_text(repr(time.time()))
        with open(here / "signals", "a") as f:
            f.write("TERM\\n")
    signal.signal(signal.SIGTERM, on_term)
    (here / "ready").write_text("ready")
    time.sleep(30)
"""


# -- outcomes --------------------------------------------------------------------------------


async def test_success_passes_glue_style_arguments(
    runner: ProcessRunner, tmp_path: Path, job_env: dict[str, str]
) -> None:
    out = tmp_path / "got.json"
    script = write_script(
        tmp_path,
        """
        import json, sys
        from awsglue.utils import getResolvedOptions
        args = getResolvedOptions(sys.argv, ["JOB_NAME", "greeting", "out"])
        with open(args["out"], "w") as f:
            json.dump({"args": args, "argv": sys.argv[1:]}, f)
        """,
    )
    started = time.time()
    handle = await launch_script(
        runner,
        "jr_ok",
        script,
        job_env,
        arguments={"--greeting": "hello world", "out": str(out)},
    )
    outcome = await handle.wait()

    assert outcome.kind is OutcomeKind.SUCCEEDED, outcome
    assert (outcome.exit_code, outcome.signal, outcome.message) == (0, None, "")
    assert outcome.started_at is not None
    assert outcome.ended_at is not None
    assert started <= outcome.started_at <= outcome.ended_at <= time.time()
    got = json.loads(out.read_text())
    assert got["argv"] == [
        "--JOB_NAME", "job-1", "--JOB_RUN_ID", "jr_ok",
        "--greeting", "hello world", "--out", str(out),
    ]  # fmt: skip
    assert got["args"]["JOB_NAME"] == "job-1"
    assert got["args"]["JOB_RUN_ID"] == "jr_ok"
    assert got["args"]["greeting"] == "hello world"


async def test_failure_message_is_the_stderr_tail(
    runner: ProcessRunner, tmp_path: Path, job_env: dict[str, str]
) -> None:
    script = write_script(
        tmp_path,
        """
        import sys
        for i in range(200):
            print(f"early noise line {i:04d} " + "x" * 40, file=sys.stderr)
        raise ValueError("boom")
        """,
    )
    handle = await launch_script(runner, "jr_fail", script, job_env)
    outcome = await handle.wait()

    assert outcome.kind is OutcomeKind.FAILED
    assert outcome.exit_code == 1
    assert outcome.signal is None
    assert outcome.message.endswith("ValueError: boom")
    assert "Traceback (most recent call last):" in outcome.message
    assert "early noise line 0000" not in outcome.message  # only the tail is kept
    assert 100 < len(outcome.message) <= 2100


@pytest.mark.parametrize(
    ("body", "exit_code", "signum", "message"),
    [
        ("import sys; sys.exit(3)", 3, None, "exit code 3"),
        (
            "import os, signal; os.kill(os.getpid(), signal.SIGKILL)",
            None,
            signal.SIGKILL,
            "killed by signal SIGKILL",
        ),
    ],
    ids=["exit-code", "signal"],
)
async def test_failure_without_stderr_says_how_it_ended(
    runner: ProcessRunner,
    tmp_path: Path,
    job_env: dict[str, str],
    body: str,
    exit_code: int | None,
    signum: int | None,
    message: str,
) -> None:
    script = write_script(tmp_path, body)
    outcome = await (await launch_script(runner, "jr_quiet", script, job_env)).wait()

    assert outcome == Outcome(
        kind=OutcomeKind.FAILED,
        exit_code=exit_code,
        signal=signum,
        message=message,
        started_at=outcome.started_at,
        ended_at=outcome.ended_at,
    )


async def test_output_log_holds_stdout_and_stderr(
    runner: ProcessRunner, tmp_path: Path, job_env: dict[str, str]
) -> None:
    script = write_script(
        tmp_path,
        """
        import sys, time
        print("to stdout", flush=True)
        sys.stderr.write("to ")
        sys.stderr.flush()
        time.sleep(0.05)  # the supervisor has read half a stderr line ...
        print("between", flush=True)  # ... when a stdout line lands
        sys.stderr.write("stderr\\n")
        print("stdout again")
        """,
    )
    outcome = await (await launch_script(runner, "jr_log", script, job_env)).wait()

    assert outcome.kind is OutcomeKind.SUCCEEDED
    lines = runner.log_path("jr_log").read_text().splitlines()
    # Whole lines, each stream in order; stderr passes through the supervisor, so where its
    # lines land among stdout's is not exact.
    assert sorted(lines) == ["between", "stdout again", "to stderr", "to stdout"]
    assert lines.index("to stdout") < lines.index("stdout again")
    assert runner.log_path("jr_log") == runner.runs_dir / "jr_log" / "output.log"


# -- stop and timeout ----------------------------------------------------------------------


async def test_timeout_sends_term_then_kill(
    runner: ProcessRunner, tmp_path: Path, job_env: dict[str, str]
) -> None:
    script = write_script(tmp_path, IGNORES_SIGTERM)
    deadline = time.time() + 1
    handle = await launch_script(runner, "jr_slow", script, job_env, deadline=deadline)
    outcome = await handle.wait()

    assert outcome.kind is OutcomeKind.TIMEOUT
    assert outcome.signal == signal.SIGKILL
    assert "SIGKILL" in outcome.message
    assert (tmp_path / "signals").read_text() == "TERM\n"  # TERM came first, and once
    # Timed against the deadline, not the launch (which a loaded machine makes slow): TERM not
    # before it, KILL not before the grace after it, and the KILL's end long before the job's
    # own 30 s sleep could have ended it (the upper margin is for a loaded machine; 0.1 s below
    # is for the supervisor's conversion of the deadline to its monotonic clock).
    assert float((tmp_path / "term_at").read_text()) >= deadline - 0.1
    assert outcome.ended_at is not None
    assert deadline + GRACE - 0.1 < outcome.ended_at < deadline + GRACE + 10


async def test_stop_ends_the_whole_process_group(
    runner: ProcessRunner, tmp_path: Path, job_env: dict[str, str]
) -> None:
    script = write_script(
        tmp_path,
        """
        import pathlib, subprocess, sys, time
        here = pathlib.Path(sys.argv[0]).parent
        child = subprocess.Popen(["sleep", "30"])
        (here / "ready").write_text(str(child.pid))
        time.sleep(30)
        """,
    )
    handle = await launch_script(runner, "jr_stop", script, job_env)
    grandchild = int(await wait_for_file(tmp_path / "ready"))

    assert handle.stop() is True
    outcome = await handle.wait()

    assert outcome.kind is OutcomeKind.STOPPED
    assert outcome.signal == signal.SIGTERM
    await wait_exited(grandchild)
    # Once the run has ended there is nothing left to signal.
    assert handle.stop() is False
    assert runner.stop("jr_stop") is False


async def test_runner_stop_by_run_id(
    runner: ProcessRunner, tmp_path: Path, job_env: dict[str, str]
) -> None:
    script = write_script(tmp_path, WAIT_FOR_RELEASE)
    handle = await launch_script(runner, "jr_stop2", script, job_env)
    await wait_for_file(tmp_path / "ready")

    assert runner.stop("jr_stop2") is True
    assert (await handle.wait()).kind is OutcomeKind.STOPPED
    assert runner.stop("jr_never_launched") is False


# -- launch errors -------------------------------------------------------------------------


def test_missing_script_is_a_launch_error(tmp_path: Path) -> None:
    with pytest.raises(LaunchError, match="no such file"):
        build_argv(pythonshell(tmp_path / "nope.py"), "j", "jr_1", {}, sys.executable)


@pytest.mark.parametrize(
    "location",
    ["s3://b/x.py", "http://example.com/x.py", "gs://b/x.py", "file://otherhost/x.py", "x.py"],
    # s3:// without an S3 root: see tests/unit/test_commands.py for the mapping.
)
def test_non_local_script_location_is_a_launch_error(location: str) -> None:
    with pytest.raises(LaunchError) as caught:
        build_argv(pythonshell(location), "j", "jr_1", {}, sys.executable)
    assert location in str(caught.value)


def test_non_local_script_location_message() -> None:
    with pytest.raises(LaunchError) as caught:
        build_argv(pythonshell("gs://b/x.py"), "j", "jr_1", {}, sys.executable)
    assert str(caught.value) == (
        "ScriptLocation gs://b/x.py is not a local path, a file:// URI or an s3:// path; "
        "this scheduler runs local scripts only"
    )


@pytest.mark.parametrize(
    ("command", "match"),
    [
        ({"Name": "gluestreaming", "ScriptLocation": "/x.py"}, "'gluestreaming' is not supported"),
        ({"ScriptLocation": "/x.py"}, "Command.Name None is not supported"),
        ({"Name": "pythonshell"}, "ScriptLocation is missing or empty"),
        ({"Name": "pythonshell", "ScriptLocation": ""}, "ScriptLocation is missing or empty"),
    ],
)
def test_bad_command_is_a_launch_error(command: dict[str, str], match: str) -> None:
    with pytest.raises(LaunchError, match=match):
        build_argv(command, "j", "jr_1", {}, sys.executable)


def test_build_argv_forms(tmp_path: Path) -> None:
    script = write_script(tmp_path, "pass\n", name="my job.py")
    uri = "file://" + str(script).replace(" ", "%20")
    argv = build_argv(
        {"Name": "pythonshell", "ScriptLocation": uri},
        "j",
        "jr_1",
        {"--a": "1", "b": "-2", "--c": ""},
        "python3",
    )
    assert argv == [
        "python3", str(script), "--JOB_NAME", "j", "--JOB_RUN_ID", "jr_1",
        "--a", "1", "--b", "-2", "--c", "",
    ]  # fmt: skip
    # Arguments a job or trigger stored before the catalog's rule may still hold: anything
    # argparse would read as the run's own name, run id or job id is refused at launch too.
    for arguments in (
        {"JOB_NAME": "other"},
        {"--JOB_N": "other"},
        {"--JOB_R": "jr_other"},
        {"--x=y": "1"},
        {"--x": "--JOB_NAME=other"},
    ):
        with pytest.raises(LaunchError, match=r"reserved|must not"):
            build_argv(pythonshell(script), "j", "jr_1", arguments, "python3")


async def test_bad_interpreter_is_a_launch_error_and_an_error_outcome(
    runner: ProcessRunner, tmp_path: Path
) -> None:
    script = write_script(tmp_path, "pass\n")
    argv = build_argv(pythonshell(script), "j", "jr_badpy", {}, str(tmp_path / "no-python"))
    with pytest.raises(LaunchError, match="No such file or directory"):
        await runner.launch("jr_badpy", argv, None)

    adopted = await runner.adopt("jr_badpy")
    assert isinstance(adopted, Outcome)
    assert adopted.kind is OutcomeKind.ERROR
    assert "no-python" in adopted.message


async def test_interpreter_that_is_not_executable_is_a_launch_error(
    runner: ProcessRunner, tmp_path: Path
) -> None:
    not_executable = tmp_path / "python"
    not_executable.write_text("#!/bin/sh\n")
    script = write_script(tmp_path, "pass\n")
    argv = build_argv(pythonshell(script), "j", "jr_noexec", {}, str(not_executable))
    with pytest.raises(LaunchError, match="Permission denied"):
        await runner.launch("jr_noexec", argv, None)


async def test_bad_run_id_is_rejected(runner: ProcessRunner) -> None:
    with pytest.raises(ValueError, match="cannot name a run directory"):
        await runner.launch("../escape", ["true"], None)


# -- one process per run -------------------------------------------------------------------


async def test_second_launch_of_a_run_does_not_start_it_again(
    runner: ProcessRunner, tmp_path: Path, job_env: dict[str, str]
) -> None:
    script = write_script(
        tmp_path,
        """
        import os, pathlib, sys, time
        here = pathlib.Path(sys.argv[0]).parent
        with open(here / "starts", "a") as f:
            f.write(f"{os.getpid()}\\n")
        time.sleep(0.3)
        """,
    )
    first, second = await asyncio.gather(
        launch_script(runner, "jr_twice", script, job_env),
        launch_script(runner, "jr_twice", script, job_env),
    )
    assert first.supervisor_pid == second.supervisor_pid
    outcomes = await asyncio.gather(first.wait(), second.wait())
    assert outcomes[0] == outcomes[1]
    assert outcomes[0].kind is OutcomeKind.SUCCEEDED

    # A launch after the run ended joins the finished run instead of running it again.
    third = await launch_script(runner, "jr_twice", script, job_env)
    assert await third.wait() == outcomes[0]
    assert len((tmp_path / "starts").read_text().splitlines()) == 1


async def test_supervisor_for_a_claimed_run_dir_starts_nothing(
    runner: ProcessRunner, tmp_path: Path, job_env: dict[str, str]
) -> None:
    script = write_script(tmp_path, WAIT_FOR_RELEASE)
    handle = await launch_script(runner, "jr_claimed", script, job_env)
    marker = tmp_path / "second-ran"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-I", "-S", str(SUPERVISOR_SCRIPT),
        "--run-dir", str(runner.run_dir("jr_claimed")),
        "--", "touch", str(marker),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await proc.communicate()
    assert out == b"busy\n"
    (tmp_path / "release").touch()
    assert (await handle.wait()).kind is OutcomeKind.SUCCEEDED
    assert not marker.exists()


# -- re-adoption after a restart -------------------------------------------------------------


async def test_adopted_run_finishes(
    runs_dir: Path, tmp_path: Path, job_env: dict[str, str]
) -> None:
    first = ProcessRunner(runs_dir, stop_grace=GRACE)
    script = write_script(tmp_path, WAIT_FOR_RELEASE)
    await launch_script(first, "jr_adopt", script, job_env)
    del first

    restarted = ProcessRunner(runs_dir, stop_grace=GRACE)
    handle = await restarted.adopt("jr_adopt")
    assert isinstance(handle, RunningProcess)
    assert handle.is_alive()
    (tmp_path / "release").touch()
    outcome = await handle.wait()

    assert outcome.kind is OutcomeKind.SUCCEEDED
    assert await restarted.adopt("jr_adopt") == outcome
    assert "released" in restarted.log_path("jr_adopt").read_text()


async def test_adopted_run_can_be_stopped(
    runs_dir: Path, tmp_path: Path, job_env: dict[str, str]
) -> None:
    first = ProcessRunner(runs_dir, stop_grace=GRACE)
    script = write_script(tmp_path, WAIT_FOR_RELEASE)
    await launch_script(first, "jr_adopt_stop", script, job_env)
    del first
    await wait_for_file(tmp_path / "ready")

    restarted = ProcessRunner(runs_dir, stop_grace=GRACE)
    handle = await restarted.adopt("jr_adopt_stop")
    assert isinstance(handle, RunningProcess)
    waiting = asyncio.create_task(handle.wait())
    assert restarted.stop("jr_adopt_stop") is True

    assert (await waiting).kind is OutcomeKind.STOPPED


async def test_adopted_run_times_out(
    runs_dir: Path, tmp_path: Path, job_env: dict[str, str]
) -> None:
    first = ProcessRunner(runs_dir, stop_grace=GRACE)
    script = write_script(tmp_path, IGNORES_SIGTERM)
    await launch_script(first, "jr_adopt_slow", script, job_env, deadline=time.time() + 1)
    del first

    restarted = ProcessRunner(runs_dir, stop_grace=GRACE)
    handle = await restarted.adopt("jr_adopt_slow")
    assert isinstance(handle, RunningProcess)
    outcome = await handle.wait()

    assert outcome.kind is OutcomeKind.TIMEOUT
    assert outcome.signal == signal.SIGKILL


async def test_adopt_unknown_run_is_none(runner: ProcessRunner) -> None:
    assert await runner.adopt("jr_unknown") is None


@pytest.mark.parametrize("how", ["exit", "kill-9"])
async def test_scheduler_exit_or_kill_does_not_end_the_run(
    runs_dir: Path, tmp_path: Path, job_env: dict[str, str], how: Literal["exit", "kill-9"]
) -> None:
    script = write_script(tmp_path, WAIT_FOR_RELEASE)
    argv = build_argv(pythonshell(script), "job-1", "jr_survive", {}, sys.executable)
    ended = await launch_then_end_scheduler(
        runs_dir, "jr_survive", argv, how, ready=tmp_path / "ready", env=job_env
    )

    adopted = await ProcessRunner(runs_dir).adopt("jr_survive")
    assert isinstance(adopted, RunningProcess)
    assert adopted.supervisor_pid == ended.supervisor_pid
    (tmp_path / "release").touch()
    assert (await adopted.wait()).kind is OutcomeKind.SUCCEEDED


async def test_killed_supervisor_gives_lost(
    runner: ProcessRunner, tmp_path: Path, job_env: dict[str, str]
) -> None:
    script = write_script(tmp_path, WAIT_FOR_RELEASE)
    handle = await launch_script(runner, "jr_lost", script, job_env)
    await wait_for_file(tmp_path / "ready")
    assert handle.job_pid is not None
    waiting = asyncio.create_task(handle.wait())

    os.kill(handle.supervisor_pid, signal.SIGKILL)
    outcome = await waiting

    assert outcome.kind is OutcomeKind.LOST
    assert "disappeared" in outcome.message
    assert "unknown" in outcome.message
    # The orphaned job is not left running beside a possible retry.
    await wait_exited(handle.job_pid)
    adopted = await ProcessRunner(runner.runs_dir).adopt("jr_lost")
    assert isinstance(adopted, Outcome)
    assert adopted.kind is OutcomeKind.LOST
