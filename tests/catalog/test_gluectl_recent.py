"""gluectl's views across jobs (GetRecentJobRuns): `runs list` without a job or with filters,
and `jobs list` with each job's last run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from clients.gluectl.__main__ import main
from clients.gluectl.output import short_run_id
from tests.catalog.conftest import UNREACHABLE, Gluectl
from tests.conftest import Stack
from tests.helpers.scripts import FAIL, SUCCEED, write_script


async def _start_and_wait(gluectl: Gluectl, job: str) -> str:
    started = await gluectl("runs", "start", job, "--wait")
    assert started.code in (0, 4), started.err
    return started.out.splitlines()[0]


async def test_runs_across_jobs_and_jobs_with_their_last_run(
    gluectl: Gluectl, stack: Stack, tmp_path: Path
) -> None:
    ok, fails = write_script(tmp_path, "ok.py", SUCCEED), write_script(tmp_path, "f.py", FAIL)
    await gluectl("jobs", "create", "a", "--script", str(ok))
    await gluectl("jobs", "create", "b", "--script", str(fails))
    await gluectl("jobs", "create", "idle", "--script", str(ok))
    a1 = await _start_and_wait(gluectl, "a")
    b1 = await _start_and_wait(gluectl, "b")
    a2 = await _start_and_wait(gluectl, "a")
    await gluectl("triggers", "create", "kick", "--on-demand", "--action", "b")
    (b2,) = (await gluectl("triggers", "fire", "kick")).out.split()
    assert (await stack.wait_run("b", b2)).job_run_state == "FAILED"

    listed = (await gluectl("runs", "list")).table()
    assert listed[0] == ["Job", "Id", "State", "Attempt", "Started", "Duration", "Error"]
    assert [row[:3] for row in listed[1:]] == [
        ["b", short_run_id(b2), "FAILED"],
        ["a", short_run_id(a2), "SUCCEEDED"],
        ["b", short_run_id(b1), "FAILED"],
        ["a", short_run_id(a1), "SUCCEEDED"],
    ]

    async def ids(*argv: str) -> list[str]:
        result = await gluectl("-o", "json", "runs", "list", *argv)
        assert result.code == 0, result.err
        return [run["Id"] for run in result.json()["JobRuns"]]

    assert await ids("--state", "failed") == [b2, b1]
    assert await ids("--state", "FAILED", "--state", "SUCCEEDED", "--max", "3") == [b2, a2, b1]
    assert await ids("--trigger", "kick") == [b2]
    assert await ids("--since", "1h") == [b2, a2, b1, a1]
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert await ids("--since", future) == []
    # A job and a filter: that job's runs only, through the same listing.
    assert await ids("a", "--state", "SUCCEEDED") == [a2, a1]
    assert await ids("b", "--trigger", "kick") == [b2]
    # A job alone: GetJobRuns, as before (every run; an unknown job is an error).
    assert await ids("a") == [a2, a1]
    assert (await gluectl("runs", "list", "nope")).code == 1

    jobs = (await gluectl("jobs", "list")).table()
    assert jobs[0] == ["Name", "Command", "Last run", "Started", "Script"]
    by_name = {row[0]: row for row in jobs[1:]}
    assert by_name["a"][2] == "SUCCEEDED" and by_name["b"][2] == "FAILED"
    assert by_name["idle"][2:4] == ["-", "-"]
    a2_run = await stack.get_run("a", a2)
    assert by_name["a"][3] == a2_run.started_on.ToDatetime(UTC).strftime("%Y-%m-%d %H:%M:%S")


@pytest.mark.parametrize("since", ["yesterday", "5y", "1.5h"])
def test_since_must_be_an_age_or_a_time(since: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--endpoint", UNREACHABLE, "runs", "list", "--since", since]) == 2
    assert "expected an age such as 90m, 12h, 7d" in capsys.readouterr().err
