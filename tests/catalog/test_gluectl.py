"""gluectl against the real services: every command, both output forms, every exit code.

``main`` runs ``asyncio.run`` itself, so it is called in a worker thread (the test's loop runs
the services); one test runs the installed console script as a real process.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
from datetime import datetime
from pathlib import Path

import pytest

from clients.gluectl.__main__ import main
from clients.gluectl.output import short_run_id
from tests.catalog.conftest import RUN_ID, UNREACHABLE, Gluectl, Result
from tests.conftest import Stack
from tests.helpers.scripts import ECHO_ARGS, FAIL, SLEEP, SUCCEED, write_script

GLUECTL = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "gluectl"


def _json_job(result: Result) -> dict[str, object]:
    assert result.code == 0, result.err
    job = result.json()["Job"]
    assert isinstance(job, dict)
    return job


# -- jobs ------------------------------------------------------------------------------------


async def test_job_lifecycle(
    gluectl: Gluectl, stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = write_script(tmp_path, "etl.py", SUCCEED)
    monkeypatch.chdir(tmp_path)  # a relative --script is stored as an absolute path
    created = await gluectl(
        "jobs", "create", "etl", "--script", "etl.py",
        "--arg", "day=mon", "--arg=--region=eu", "--arg", "empty=",
        "--non-overridable-arg", "env=prod",
        "--timeout-minutes", "10", "--max-retries", "1", "--max-concurrent-runs", "3",
        "--description", "nightly load", "--tag", "team=data",
    )  # fmt: skip
    assert (created.code, created.out, created.err) == (0, "etl\n", "")

    job = _json_job(await gluectl("-o", "json", "jobs", "get", "etl"))
    assert job["Name"] == "etl"
    # PythonVersion: AWS's default, filled in (docs/glue-fidelity.md).
    assert job["Command"] == {
        "Name": "pythonshell",
        "ScriptLocation": str(script),
        "PythonVersion": "3",
    }
    assert job["DefaultArguments"] == {"--day": "mon", "--region": "eu", "--empty": ""}
    assert job["NonOverridableArguments"] == {"--env": "prod"}
    assert (job["Timeout"], job["MaxRetries"]) == (10, 1)
    assert job["ExecutionProperty"] == {"MaxConcurrentRuns": 3}
    assert job["Description"] == "nightly load"
    assert job["Role"] == "arn:aws:iam::000000000000:role/gluectl"
    assert isinstance(job["CreatedOn"], str)
    assert datetime.fromisoformat(job["CreatedOn"]).utcoffset() is not None

    table = await gluectl("jobs", "get", "etl")
    assert table.code == 0
    lines = table.out.splitlines()
    assert re.search(
        r"^Command\.ScriptLocation +" + re.escape(str(script)) + "$", table.out, re.MULTILINE
    )
    assert any(re.fullmatch(r"DefaultArguments\.--day +mon", line) for line in lines)
    assert any(
        re.fullmatch(r"CreatedOn +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", line) for line in lines
    )

    # -o is accepted after the command too.
    await gluectl("jobs", "create", "other", "--script", str(script), "--tag", "team=web")
    assert (await gluectl("jobs", "list", "-o", "json")).json() == {"JobNames": ["etl", "other"]}
    tagged = await gluectl("-o", "json", "jobs", "list", "--tag", "team=data")
    assert tagged.json() == {"JobNames": ["etl"]}
    assert (await gluectl("-o", "json", "jobs", "list", "--tag", "team=ops")).json() == {
        "JobNames": []
    }
    listing = (await gluectl("jobs", "list")).out.splitlines()
    assert listing[0].split() == ["Name", "Command", "Last", "run", "Started", "Script"]
    assert [line.split()[:2] for line in listing[1:]] == [
        ["etl", "pythonshell"],
        ["other", "pythonshell"],
    ]
    # The script path, or as much of its end as fits in 100 columns.
    for line in listing[1:]:
        shown = line.split()[-1]
        assert shown == str(script) or (str(script).endswith(shown[1:]) and shown[0] == "…")

    # Update applies the flags over the current definition: everything else is kept.
    updated = await gluectl(
        "jobs", "update", "etl", "--arg", "day=tue", "--description", "changed",
        "--max-retries", "0",
    )  # fmt: skip
    assert (updated.code, updated.out) == (0, "etl\n")
    job = _json_job(await gluectl("-o", "json", "jobs", "get", "etl"))
    assert job["DefaultArguments"] == {"--day": "tue", "--region": "eu", "--empty": ""}
    assert (job["Description"], job["MaxRetries"], job["Timeout"]) == ("changed", 0, 10)
    assert job["NonOverridableArguments"] == {"--env": "prod"}
    assert job["ExecutionProperty"] == {"MaxConcurrentRuns": 3}
    assert job["LastModifiedOn"] != job["CreatedOn"]
    # Tags are not part of a definition, so an update leaves them alone.
    tagged = await gluectl("-o", "json", "jobs", "list", "--tag", "team=data")
    assert tagged.json() == {"JobNames": ["etl"]}

    deleted = await gluectl("-o", "json", "jobs", "delete", "etl")
    assert (deleted.code, deleted.json()) == (0, {"JobName": "etl"})
    missing = await gluectl("jobs", "get", "etl")
    assert (missing.code, missing.out) == (1, "")
    assert missing.err == "gluectl: EntityNotFoundException: Job etl not found.\n"
    # Deleting what does not exist succeeds, as in Glue.
    assert (await gluectl("jobs", "delete", "etl")).code == 0


async def test_jobs_from_json(
    gluectl: Gluectl, stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    script = write_script(tmp_path, "s.py", SUCCEED)
    request = {
        "Name": "ignored",
        "Role": "arn:aws:iam::123456789012:role/etl",
        "Command": {"Name": "pythonshell", "ScriptLocation": str(script), "PythonVersion": "3.9"},
        "DefaultArguments": {"--day": "mon", "--region": "eu"},
        "Timeout": 30,
        "Tags": {"team": "data"},
    }
    source = tmp_path / "create.json"
    source.write_text(json.dumps(request))
    created = await gluectl(
        "jobs", "create", "fromfile", "--from-json", str(source), "--arg", "day=tue"
    )
    assert (created.code, created.out) == (0, "fromfile\n"), created.err
    job = _json_job(await gluectl("-o", "json", "jobs", "get", "fromfile"))
    assert job["Role"] == request["Role"] and job["Timeout"] == 30
    assert job["Command"] == request["Command"]
    assert job["DefaultArguments"] == {"--day": "tue", "--region": "eu"}
    assert (await gluectl("-o", "json", "jobs", "list", "--tag", "team=data")).json() == {
        "JobNames": ["fromfile"]
    }

    # A `jobs get` document clones a job (its read-only members are dropped), read from stdin.
    dump = await gluectl("-o", "json", "jobs", "get", "fromfile")
    monkeypatch.setattr("sys.stdin", io.StringIO(dump.out))
    assert (await gluectl("jobs", "create", "clone", "--from-json", "-")).code == 0
    clone = _json_job(await gluectl("-o", "json", "jobs", "get", "clone"))
    for member in ("Command", "DefaultArguments", "Role", "Timeout"):
        assert clone[member] == job[member]

    # An UpdateJob request replaces the whole definition: members it leaves out are reset.
    update = {
        "JobName": "fromfile",
        "JobUpdate": {
            "Role": "r2",
            "Command": {"Name": "pythonshell", "ScriptLocation": str(script)},
        },
    }
    (tmp_path / "update.json").write_text(json.dumps(update))
    updated = await gluectl(
        "jobs", "update", "fromfile", "--from-json", str(tmp_path / "update.json"),
        "--max-retries", "2",
    )  # fmt: skip
    assert updated.code == 0, updated.err
    job = _json_job(await gluectl("-o", "json", "jobs", "get", "fromfile"))
    assert job["Role"] == "r2" and job["MaxRetries"] == 2
    assert "DefaultArguments" not in job and job["Timeout"] == 2880

    # Unusable files are usage errors, caught before anything is sent.
    (tmp_path / "typo.json").write_text(json.dumps({**request, "Timout": 5}))
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "type.json").write_text(json.dumps({**request, "Timeout": "30"}))
    for argv, message in [
        (["--from-json", str(tmp_path / "typo.json")], "no member 'Timout'"),
        (["--from-json", str(tmp_path / "bad.json")], "is not valid JSON"),
        (["--from-json", str(tmp_path / "type.json")], "CreateJobRequest.Timeout: "),
        (["--from-json", str(tmp_path / "missing.json")], "cannot read"),
        (["--role", "r"], "--script is required"),
    ]:
        result = await gluectl("jobs", "create", "never", *argv)
        assert result.code == 2, argv
        assert message in result.err and result.err.startswith("usage: gluectl jobs create")
    assert (await gluectl("jobs", "get", "never")).code == 1

    # The service's own validation is an operation failure (1), in one line.
    invalid = await gluectl("jobs", "create", "bad", "--script", str(script), "--max-retries", "-1")
    assert invalid.code == 1
    assert invalid.err.startswith("gluectl: InvalidInputException: MaxRetries")
    assert invalid.err.count("\n") == 1


# -- runs ------------------------------------------------------------------------------------


async def test_run_lifecycle(gluectl: Gluectl, stack: Stack, tmp_path: Path) -> None:
    await gluectl(
        "jobs", "create", "echo", "--script", str(write_script(tmp_path, "e.py", ECHO_ARGS)),
        "--arg", "day=mon", "--max-concurrent-runs", "5",
    )  # fmt: skip
    started = await gluectl("runs", "start", "echo", "--arg", "day=tue", "--arg=--extra=1")
    assert started.code == 0 and started.err == ""
    run_id = started.out.strip()
    assert RUN_ID.match(run_id)

    waited = await gluectl("runs", "wait", "echo", run_id)
    assert waited.code == 0, waited.err
    header, row = waited.out.splitlines()
    assert header.split() == ["Id", "State", "Attempt", "Started", "Duration", "Error"]
    assert row.split()[:3] == [short_run_id(run_id), "SUCCEEDED", "0"]
    assert waited.err.splitlines()[-1] == f"{run_id}: SUCCEEDED"

    got = await gluectl("-o", "json", "runs", "get", "echo", run_id)
    run = got.json()["JobRun"]
    assert isinstance(run, dict)
    assert run["Id"] == run_id and run["JobRunState"] == "SUCCEEDED"
    assert run["Arguments"] == {"--day": "tue", "--extra": "1"}
    assert datetime.fromisoformat(run["CompletedOn"]) >= datetime.fromisoformat(run["StartedOn"])
    details = (await gluectl("runs", "get", "echo", run_id)).out
    assert re.search(r"^JobRunState +SUCCEEDED$", details, re.MULTILINE)
    assert re.search(r"^Arguments\.--day +tue$", details, re.MULTILINE)

    second = (await gluectl("-o", "json", "runs", "start", "echo")).json()["JobRunId"]
    assert isinstance(second, str) and RUN_ID.match(second)
    await stack.wait_run("echo", second)
    listed = (await gluectl("runs", "list", "echo")).out.splitlines()
    assert [line.split()[0] for line in listed[1:]] == [short_run_id(second), short_run_id(run_id)]
    # Shortened ids are jr_ and 12 hex digits; --full-ids prints them whole.
    assert short_run_id(run_id) == run_id[:15] + "…"
    whole = (await gluectl("--full-ids", "runs", "list", "echo")).out.splitlines()
    assert [line.split()[0] for line in whole[1:]] == [second, run_id]
    newest = (await gluectl("-o", "json", "runs", "list", "echo", "--max", "1")).json()
    assert [r["Id"] for r in newest["JobRuns"]] == [second]  # type: ignore[attr-defined]

    log = await gluectl("logs", "echo", run_id)
    assert (log.code, log.err) == (0, "")
    assert "hello from echo" in log.out


async def test_start_wait_and_failed_runs(gluectl: Gluectl, stack: Stack, tmp_path: Path) -> None:
    await gluectl("jobs", "create", "fails", "--script", str(write_script(tmp_path, "f.py", FAIL)))
    result = await gluectl("runs", "start", "fails", "--wait")
    assert result.code == 4
    run_id, _header, row = result.out.splitlines()
    assert RUN_ID.match(run_id)
    assert row.split()[:3] == [short_run_id(run_id), "FAILED", "0"]
    assert row.endswith("ValueError: bad input row 42")
    assert result.err.splitlines()[-1] == (
        f"gluectl: run {run_id} ended FAILED: ValueError: bad input row 42"
    )
    assert (await gluectl("runs", "wait", "fails", run_id)).code == 4

    # With -o json, stdout is one document: the run as it ended.
    as_json = await gluectl("-o", "json", "runs", "start", "fails", "--wait", "--retry-of", run_id)
    assert as_json.code == 4
    run = as_json.json()["JobRun"]
    assert isinstance(run, dict)
    assert run["JobRunState"] == "FAILED" and run["PreviousRunId"] == run_id
    assert "bad input row 42" in run["ErrorMessage"]

    await gluectl("jobs", "create", "ok", "--script", str(write_script(tmp_path, "s.py", SUCCEED)))
    ok = await gluectl("runs", "start", "ok", "--wait", "--timeout-minutes", "5")
    assert ok.code == 0, ok.err
    run_id = ok.out.splitlines()[0]
    assert (await stack.get_run("ok", run_id)).timeout == 5


async def test_stop_and_wait_timeout(gluectl: Gluectl, stack: Stack, tmp_path: Path) -> None:
    await gluectl(
        "jobs", "create", "long", "--script", str(write_script(tmp_path, "l.py", SLEEP)),
        "--max-concurrent-runs", "2",
    )  # fmt: skip
    first = (await gluectl("runs", "start", "long")).out.strip()
    second = (await gluectl("runs", "start", "long")).out.strip()
    await stack.wait_run("long", first, {"RUNNING"})

    gave_up = await gluectl("runs", "wait", "long", first, "--max-wait", "0.3")
    assert (gave_up.code, gave_up.out) == (1, "")
    assert gave_up.err.splitlines()[-1] == (
        f"gluectl: Job run {first} of job long is still RUNNING after waiting 0.3s."
    )

    unknown = "jr_" + "0" * 64
    stopped = await gluectl("runs", "stop", "long", first, unknown)
    assert stopped.code == 1
    rows = [line.split(None, 1) for line in stopped.out.splitlines()]
    assert rows[0] == ["JobRunId", "Result"]
    assert rows[1] == [short_run_id(first), "stopping"]
    assert rows[2][0] == short_run_id(unknown) and rows[2][1].startswith(
        "EntityNotFoundException: "
    )
    assert stopped.err == "gluectl: 1 of 2 runs could not be stopped\n"
    ended = await gluectl("runs", "wait", "long", first)
    assert ended.code == 4 and ended.out.splitlines()[1].split()[1] == "STOPPED"

    as_json = await gluectl("-o", "json", "runs", "stop", "long", second)
    assert as_json.code == 0
    assert as_json.json() == {
        "SuccessfulSubmissions": [{"JobName": "long", "JobRunId": second}],
        "Errors": [],
    }
    assert (await stack.wait_run("long", second)).job_run_state == "STOPPED"


async def test_logs_follow_until_the_run_ends(
    gluectl: Gluectl, stack: Stack, tmp_path: Path
) -> None:
    await gluectl(
        "jobs", "create", "slow", "--script", str(write_script(tmp_path, "s.py", SLEEP)),
        "--arg", "seconds=0.5",
    )  # fmt: skip
    run_id = (await gluectl("runs", "start", "slow")).out.strip()
    followed = await gluectl("logs", "slow", run_id, "-f")
    assert (followed.code, followed.out) == (0, "sleeping\nwoke\n")
    # The catalog learns that the run ended from the scheduler's events, so it may lag the
    # end of the stream by a moment.
    assert (await stack.wait_run("slow", run_id, timeout=5)).job_run_state == "SUCCEEDED"
    # JSON output does not apply to a log: it is the process's bytes.
    assert (await gluectl("-o", "json", "logs", "slow", run_id)).out == "sleeping\nwoke\n"


# Stdout and stderr lines that alternate in time, the run lasting long enough to be followed.
TWO_STREAMS = """
import sys, time
for i in range(3):
    print(f"out {i}", flush=True)
    print(f"err {i}", file=sys.stderr, flush=True)
    time.sleep(0.15)
"""


async def test_logs_interleave_both_streams_or_print_one(
    gluectl: Gluectl, stack: Stack, tmp_path: Path
) -> None:
    script = write_script(tmp_path, "two.py", TWO_STREAMS)
    await gluectl("jobs", "create", "two", "--script", str(script))
    run_id = (await gluectl("runs", "start", "two")).out.strip()
    # Followed while it runs, one stream only: the other's bytes are skipped, none repeated.
    errors = await gluectl("logs", "two", run_id, "-f", "--stream", "stderr")
    assert (errors.code, errors.out) == (0, "err 0\nerr 1\nerr 2\n")
    both = await gluectl("logs", "two", run_id)
    assert both.out == "".join(f"out {i}\nerr {i}\n" for i in range(3))
    assert (await gluectl("logs", "two", run_id, "--stream", "stdout")).out == (
        "out 0\nout 1\nout 2\n"
    )
    refused = await gluectl("logs", "two", run_id, "--stream", "both")
    assert refused.code != 0 and "--stream" in refused.err


async def test_unknown_jobs_and_runs_fail_with_one_line(gluectl: Gluectl, stack: Stack) -> None:
    unknown_run = "jr_" + "0" * 64
    for argv in [
        ("runs", "start", "nope"),
        ("runs", "list", "nope"),
        ("runs", "get", "nope", unknown_run),
        ("runs", "wait", "nope", unknown_run),
        ("logs", "nope", unknown_run),
        ("jobs", "update", "nope", "--description", "x"),
    ]:
        result = await gluectl(*argv)
        assert (result.code, result.out) == (1, ""), argv
        assert result.err == "gluectl: EntityNotFoundException: Job nope not found.\n", argv
    await stack.create_job("j", Path("/nonexistent/x.py"))
    result = await gluectl("runs", "get", "j", unknown_run)
    assert (
        result.err
        == f"gluectl: EntityNotFoundException: Job run {unknown_run} of job j not found.\n"
    )


# -- without a service -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["jobs"],
        ["frobnicate"],
        ["jobs", "create"],
        ["jobs", "create", "x", "--script", "s.py", "--arg", "novalue"],
        ["jobs", "update", "x", "--tag", "a=b"],
        ["-o", "xml", "jobs", "list"],
        ["--call-timeout", "0", "jobs", "list"],
        ["--timeout", "5", "jobs", "list"],
        ["runs", "list", "j", "--max", "0"],
        ["runs", "stop", "j"],
        ["runs", "wait", "j", "r", "--max-wait", "soon"],
        ["runs", "wait", "j", "r", "--timeout", "5"],
        ["-o", "json", "runs", "start", "j", "--follow"],
        ["jobs", "create", "x", "--timeout", "5", "--script", "s.py"],
    ],
)
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--endpoint", UNREACHABLE, *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "usage: gluectl" in captured.err
    assert "Traceback" not in captured.err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "exit codes:" in out and "GLUECTL_ENDPOINT" in out


@pytest.mark.parametrize(
    "argv",
    [["jobs", "list"], ["runs", "start", "j"], ["logs", "j", "r", "-f"], ["jobs", "get", "j"]],
)
def test_unreachable_endpoint_exits_3(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--endpoint", UNREACHABLE, *argv]) == 3
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"gluectl: the Glue service at {UNREACHABLE} is unreachable")
    assert captured.err.count("\n") == 1


# -- the installed command -------------------------------------------------------------------


async def _run_console_script(*argv: str, env: dict[str, str]) -> Result:
    process = await asyncio.create_subprocess_exec(
        str(GLUECTL),
        *argv,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    result = Result(process.returncode, out.decode(), err.decode())
    assert "Traceback" not in result.err, result.err
    return result


async def test_console_script_end_to_end(stack: Stack, tmp_path: Path) -> None:
    assert stack.catalog is not None
    # The endpoint comes from the environment here, as a deployment would set it.
    env = {**os.environ, "GLUECTL_ENDPOINT": f"127.0.0.1:{stack.catalog.port}"}
    script = write_script(tmp_path, "job.py", ECHO_ARGS)
    created = await _run_console_script(
        "jobs", "create", "e2e", "--script", str(script), "--arg", "day=mon", env=env
    )
    assert (created.code, created.out) == (0, "e2e\n"), created.err

    started = await _run_console_script("runs", "start", "e2e", "--wait", env=env)
    assert started.code == 0, started.err
    run_id = started.out.splitlines()[0]
    assert RUN_ID.match(run_id)
    assert "SUCCEEDED" in started.out.splitlines()[2]

    log = await _run_console_script("logs", "e2e", run_id, env=env)
    assert log.code == 0 and "hello from e2e" in log.out

    await _run_console_script(
        "jobs", "create", "bad", "--script", str(write_script(tmp_path, "f.py", FAIL)), env=env
    )
    failed = await _run_console_script("runs", "start", "bad", "--wait", env=env)
    assert failed.code == 4 and "ended FAILED" in failed.err

    missing = await _run_console_script("jobs", "get", "nope", env=env)
    assert (missing.code, missing.err) == (
        1,
        "gluectl: EntityNotFoundException: Job nope not found.\n",
    )
    usage = await _run_console_script("runs", "start", env=env)
    assert usage.code == 2
    down = await _run_console_script("--endpoint", UNREACHABLE, "jobs", "list", env=env)
    assert down.code == 3 and "unreachable" in down.err
