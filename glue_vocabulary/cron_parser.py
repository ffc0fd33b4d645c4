"""Parsing Glue's cron schedules (the grammar is in ``cron``'s docstring) into CronSchedule,
with Glue's error messages naming the field at fault.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final

from glue_vocabulary.cron_fields import (
    _ANY_DAY,
    _DAY_OF_MONTH,
    _DAY_OF_WEEK,
    _DAYS_OF_MONTH,
    _DAYS_OF_WEEK,
    _HOURS,
    _LAST_WEEKDAY,
    _MINUTES,
    _MONTH,
    _NTH_WEEKDAY,
    _ONE_DAY_OF_MONTH,
    _YEAR,
    InvalidScheduleError,
    _DayRule,
    _FieldSpec,
)
from glue_vocabulary.cron_schedule import CronSchedule

SYNTAX: Final = "cron(Minutes Hours Day-of-month Month Day-of-week Year)"
"""The shape every Glue schedule must have; quoted in error messages."""
_ASCII_DIGITS: Final = re.compile(r"[0-9]+")
_DOM_LAST: Final = re.compile(r"L(?:-([0-9]+))?(W?)")
_DOM_WEEKDAY: Final = re.compile(r"([0-9]+)W")
_DOW_LAST: Final = re.compile(r"([0-9]+|[A-Z]{3})L")
_DOW_NTH: Final = re.compile(r"([0-9]+|[A-Z]{3})#([0-9]+)")
# Every special item of each day field, to explain one used in a list or in another field.
_DOM_SPECIAL: Final = re.compile(r"L(?:-[0-9]+)?W?|[0-9]+W")
_DOW_SPECIAL: Final = re.compile(r"L|([0-9]+|[A-Z]{3})(?:L|#[0-9]+)")


def parse_schedule(text: str) -> CronSchedule:
    """Parse a Glue `cron(...)` schedule.

    Results are cached: schedules are immutable and thousands of triggers share a few
    expressions, so equal texts return the same instance.

    Args:
        text: The schedule, e.g. `cron(0 18 ? * MON-FRI *)`. Surrounding whitespace is ignored.

    Raises:
        InvalidScheduleError: The expression is malformed; `field` and the message say where.
    """
    return _parse_cached(text)


@lru_cache(maxsize=4096)
def _parse_cached(text: str) -> CronSchedule:
    stripped = text.strip()
    if not stripped.isascii():
        # str.upper() and str.split() know Unicode (the long s upper-cases to "S", so a lookalike
        # of "sun" would pass as SUN); Glue's syntax is ASCII.
        raise InvalidScheduleError("Schedule", f"must be plain ASCII, like {SYNTAX}")
    if stripped.lower().startswith("rate("):
        raise InvalidScheduleError(
            "Schedule",
            f"rate(...) expressions are EventBridge's, not Glue's; use {SYNTAX}",
        )
    if not (stripped.startswith("cron(") and stripped.endswith(")")):
        raise InvalidScheduleError("Schedule", f"must look like {SYNTAX}")
    fields = stripped[len("cron(") : -1].upper().split()
    if len(fields) != 6:
        raise InvalidScheduleError(
            "Schedule",
            f"expected 6 fields (Minutes Hours Day-of-month Month Day-of-week Year), "
            f"got {len(fields)}",
        )
    minute_text, hour_text, dom_text, month_text, dow_text, year_text = fields
    minutes = _parse_plain(_MINUTES, minute_text)
    hours = _parse_plain(_HOURS, hour_text)
    months = _parse_plain(_MONTH, month_text)
    years = _parse_plain(_YEAR, year_text)
    if (dom_text == "?") == (dow_text == "?"):
        raise InvalidScheduleError(
            "Day-of-month and Day-of-week", "exactly one of them must be '?'"
        )
    day_rule = _parse_day_of_week(dow_text) if dom_text == "?" else _parse_day_of_month(dom_text)
    normalized = " ".join(
        _ASCII_DIGITS.sub(lambda match: str(int(match.group())), field) for field in fields
    )
    return CronSchedule(f"cron({normalized})", minutes, hours, day_rule, months, years)


def _parse_plain(spec: _FieldSpec, text: str) -> tuple[int, ...]:
    """Parse a field of `,` `-` `*` `/` items into its sorted values."""
    values: set[int] = set()
    for item in text.split(","):
        values.update(_parse_item(spec, item))
    return tuple(sorted(values))


def _parse_item(spec: _FieldSpec, item: str) -> list[int]:
    """Parse one list item: `*`, `v`, `a-b`, each optionally `/step`, or `v/step`."""
    if not item:
        raise InvalidScheduleError(spec.name, "empty item in list")
    base, slash, step_text = item.partition("/")
    size = spec.high - spec.low + 1
    step = 1
    if slash:
        if not (step_text.isascii() and step_text.isdigit()):
            raise InvalidScheduleError(spec.name, f"step {step_text!r} in {item!r} is not a number")
        step = int(step_text)
        if not 1 <= step <= size:
            raise InvalidScheduleError(
                spec.name, f"step {step} in {item!r} must be between 1 and {size}"
            )
    start_text, dash, end_text = base.partition("-")
    if start_text == "*":
        if dash:
            raise InvalidScheduleError(spec.name, f"{item!r}: '*' cannot start a range")
        start, end = spec.low, spec.high
    else:
        start = _parse_value(spec, start_text, item)
        # `v/step` runs to the field's maximum; a lone `v` is just itself.
        end = _parse_value(spec, end_text, item) if dash else spec.high if slash else start
    if end >= start:
        return list(range(start, end + 1, step))
    if spec is _YEAR:
        raise InvalidScheduleError(
            spec.name, f"range {item!r} runs backwards; Year ranges cannot wrap around"
        )
    # A wrapping range (FRI-MON, 22-2) continues past the maximum into the start, as in Quartz.
    return [spec.low + (value - spec.low) % size for value in range(start, end + size + 1, step)]


def _parse_value(spec: _FieldSpec, text: str, item: str) -> int:
    """One number or name from `item`, checked against the field's range."""
    if text.isascii() and text.isdigit():
        value = int(text)
        if not spec.low <= value <= spec.high:
            raise InvalidScheduleError(spec.name, f"{value} is out of range {spec.hint}")
        return value
    if spec.names is not None and text in spec.names:
        return spec.names[text]
    # A misplaced `?`, L, W or # deserves a better answer than "not a number".
    hint = _misplaced_special_hint(spec, item)
    if hint:
        raise InvalidScheduleError(spec.name, hint)
    what = "a number or a name" if spec.names is not None else "a number"
    raise InvalidScheduleError(spec.name, f"{text!r} is not {what}, {spec.hint}")


def _misplaced_special_hint(spec: _FieldSpec, item: str) -> str:
    """Explain a `?`, L, W or # item that is valid syntax somewhere, just not here."""
    if item == "?":
        if spec is _DAY_OF_MONTH or spec is _DAY_OF_WEEK:
            return "'?' must be the whole field"
        return "'?' is only allowed in Day-of-month and Day-of-week"
    in_dom = _DOM_SPECIAL.fullmatch(item) is not None
    in_dow = _DOW_SPECIAL.fullmatch(item) is not None
    if (in_dom and spec is _DAY_OF_MONTH) or (in_dow and spec is _DAY_OF_WEEK):
        return f"{item!r} must be the only item in the field"
    if in_dom and in_dow:
        return f"{item!r} is only allowed in Day-of-month and Day-of-week"
    if in_dom:
        return f"{item!r} is only allowed in Day-of-month"
    if in_dow:
        return f"{item!r} is only allowed in Day-of-week"
    return ""


def _parse_day_of_month(text: str) -> _DayRule:
    """Parse Day-of-month (not `?`): a plain list, or one of L, LW, L-n, L-nW, nW."""
    spec = _DAY_OF_MONTH
    if text.startswith("L"):
        match = _DOM_LAST.fullmatch(text)
        if match is None:
            raise InvalidScheduleError(
                spec.name, f"{text!r}: 'L' must be alone, or LW, L-n or L-nW"
            )
        offset = int(match.group(1)) if match.group(1) is not None else 0
        if match.group(1) is not None and not 1 <= offset <= 30:
            raise InvalidScheduleError(spec.name, f"{text!r}: the offset must be between 1 and 30")
        return _DayRule(
            _ONE_DAY_OF_MONTH, day=offset, from_last=True, nearest_weekday=bool(match.group(2))
        )
    if text.endswith("W"):
        match = _DOM_WEEKDAY.fullmatch(text)
        if match is None:
            raise InvalidScheduleError(
                spec.name, f"{text!r}: 'W' takes a single day, e.g. 15W, and no list or range"
            )
        day = _parse_value(spec, match.group(1), text)
        return _DayRule(_ONE_DAY_OF_MONTH, day=day, nearest_weekday=True)
    days = _parse_plain(spec, text)
    if len(days) == spec.high - spec.low + 1:
        return _DayRule(_ANY_DAY)
    return _DayRule(_DAYS_OF_MONTH, days=days)


def _parse_day_of_week(text: str) -> _DayRule:
    """Parse Day-of-week (not `?`): a plain list, or one of L, nL, n#k."""
    spec = _DAY_OF_WEEK
    if text == "L":
        # Alone, L is the last day of the week: Saturday (Quartz).
        return _weekday_set_rule((7,))
    if "#" in text:
        match = _DOW_NTH.fullmatch(text)
        if match is None:
            raise InvalidScheduleError(
                spec.name, f"{text!r}: '#' takes one weekday and a number, e.g. 6#3 or FRI#3"
            )
        weekday = _parse_value(spec, match.group(1), text)
        nth = int(match.group(2))
        if not 1 <= nth <= 5:
            raise InvalidScheduleError(
                spec.name, f"{text!r}: the week number after '#' must be between 1 and 5"
            )
        return _DayRule(_NTH_WEEKDAY, weekday=weekday - 1, nth=nth)
    match = _DOW_LAST.fullmatch(text)
    if match is not None:
        weekday = _parse_value(spec, match.group(1), text)
        return _DayRule(_LAST_WEEKDAY, weekday=weekday - 1)
    return _weekday_set_rule(_parse_plain(spec, text))


def _weekday_set_rule(weekdays: tuple[int, ...]) -> _DayRule:
    if len(weekdays) == 7:
        return _DayRule(_ANY_DAY)
    # For each weekday (0 = Sunday), the distance to the next allowed one, so that finding the
    # next matching day of a month is one lookup rather than a scan.
    allowed = {weekday - 1 for weekday in weekdays}
    skips = tuple(
        next(ahead for ahead in range(7) if (weekday + ahead) % 7 in allowed)
        for weekday in range(7)
    )
    return _DayRule(_DAYS_OF_WEEK, days=skips)
