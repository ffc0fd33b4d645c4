"""Glue cron schedules: shared test vectors, edge cases, errors, an APScheduler cross-check."""

from __future__ import annotations

import json
import pickle
import random
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from apscheduler.triggers.cron import CronTrigger

from glue_vocabulary.cron import CronSchedule, InvalidScheduleError, parse_schedule

# A copy of the project's shared vectors (tests/data/README.md says where from).
VECTORS_PATH = Path(__file__).resolve().parents[1] / "data" / "glue-cron-vectors.json"


def _load_vectors() -> dict[str, Any] | None:
    try:
        return json.loads(VECTORS_PATH.read_text())  # type: ignore[no-any-return]
    except FileNotFoundError:
        return None


_VECTORS = _load_vectors()
_MISSING = f"Glue cron test vectors not found at {VECTORS_PATH}"


def _vector_params(kind: str) -> list[Any]:
    # A missing file must fail the run, not skip it (an empty parametrize would skip), so it
    # becomes one case that fails with the reason.
    if _VECTORS is None:
        return [pytest.param(None, id="vector-file-missing")]
    return [pytest.param(case, id=case["expression"]) for case in _VECTORS[kind]]


def utc(text: str) -> datetime:
    """An aware UTC datetime from 'YYYY-MM-DD HH:MM[:SS[.ffffff]]'."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


END = "end"
"""Marks, in an expected list of fire times, that the schedule then never fires again."""


def fires(expression: str, after: str, n: int) -> list[str]:
    """The next `n` fire times as 'YYYY-MM-DD HH:MM' strings, then END if there are fewer."""
    times = parse_schedule(expression).next_fire_times(utc(after), n)
    shown = [t.strftime("%Y-%m-%d %H:%M") for t in times]
    return shown if len(shown) == n else [*shown, END]


# --- The shared vectors ------------------------------------------------------------------------


def test_vector_file_is_present_and_not_empty() -> None:
    if _VECTORS is None:
        pytest.fail(_MISSING)
    assert _VECTORS["valid"], "no valid vectors"
    assert _VECTORS["invalid"], "no invalid vectors"


@pytest.mark.parametrize("case", _vector_params("valid"))
def test_valid_vector_gives_its_next_six_fire_times(case: dict[str, Any] | None) -> None:
    if case is None or _VECTORS is None:
        pytest.fail(_MISSING)
    after = datetime.fromisoformat(_VECTORS["after"])
    expected = [datetime.fromisoformat(text) for text in case["next"]]
    schedule = parse_schedule(case["expression"])
    assert schedule.next_fire_times(after, len(expected)) == expected


@pytest.mark.parametrize("case", _vector_params("invalid"))
def test_invalid_vector_is_rejected(case: dict[str, Any] | None) -> None:
    if case is None:
        pytest.fail(_MISSING)
    with pytest.raises(InvalidScheduleError):
        parse_schedule(case["expression"])


# --- Fire times: edge cases --------------------------------------------------------------------

FIRE_CASES: list[tuple[str, str, str, list[str]]] = [
    # (what, expression, after, the next fire times; END: and then never again)
    # The Glue documentation's examples, from a Saturday afternoon.
    (
        "doc: 10:00 daily",
        "cron(0 10 * * ? *)",
        "2027-05-01 13:07:42.5",
        ["2027-05-02 10:00", "2027-05-03 10:00", "2027-05-04 10:00"],
    ),
    (
        "doc: 12:15 daily",
        "cron(15 12 * * ? *)",
        "2027-05-01 12:15:00",
        ["2027-05-02 12:15", "2027-05-03 12:15"],
    ),
    (
        "doc: 18:00 on weekdays",
        "cron(0 18 ? * MON-FRI *)",
        "2027-05-01 13:07",
        ["2027-05-03 18:00", "2027-05-04 18:00", "2027-05-05 18:00", "2027-05-06 18:00"],
    ),
    (
        "doc: 08:00 on the 1st",
        "cron(0 8 1 * ? *)",
        "2027-05-01 08:00",
        ["2027-06-01 08:00", "2027-07-01 08:00"],
    ),
    (
        "doc: every 15 minutes",
        "cron(0/15 * * * ? *)",
        "2027-05-01 23:50",
        ["2027-05-02 00:00", "2027-05-02 00:15", "2027-05-02 00:30"],
    ),
    (
        "doc: every 10 minutes on weekdays",
        "cron(0/10 * ? * MON-FRI *)",
        "2027-05-01 13:07",
        ["2027-05-03 00:00", "2027-05-03 00:10", "2027-05-03 00:20"],
    ),
    (
        "doc: every 5 minutes 08:00-17:55 on weekdays",
        "cron(0/5 8-17 ? * MON-FRI *)",
        "2027-05-03 17:50",
        ["2027-05-03 17:55", "2027-05-04 08:00", "2027-05-04 08:05"],
    ),
    # The EventBridge documentation's examples.
    (
        "doc: last Friday of each month in 2022-2023",
        "cron(15 10 ? * 6L 2022-2023)",
        "2023-11-30 00:00",
        ["2023-12-29 10:15", END],
    ),
    (
        "doc: 09:00 on the first Monday",
        "cron(0 9 ? * 2#1 *)",
        "2027-04-30 00:00",
        ["2027-05-03 09:00", "2027-06-07 09:00", "2027-07-05 09:00"],
    ),
    # Leap years, and days some months lack.
    (
        "Feb 29: next leap year",
        "cron(0 0 29 2 ? *)",
        "2026-11-26 18:00",
        ["2028-02-29 00:00", "2032-02-29 00:00"],
    ),
    ("Feb 29: 2100 is not a leap year", "cron(0 0 29 2 ? *)", "2096-03-01", ["2104-02-29 00:00"]),
    ("Feb 30 never fires", "cron(0 0 30 2 ? *)", "2026-01-01", [END]),
    ("Feb 30 and 31 never fire", "cron(0 0 30,31 2 ? *)", "2026-01-01", [END]),
    ("31 in 30-day months never fires", "cron(0 0 31 APR,JUN,SEP,NOV ? *)", "2026-01-01", [END]),
    (
        "31st skips the short months",
        "cron(0 0 31 * ? 2027)",
        "2026-12-31 00:00",
        [
            "2027-01-31 00:00",
            "2027-03-31 00:00",
            "2027-05-31 00:00",
            "2027-07-31 00:00",
            "2027-08-31 00:00",
            "2027-10-31 00:00",
        ],
    ),
    # L, LW, L-n and W in Day-of-month.
    (
        "LW: last weekday of the month",
        "cron(0 0 LW * ? *)",
        "2026-11-26 18:00",
        [
            "2026-11-30 00:00",  # Monday
            "2026-12-31 00:00",  # Thursday
            "2027-01-29 00:00",  # the 31st is a Sunday
            "2027-02-26 00:00",  # the 28th is a Sunday
            "2027-03-31 00:00",
            "2027-04-30 00:00",
        ],
    ),
    (
        "L-3: three days before the last day",
        "cron(0 0 L-3 * ? *)",
        "2026-11-26 18:00",
        ["2026-11-27 00:00", "2026-12-28 00:00", "2027-01-28 00:00", "2027-02-25 00:00"],
    ),
    (
        "L-3W: Sunday 28 March moves to Monday",
        "cron(0 0 L-3W 3 ? 2027)",
        "2027-01-01",
        ["2027-03-29 00:00", END],
    ),
    (
        "L-28 fires only in leap Februaries",
        "cron(0 0 L-28 2 ? *)",
        "2026-01-01",
        ["2028-02-01 00:00"],
    ),
    (
        "15W: Sunday the 15th moves to Monday",
        "cron(0 0 15W 11 ? 2026)",
        "2026-01-01",
        ["2026-11-16 00:00", END],
    ),
    (
        "15W: Saturday the 15th moves to Friday",
        "cron(0 0 15W 5 ? 2027)",
        "2027-01-01",
        ["2027-05-14 00:00"],
    ),
    (
        "1W: Saturday the 1st moves to Monday the 3rd",
        "cron(0 0 1W 5 ? 2027)",
        "2027-01-01",
        ["2027-05-03 00:00"],
    ),
    (
        "1W: Sunday the 1st moves to Monday the 2nd",
        "cron(0 0 1W 8 ? 2027)",
        "2027-01-01",
        ["2027-08-02 00:00"],
    ),
    (
        "31W: never into the next month, and not in 30-day months",
        "cron(0 0 31W * ? 2027)",
        "2027-01-01",
        [
            "2027-01-29 00:00",  # Sunday the 31st: the Friday before, not Monday 1 February
            "2027-03-31 00:00",
            "2027-05-31 00:00",
            "2027-07-30 00:00",  # Saturday the 31st
            "2027-08-31 00:00",
            "2027-10-29 00:00",  # Sunday the 31st
        ],
    ),
    ("31W in 30-day months only never fires", "cron(0 0 31W 4,6,9,11 ? *)", "2026-01-01", [END]),
    ("W already on a weekday stays", "cron(0 0 16W 11 ? 2026)", "2026-01-01", ["2026-11-16 00:00"]),
    # Day-of-week: numbering, L, #.
    (
        "1 is Sunday",
        "cron(0 0 ? * 1 *)",
        "2027-05-01 13:07",
        ["2027-05-02 00:00", "2027-05-09 00:00"],
    ),
    ("2 is Monday", "cron(0 0 ? * 2 *)", "2027-05-01 13:07", ["2027-05-03 00:00"]),
    ("7 is Saturday", "cron(0 0 ? * 7 *)", "2027-05-01 13:07", ["2027-05-08 00:00"]),
    (
        "L alone is Saturday",
        "cron(0 0 ? * L *)",
        "2026-11-26 18:00",
        ["2026-11-28 00:00", "2026-12-05 00:00"],
    ),
    (
        "fifth Friday: only in months that have one, then the year ends",
        "cron(0 0 ? * 6#5 2027)",
        "2027-01-01",
        [
            "2027-01-29 00:00",
            "2027-04-30 00:00",
            "2027-07-30 00:00",
            "2027-10-29 00:00",
            "2027-12-31 00:00",
            END,
        ],
    ),
    ("FRI#3 is 6#3", "cron(0 12 ? * FRI#3 *)", "2026-11-26 18:00", ["2026-12-18 12:00"]),
    ("FRIL is 6L", "cron(0 12 ? * FRIL *)", "2026-11-26 18:00", ["2026-11-27 12:00"]),
    # Year fields that end.
    (
        "year range fires twice then stops",
        "cron(0 0 1 1 ? 2027-2028)",
        "2026-06-01",
        ["2027-01-01 00:00", "2028-01-01 00:00", END],
    ),
    ("year range in the past", "cron(0 0 1 1 ? 2020-2025)", "2026-06-01", [END]),
    (
        "the last possible fire time",
        "cron(59 23 31 12 ? *)",
        "2199-12-31 23:58",
        ["2199-12-31 23:59", END],
    ),
    ("nothing after 2199", "cron(* * * * ? *)", "2199-12-31 23:59", [END]),
    (
        "before 1970 starts in 1970",
        "cron(0 0 1 1 ? *)",
        "1900-06-01",
        ["1970-01-01 00:00", "1971-01-01 00:00"],
    ),
    (
        "year step",
        "cron(0 0 1 1 ? 2190/5)",
        "2000-01-01",
        ["2190-01-01 00:00", "2195-01-01 00:00", END],
    ),
    # Names in any case.
    (
        "lower-case day names",
        "cron(0 12 ? * mon-wed *)",
        "2026-11-26 18:00",
        ["2026-11-30 12:00", "2026-12-01 12:00", "2026-12-02 12:00", "2026-12-07 12:00"],
    ),
    (
        "mixed-case month names",
        "cron(0 0 1 jan,Jul ? *)",
        "2026-11-26 18:00",
        ["2027-01-01 00:00", "2027-07-01 00:00", "2028-01-01 00:00"],
    ),
    ("lower-case l and w", "cron(0 0 lw * ? *)", "2027-01-01", ["2027-01-29 00:00"]),
    # Ranges that wrap around (Quartz semantics).
    (
        "FRI-MON wraps through the weekend",
        "cron(0 0 ? * FRI-MON *)",
        "2026-11-26 18:00",
        [
            "2026-11-27 00:00",
            "2026-11-28 00:00",
            "2026-11-29 00:00",
            "2026-11-30 00:00",
            "2026-12-04 00:00",
        ],
    ),
    (
        "22-2 in Hours wraps past midnight",
        "cron(0 22-2 * * ? *)",
        "2026-11-26 18:00",
        [
            "2026-11-26 22:00",
            "2026-11-26 23:00",
            "2026-11-27 00:00",
            "2026-11-27 01:00",
            "2026-11-27 02:00",
            "2026-11-27 22:00",
        ],
    ),
    (
        "22-2/2 steps through the wrap",
        "cron(0 22-2/2 * * ? *)",
        "2026-11-26 18:00",
        ["2026-11-26 22:00", "2026-11-27 00:00", "2026-11-27 02:00", "2026-11-27 22:00"],
    ),
    (
        "NOV-FEB wraps into the next year",
        "cron(0 0 1 NOV-FEB ? *)",
        "2026-10-15",
        [
            "2026-11-01 00:00",
            "2026-12-01 00:00",
            "2027-01-01 00:00",
            "2027-02-01 00:00",
            "2027-11-01 00:00",
        ],
    ),
    (
        "30-2 in Day-of-month wraps into the next month",
        "cron(0 0 30-2 * ? *)",
        "2027-01-29",
        [
            "2027-01-30 00:00",
            "2027-01-31 00:00",
            "2027-02-01 00:00",
            "2027-02-02 00:00",
            "2027-03-01 00:00",
        ],
    ),
    # Steps and lists.
    (
        "n/step runs to the maximum",
        "cron(50/7 0 * * ? *)",
        "2027-01-01 00:00",
        ["2027-01-01 00:50", "2027-01-01 00:57", "2027-01-02 00:50"],
    ),
    (
        "a-b/step",
        "cron(0 0 ? * 2-6/2 *)",
        "2026-11-27 00:00",
        ["2026-11-30 00:00", "2026-12-02 00:00"],
    ),
    (
        "*/n in Day-of-week",
        "cron(0 0 ? * */3 *)",
        "2026-11-26 18:00",
        ["2026-11-28 00:00", "2026-11-29 00:00", "2026-12-02 00:00"],
    ),
    ("leading zeros", "cron(05 09 01 01 ? 2027)", "2026-01-01", ["2027-01-01 09:05", END]),
    # Finer than AWS's 5-minute floor: accepted on purpose.
    (
        "every minute",
        "cron(* * * * ? *)",
        "2027-01-01 00:00:30",
        ["2027-01-01 00:01", "2027-01-01 00:02"],
    ),
]


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [pytest.param(expr, after, expected, id=what) for what, expr, after, expected in FIRE_CASES],
)
def test_fire_times(expression: str, after: str, expected: list[str]) -> None:
    assert fires(expression, after, len(expected)) == expected


def test_fire_times_are_aware_utc_on_whole_minutes() -> None:
    fired = parse_schedule("cron(0/5 8-17 ? * MON-FRI *)").next_fire_after(
        utc("2027-05-03 09:01:59.999999")
    )
    assert fired == datetime(2027, 5, 3, 9, 5, tzinfo=UTC)
    assert fired.tzinfo is UTC
    assert (fired.second, fired.microsecond) == (0, 0)


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        pytest.param(
            "2027-01-01 10:00:00", "2027-01-01 10:01", id="exactly on a fire time: the next one"
        ),
        pytest.param("2027-01-01 10:00:00.000001", "2027-01-01 10:01", id="a microsecond later"),
        pytest.param("2027-01-01 10:00:59.999999", "2027-01-01 10:01", id="the end of the minute"),
        pytest.param(
            "2027-01-01 09:59:59.999999", "2027-01-01 10:00", id="just before a fire time"
        ),
        pytest.param("2027-12-31 23:59:30", "2028-01-01 00:00", id="carries into the next year"),
    ],
)
def test_strictly_after_with_seconds_and_microseconds(after: str, expected: str) -> None:
    fired = parse_schedule("cron(* * * * ? *)").next_fire_after(utc(after))
    assert fired == utc(expected)


def test_after_in_another_time_zone_is_converted_to_utc() -> None:
    india = timezone(timedelta(hours=5, minutes=30))
    # 15:00 in India is 09:30 UTC, so the 10:00 UTC fire is next, the same day.
    after = datetime(2027, 1, 1, 15, 0, tzinfo=india)
    assert parse_schedule("cron(0 10 * * ? *)").next_fire_after(after) == utc("2027-01-01 10:00")


def test_naive_after_is_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_schedule("cron(0 10 * * ? *)").next_fire_after(datetime(2027, 1, 1))


def test_after_far_in_the_future_gives_none() -> None:
    assert (
        parse_schedule("cron(0 10 * * ? *)").next_fire_after(datetime.max.replace(tzinfo=UTC))
        is None
    )


def test_next_fire_times_edge_counts() -> None:
    schedule = parse_schedule("cron(0 10 * * ? *)")
    assert schedule.next_fire_times(utc("2027-01-01"), 0) == []
    with pytest.raises(ValueError, match="negative"):
        schedule.next_fire_times(utc("2027-01-01"), -1)


def test_every_day_of_week_value_matches_its_weekday() -> None:
    # Python's weekday() is 0 = Monday; Glue's is 1 = Sunday.
    for glue_day, python_weekday in zip(range(1, 8), (6, 0, 1, 2, 3, 4, 5), strict=True):
        times = parse_schedule(f"cron(0 0 ? * {glue_day} *)").next_fire_times(utc("2027-01-01"), 10)
        assert {t.weekday() for t in times} == {python_weekday}, glue_day


@pytest.mark.parametrize(
    "expression",
    [
        "cron(0 0 30 2 ? *)",
        "cron(0 0 31 2,4,6,9,11 ? *)",
        "cron(0 0 31W 4,6,9,11 ? *)",
        "cron(0 0 L-30 2 ? *)",
        # Never fires but is only found by walking: Feb 29 in odd years, fifth Saturday of
        # February in odd years (it needs 29 days).
        "cron(0 0 29 2 ? 1971/2)",
        "cron(0 0 ? 2 7#5 1971/2)",
    ],
)
def test_impossible_schedules_end_quickly(expression: str) -> None:
    schedule = parse_schedule(expression)
    started = time.perf_counter()
    assert schedule.next_fire_after(utc("1970-01-01")) is None
    # The walk is bounded by the Year field (a few hundred steps, well under a millisecond);
    # the bound here only catches an unbounded search, not a slow machine.
    assert time.perf_counter() - started < 0.5


# --- Parsing: normalized form, equality, caching -----------------------------------------------


@pytest.mark.parametrize(
    ("text", "normalized"),
    [
        ("cron(0 12 ? * mon-wed *)", "cron(0 12 ? * MON-WED *)"),
        ("  cron(  05   09 ? jan,Jul  sun#1 2027/02 )  ", "cron(5 9 ? JAN,JUL SUN#1 2027/2)"),
        ("cron(0 0 lw * ? *)", "cron(0 0 LW * ? *)"),
        ("cron(0/15 * * * ? *)", "cron(0/15 * * * ? *)"),
    ],
)
def test_str_is_the_normalized_expression(text: str, normalized: str) -> None:
    schedule = parse_schedule(text)
    assert str(schedule) == normalized == schedule.expression
    assert parse_schedule(str(schedule)) == schedule
    assert repr(schedule) == f"CronSchedule({normalized!r})"


def test_equal_expressions_compare_and_hash_equal() -> None:
    assert parse_schedule("cron(0 0 ? * mon *)") == parse_schedule("cron(0 0 ? * MON *)")
    assert hash(parse_schedule("cron(0 0 ? * mon *)")) == hash(
        parse_schedule("cron(0 0 ? * MON *)")
    )
    assert parse_schedule("cron(0 0 ? * MON *)") != parse_schedule("cron(0 0 ? * TUE *)")
    assert parse_schedule("cron(0 0 ? * MON *)") != "cron(0 0 ? * MON *)"


def test_parsing_is_cached() -> None:
    assert parse_schedule("cron(0 10 * * ? *)") is parse_schedule("cron(0 10 * * ? *)")
    assert isinstance(parse_schedule("cron(0 10 * * ? *)"), CronSchedule)


# --- Parsing: errors ---------------------------------------------------------------------------

ERROR_CASES: list[tuple[str, str, str]] = [
    # (expression, field named, text the message contains)
    ("cron(60 0 * * ? *)", "Minutes", "60 is out of range 0-59"),
    ("cron(0 24 * * ? *)", "Hours", "24 is out of range 0-23"),
    ("cron(0 0 0 * ? *)", "Day-of-month", "0 is out of range 1-31"),
    ("cron(0 0 32 * ? *)", "Day-of-month", "32 is out of range 1-31"),
    ("cron(0 0 1 0 ? *)", "Month", "0 is out of range 1-12 (JAN-DEC)"),
    ("cron(0 0 1 13 ? *)", "Month", "13 is out of range 1-12 (JAN-DEC)"),
    ("cron(0 0 1 JANUARY ? *)", "Month", "'JANUARY' is not a number or a name"),
    ("cron(0 0 ? * 0 *)", "Day-of-week", "0 is out of range 1-7 (SUN-SAT)"),
    ("cron(0 0 ? * 8 *)", "Day-of-week", "8 is out of range 1-7 (SUN-SAT)"),
    ("cron(0 0 ? * JUL *)", "Day-of-week", "'JUL' is not a number or a name"),
    ("cron(0 0 * * ? 1969)", "Year", "1969 is out of range 1970-2199"),
    ("cron(0 0 * * ? 2200)", "Year", "2200 is out of range 1970-2199"),
    ("cron(0 0 * * ? 2028-2027)", "Year", "Year ranges cannot wrap"),
    ("cron(0 0 JAN * ? *)", "Day-of-month", "'JAN' is not a number"),
    ("cron(MON 0 * * ? *)", "Minutes", "'MON' is not a number"),
    ("cron(0 10 * *)", "Schedule", "expected 6 fields"),
    ("cron(0 10 * * ?)", "Schedule", "got 5"),
    ("cron(0 0 0 10 * * ? *)", "Schedule", "got 8"),
    ("cron()", "Schedule", "got 0"),
    ("0 10 * * ? *", "Schedule", "must look like cron(Minutes Hours"),
    ("cron 0 10 * * ? *", "Schedule", "must look like cron("),
    ("cron(0 10 * * ? *", "Schedule", "must look like cron("),
    ("cron(0 10 * * ? *) daily", "Schedule", "must look like cron("),
    ("CRON(0 10 * * ? *)", "Schedule", "must look like cron("),
    ("", "Schedule", "must look like cron("),
    ("rate(5 minutes)", "Schedule", "rate(...) expressions are EventBridge's"),
    # "\u017fun" (long s) upper-cases to "SUN" in Python; it must not pass for a day name.
    ("cron(0 10 ? * \u017fun *)", "Schedule", "ASCII"),
    ("cron(0 10 ? * ? *)", "Day-of-month and Day-of-week", "exactly one of them must be '?'"),
    ("cron(0 10 * * * *)", "Day-of-month and Day-of-week", "exactly one of them must be '?'"),
    ("cron(0 10 1 * MON *)", "Day-of-month and Day-of-week", "exactly one of them must be '?'"),
    ("cron(0 10 ? * 1-3,? *)", "Day-of-week", "'?' must be the whole field"),
    ("cron(? 10 * * ? *)", "Minutes", "'?' is only allowed in Day-of-month and Day-of-week"),
    ("cron(*/0 * * * ? *)", "Minutes", "step 0 in '*/0' must be between 1 and 60"),
    ("cron(0/61 * * * ? *)", "Minutes", "must be between 1 and 60"),
    ("cron(0/x * * * ? *)", "Minutes", "step 'X' in '0/X' is not a number"),
    ("cron(1,,2 * * * ? *)", "Minutes", "empty item"),
    ("cron(5- * * * ? *)", "Minutes", "'' is not a number"),
    ("cron(*-5 * * * ? *)", "Minutes", "'*' cannot start a range"),
    ("cron(-5 * * * ? *)", "Minutes", "'' is not a number"),
    ("cron(L * * * ? *)", "Minutes", "'L' is only allowed in Day-of-month and Day-of-week"),
    ("cron(0 0 ? L * *)", "Month", "'L' is only allowed in Day-of-month and Day-of-week"),
    ("cron(0 0 ? * 15W *)", "Day-of-week", "'15W' is only allowed in Day-of-month"),
    ("cron(0 0 6#3 * ? *)", "Day-of-month", "'6#3' is only allowed in Day-of-week"),
    ("cron(0 0 1,L * ? *)", "Day-of-month", "'L' must be the only item in the field"),
    ("cron(0 0 L,1 * ? *)", "Day-of-month", "'L' must be alone, or LW, L-n or L-nW"),
    ("cron(0 0 L-0 * ? *)", "Day-of-month", "offset must be between 1 and 30"),
    ("cron(0 0 L-31 * ? *)", "Day-of-month", "offset must be between 1 and 30"),
    ("cron(0 0 1-15W * ? *)", "Day-of-month", "'W' takes a single day"),
    ("cron(0 0 32W * ? *)", "Day-of-month", "32 is out of range 1-31"),
    ("cron(0 0 ? * 6L,2 *)", "Day-of-week", "'6L' must be the only item in the field"),
    ("cron(0 0 ? * 8L *)", "Day-of-week", "8 is out of range 1-7"),
    ("cron(0 0 ? * 6#6 *)", "Day-of-week", "between 1 and 5"),
    ("cron(0 0 ? * 6#0 *)", "Day-of-week", "between 1 and 5"),
    ("cron(0 0 ? * 8#1 *)", "Day-of-week", "8 is out of range 1-7"),
    ("cron(0 0 ? * 2#1,3#1 *)", "Day-of-week", "'#' takes one weekday and a number"),
    ("cron(0 0 ? * FOO *)", "Day-of-week", "'FOO' is not a number or a name, 1-7 (SUN-SAT)"),
]


@pytest.mark.parametrize(("expression", "field", "message"), ERROR_CASES)
def test_invalid_schedule_names_the_field(expression: str, field: str, message: str) -> None:
    with pytest.raises(InvalidScheduleError) as caught:
        parse_schedule(expression)
    assert caught.value.field == field
    assert message in caught.value.message
    assert str(caught.value) == f"{field}: {caught.value.message}"


def test_invalid_schedule_error_is_a_value_error_and_pickles() -> None:
    error = InvalidScheduleError("Day-of-week", "8 is out of range 1-7 (SUN-SAT)")
    assert isinstance(error, ValueError)
    assert str(error) == "Day-of-week: 8 is out of range 1-7 (SUN-SAT)"
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.field, copy.message, str(copy)) == (error.field, error.message, str(error))


# --- Cross-check against an independent implementation -----------------------------------------

_APS_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # index = Glue day - 1
_ORDINALS = ("1st", "2nd", "3rd", "4th", "5th")


def _random_field(rng: random.Random, low: int, high: int) -> tuple[str, list[int]]:
    """A random field in Glue syntax and the values it stands for (computed independently)."""
    size = high - low + 1
    shape = rng.choice(
        ["*", "value", "list", "range", "wrap", "start/step", "*/step", "range/step"]
    )
    if shape == "*":
        return "*", list(range(low, high + 1))
    if shape == "value":
        value = rng.randint(low, high)
        return str(value), [value]
    if shape == "list":
        values = sorted(rng.sample(range(low, high + 1), rng.randint(2, min(4, size))))
        return ",".join(map(str, values)), values
    if shape == "*/step":
        step = rng.randint(2, max(2, size // 2))
        return f"*/{step}", list(range(low, high + 1, step))
    if shape == "start/step":
        start, step = rng.randint(low, high), rng.randint(2, max(2, size // 2))
        return f"{start}/{step}", list(range(start, high + 1, step))
    start, end = sorted(rng.sample(range(low, high + 1), 2))
    if shape == "wrap":
        # end-start wraps: end..high then low..start.
        return f"{end}-{start}", [*range(end, high + 1), *range(low, start + 1)]
    if shape == "range/step":
        step = rng.randint(2, 4)
        return f"{start}-{end}/{step}", list(range(start, end + 1, step))
    return f"{start}-{end}", list(range(start, end + 1))


def _random_case(rng: random.Random) -> tuple[str, dict[str, str]]:
    """A random Glue expression and the same schedule as APScheduler CronTrigger arguments."""
    minute_text, minutes = _random_field(rng, 0, 59)
    hour_text, hours = _random_field(rng, 0, 23)
    month_text, months = _random_field(rng, 1, 12)
    # A bounded year set, so a sparse schedule ends instead of sending APScheduler to 9999.
    first_year = rng.randint(2026, 2030)
    years = list(range(first_year, first_year + rng.randint(1, 6)))
    aps = {
        "minute": ",".join(map(str, sorted(set(minutes)))),
        "hour": ",".join(map(str, sorted(set(hours)))),
        "month": ",".join(map(str, sorted(set(months)))),
        "year": ",".join(map(str, years)),
        "day": "*",
        "day_of_week": "*",
    }
    year_text = f"{years[0]}-{years[-1]}" if len(years) > 1 else str(years[0])
    day_shape = rng.choice(["dom", "dom", "dow", "dow", "L", "nL", "n#k"])
    if day_shape == "dom":
        dom_text, days = _random_field(rng, 1, 31)
        dow_text = "?"
        aps["day"] = ",".join(map(str, sorted(set(days))))
    elif day_shape == "dow":
        dow_text, weekdays = _random_field(rng, 1, 7)
        dom_text = "?"
        aps["day_of_week"] = ",".join(_APS_DAY_NAMES[day - 1] for day in sorted(set(weekdays)))
    elif day_shape == "L":
        dom_text, dow_text = "L", "?"
        aps["day"] = "last"
    elif day_shape == "nL":
        weekday = rng.randint(1, 7)
        dom_text, dow_text = "?", f"{weekday}L"
        aps["day"] = f"last {_APS_DAY_NAMES[weekday - 1]}"
    else:
        weekday, nth = rng.randint(1, 7), rng.randint(1, 5)
        dom_text, dow_text = "?", f"{weekday}#{nth}"
        aps["day"] = f"{_ORDINALS[nth - 1]} {_APS_DAY_NAMES[weekday - 1]}"
    expression = f"cron({minute_text} {hour_text} {dom_text} {month_text} {dow_text} {year_text})"
    return expression, aps


def _aps_fire_times(aps: dict[str, str], after: datetime, n: int) -> list[datetime]:
    trigger = CronTrigger(second="0", timezone=UTC, **aps)
    # APScheduler returns fire times at or after `now`; ours are strictly after `after`.
    now = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    times: list[datetime] = []
    while len(times) < n:
        fired = trigger.get_next_fire_time(None, now)
        if fired is None:
            break
        times.append(fired)
        now = fired + timedelta(minutes=1)
    return times


@pytest.mark.parametrize("seed", range(300))
def test_agrees_with_apscheduler(seed: int) -> None:
    rng = random.Random(seed)
    expression, aps = _random_case(rng)
    after = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=rng.randint(0, 5 * 365 * 86400))
    ours = parse_schedule(expression).next_fire_times(after, 8)
    assert ours == _aps_fire_times(aps, after, 8), (expression, aps, after)
