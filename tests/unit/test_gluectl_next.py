"""``gluectl triggers next``: a schedule's next fire times, computed locally (no service).

Every call points gluectl at an address where nothing listens and replaces GlueClient with one
that fails if it is ever built, so a passing test also shows that nothing was contacted.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from clients.gluectl import commands, triggers
from clients.gluectl.__main__ import main

NOWHERE = "127.0.0.1:1"


class _NoClient:
    def __init__(self, *args: object, **kwargs: object) -> None:
        raise AssertionError("triggers next must not open a GlueClient")


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(commands, "GlueClient", _NoClient)


def gluectl(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run gluectl; (exit status, stdout, stderr)."""
    capsys.readouterr()
    code = main(["--endpoint", NOWHERE, *argv])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err, captured.err
    return code, captured.out, captured.err


def rows(out: str) -> list[list[str]]:
    """A table's rows under its header, each as [date, time, weekday]."""
    header, *lines = out.splitlines()
    assert header.split() == ["Time", "(UTC)", "Weekday"]
    return [line.split() for line in lines]


def test_weekday_schedule_skips_the_weekend(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = gluectl(
        capsys, "triggers", "next", "cron(0/15 8-17 ? * MON-FRI *)", "--after", "2026-03-06T17:20Z"
    )
    assert (code, err) == (0, "")
    # Friday's last slots, then Monday morning: five by default.
    assert rows(out) == [
        ["2026-03-06", "17:30:00", "Fri"],
        ["2026-03-06", "17:45:00", "Fri"],
        ["2026-03-09", "08:00:00", "Mon"],
        ["2026-03-09", "08:15:00", "Mon"],
        ["2026-03-09", "08:30:00", "Mon"],
    ]


@pytest.mark.parametrize(
    ("expression", "after", "count", "expected"),
    [
        # Strictly after: a fire time equal to --after is not repeated.
        ("cron(0 12 * * ? *)", "2026-01-01T12:00:00Z", 2, ["2026-01-02 12:00", "2026-01-03 12:00"]),
        # Day-of-week 1 = Sunday; names in any case.
        ("cron(0 9 ? * sun *)", "2026-01-01", 2, ["2026-01-04 09:00", "2026-01-11 09:00"]),
        # Leap days only.
        ("cron(0 0 29 FEB ? *)", "2026-01-01", 2, ["2028-02-29 00:00", "2032-02-29 00:00"]),
        # The last weekday of the month; May 2026 ends on a Sunday.
        ("cron(30 18 LW * ? *)", "2026-05-01", 2, ["2026-05-29 18:30", "2026-06-30 18:30"]),
        # The third Friday.
        ("cron(0 6 ? * 6#3 *)", "2026-01-01", 2, ["2026-01-16 06:00", "2026-02-20 06:00"]),
        # An offset is honoured; a time without one is UTC.
        ("cron(0 * * * ? *)", "2026-03-01T09:30+02:00", 1, ["2026-03-01 08:00"]),
        ("cron(0 * * * ? *)", "2026-03-01T09:30", 1, ["2026-03-01 10:00"]),
    ],
)
def test_fire_times(
    capsys: pytest.CaptureFixture[str],
    expression: str,
    after: str,
    count: int,
    expected: list[str],
) -> None:
    code, out, err = gluectl(
        capsys, "triggers", "next", expression, "-n", str(count), "--after", after
    )
    assert (code, err) == (0, "")
    assert [f"{day} {time[:5]}" for day, time, _ in rows(out)] == expected


def test_default_start_is_now(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(triggers, "_now", lambda: datetime(2026, 2, 27, 23, 59, 30, tzinfo=UTC))
    code, out, _ = gluectl(capsys, "triggers", "next", "cron(0 0 1 * ? *)", "-n", "3")
    assert code == 0
    assert rows(out) == [
        ["2026-03-01", "00:00:00", "Sun"],
        ["2026-04-01", "00:00:00", "Wed"],
        ["2026-05-01", "00:00:00", "Fri"],
    ]


def test_json_output(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = gluectl(
        capsys, "-o", "json", "triggers", "next", " cron(0 12 ? * mon-wed *) ",
        "-n", "2", "--after", "2026-01-01",
    )  # fmt: skip
    assert (code, err) == (0, "")
    # The normalized expression, as the service stores it.
    assert json.loads(out) == {
        "Schedule": "cron(0 12 ? * MON-WED *)",
        "After": "2026-01-01T00:00:00+00:00",
        "FireTimes": ["2026-01-05T12:00:00+00:00", "2026-01-06T12:00:00+00:00"],
    }


def test_schedules_that_end(capsys: pytest.CaptureFixture[str]) -> None:
    # Fewer times than asked, and a note (not an error) saying so.
    code, out, err = gluectl(
        capsys, "triggers", "next", "cron(0 0 1 JAN ? 2026-2027)", "--after", "2026-06-01"
    )
    assert code == 0
    assert rows(out) == [["2027-01-01", "00:00:00", "Fri"]]
    assert err == "cron(0 0 1 JAN ? 2026-2027) never fires after 2027-01-01 00:00:00 UTC\n"

    code, out, err = gluectl(
        capsys, "-o", "json", "triggers", "next", "cron(0 0 30 2 ? *)", "--after", "2026-01-01"
    )
    assert code == 0
    assert json.loads(out)["FireTimes"] == []
    assert err == "cron(0 0 30 2 ? *) never fires after 2026-01-01 00:00:00 UTC\n"


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("cron(0 12 ? * 8 *)", "Day-of-week: 8 is out of range 1-7 (SUN-SAT)"),
        ("cron(60 12 * * ? *)", "Minutes: 60 is out of range 0-59"),
        ("cron(0 0 * * * *)", "Day-of-month and Day-of-week: exactly one of them must be '?'"),
        ("cron(0 12 * * ?)", "Schedule: expected 6 fields"),
        ("rate(5 minutes)", "Schedule: rate(...) expressions are EventBridge's, not Glue's"),
        ("cron(0 0 ? * MON * 2026)", "Schedule: expected 6 fields"),
        ("cron(0 0 ? FOO * *)", "Month: 'FOO' is not a number or a name, 1-12 (JAN-DEC)"),
    ],
)
def test_an_invalid_expression_is_one_line_and_exit_1(
    capsys: pytest.CaptureFixture[str], expression: str, message: str
) -> None:
    # The line CreateTrigger answers for the same expression: a failed operation (1), not a
    # usage error (2), whoever finds it.
    code, out, err = gluectl(capsys, "triggers", "next", expression, "--after", "2026-01-01")
    assert (code, out) == (1, "")
    assert err.startswith(f"gluectl: InvalidInputException: Schedule: {message}"), err
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["cron(0 12 * * ? *)", "-n", "0"],
        ["cron(0 12 * * ? *)", "-n", "many"],
        ["cron(0 12 * * ? *)", "--after", "tomorrow"],
        ["cron(0 12 * * ? *)", "cron(0 13 * * ? *)"],
    ],
)
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, out, err = gluectl(capsys, "triggers", "next", *argv)
    assert (code, out) == (2, "")
    # argparse reports an extra argument from the top-level parser.
    assert err.startswith("usage: gluectl")


def test_help_documents_the_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = gluectl(capsys, "triggers", "next", "--help")
    assert code == 0
    assert "no service is contacted" in out and "exits 1" in out
