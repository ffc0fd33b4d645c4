"""gluectl waiting for runs: retries followed to the final attempt, the log streamed while
waiting; and what every table promises: at most 100 columns, shortened run ids."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from clients.gluectl.__main__ import main
from clients.gluectl.commands import gluectl_version
from clients.gluectl.output import TABLE_WIDTH, short_run_id
from tests.catalog.conftest import RUN_ID, Gluectl
from tests.conftest import Stack
from tests.helpers.scripts import FAIL, SLEEP, write_script

# Each failed attempt says which one it was, so a log shows that both ran.
FAILS_WITH_ATTEMPT = """
import sys
run_id = sys.argv[sys.argv.index("--JOB_RUN_ID") + 1]
print(f"attempt of {run_id}", flush=True)
print("ValueError: bad input row 42", file=sys.stderr)
sys.exit(3)
"""

# gluectl's note on stderr for each retry: the failed run, the new attempt's number and id.
RETRYING = re.compile(r"^(\S+) FAILED; retrying as attempt (\d): (\S+)$", re.MULTILINE)


@pytest.mark.scheduler_settings(retry_backoff_seconds=0.1)
async def test_start_wait_follows_retries_to_the_final_attempt(
    gluectl: Gluectl, stack: Stack, tmp_path: Path
) -> None:
    script = write_script(tmp_path, "f.py", FAILS_WITH_ATTEMPT)
    await gluectl("jobs", "create", "flaky", "--script", str(script), "--max-retries", "2")

    result = await gluectl("runs", "start", "flaky", "--wait")
    assert result.code == 4, result.err
    first = result.out.splitlines()[0]
    assert RUN_ID.match(first)
    retries = RETRYING.findall(result.err)
    assert [(failed, n) for failed, n, _ in retries] == [(first, "1"), (retries[0][2], "2")]
    last = retries[1][2]
    # The table shows the final attempt, and the one error line names it.
    assert result.out.splitlines()[2].split()[:3] == [short_run_id(last), "FAILED", "2"]
    assert (
        result.err.splitlines()[-1]
        == f"gluectl: run {last} ended FAILED: ValueError: bad input row 42"
    )
    final = await stack.get_run("flaky", last)
    assert (final.attempt, final.previous_run_id) == (2, retries[1][0])

    # `runs wait` on the first attempt follows the same chain; -o json prints the last one.
    waited = await gluectl("-o", "json", "runs", "wait", "flaky", first)
    assert waited.code == 4
    assert waited.json()["JobRun"]["Id"] == last

    # --follow: each attempt's log, in order, between the run id and the outcome.
    followed = await gluectl("runs", "start", "flaky", "--follow")
    assert followed.code == 4, followed.err
    run_id, *log_and_table = followed.out.splitlines()
    attempts = [line.removeprefix("attempt of ") for line in log_and_table if "attempt of" in line]
    assert len(attempts) == 3 and attempts[0] == run_id, (followed.out, followed.err)
    assert attempts[1:] == [retry for _, _, retry in RETRYING.findall(followed.err)]


async def test_follow_prints_the_log_while_waiting(
    gluectl: Gluectl, stack: Stack, tmp_path: Path
) -> None:
    await gluectl(
        "jobs", "create", "slow", "--script", str(write_script(tmp_path, "s.py", SLEEP)),
        "--arg", "seconds=0.5",
    )  # fmt: skip
    result = await gluectl("runs", "start", "slow", "--follow")
    assert result.code == 0, result.err
    run_id, sleeping, woke, header, row = result.out.splitlines()
    assert RUN_ID.match(run_id)
    assert (sleeping, woke) == ("sleeping", "woke")
    assert header.split()[:2] == ["Id", "State"]
    assert row.split()[:2] == [short_run_id(run_id), "SUCCEEDED"]

    # --max-wait gives up (exit 1) while the log is still being followed.
    await gluectl("jobs", "update", "slow", "--arg", "seconds=30")
    gave_up = await gluectl("runs", "start", "slow", "--follow", "--max-wait", "0.5")
    assert gave_up.code == 1
    assert gave_up.out.splitlines()[1:] == ["sleeping"]
    assert re.fullmatch(
        r"gluectl: Job run \S+ of job slow is still RUNNING after waiting 0\.5s\.",
        gave_up.err.splitlines()[-1],
    )
    left = gave_up.out.splitlines()[0]
    assert (await gluectl("runs", "stop", "slow", left)).code == 0
    assert (await stack.wait_run("slow", left, timeout=10)).job_run_state == "STOPPED"


async def test_tables_fit_100_columns(gluectl: Gluectl, stack: Stack, tmp_path: Path) -> None:
    deep = tmp_path.joinpath(*["a-rather-long-directory-name"] * 4)
    deep.mkdir(parents=True)
    script = write_script(
        deep, "fails_with_a_long_name.py", FAIL.replace("row 42", "row " + "9" * 80)
    )
    await gluectl("jobs", "create", "long", "--script", str(script))
    assert (await gluectl("runs", "start", "long", "--wait")).code == 4
    for argv in (("jobs", "list"), ("runs", "list", "long"), ("--full-ids", "jobs", "list")):
        out = (await gluectl(*argv)).out
        assert max(len(line) for line in out.splitlines()) <= TABLE_WIDTH, out
    # A cut path keeps its end (the script's file name), a cut error its start (the exception).
    job_row = (await gluectl("jobs", "list")).out.splitlines()[1]
    assert len(job_row) == TABLE_WIDTH and "  …" in job_row
    assert job_row.endswith("-long-directory-name/fails_with_a_long_name.py")
    run_row = (await gluectl("runs", "list", "long")).out.splitlines()[1]
    assert re.search(r"  ValueError: bad input row 9+…$", run_row), run_row


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    out = capsys.readouterr().out
    assert out == f"gluectl {gluectl_version()}\n"
    assert re.fullmatch(r"gluectl \d+\.\d+\.\d+\S*\n", out)


def test_shell_completion_answers_from_the_parser(tmp_path: Path) -> None:
    # What bash's hook does once `register-python-argcomplete gluectl` is eval'ed: run the
    # command with the line so far in the environment; the answer comes back on fd 8.
    gluectl = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "gluectl"
    answers = tmp_path / "answers"

    def complete(line: str) -> set[str]:
        env = {
            **os.environ,
            "_ARGCOMPLETE": "1",
            "_ARGCOMPLETE_IFS": "\n",
            "COMP_LINE": line,
            "COMP_POINT": str(len(line)),
        }
        done = subprocess.run(
            ["bash", "-c", f'"{gluectl}" 8>"{answers}" 9>/dev/null'],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        assert done.returncode == 0, done.stderr
        return set(answers.read_text().split())

    assert complete("gluectl runs li") == {"list"}
    assert {"--state", "--since"} <= complete("gluectl runs list --s")
    assert "--full-ids" in complete("gluectl --f")
