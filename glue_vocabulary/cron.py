"""Glue `cron(Minutes Hours Day-of-month Month Day-of-week Year)` schedules: parse, next fire time.

The syntax and semantics are those of docs/glue-semantics.md §4 (the Glue and EventBridge
cron references). Every time is UTC; there is no time-zone parameter.

Fields and operators::

    Minutes       0-59                      , - * /
    Hours         0-23                      , - * /
    Day-of-month  1-31                      , - * / ?  L  W  (L, LW, L-n, L-nW, nW)
    Month         1-12 or JAN-DEC           , - * /
    Day-of-week   1-7 or SUN-SAT (1 = SUN)  , - * / ?  L  #  (L, nL, n#k)
    Year          1970-2199                 , - * /

Semantic choices (where AWS documents nothing, we follow Quartz, whose dialect AWS's is):

- `/` is `start/step`: `5/15` in Minutes is 5,20,35,50; `*/n` is `min/n`; `a-b/n` steps
  through the range. A step must be between 1 and the field's size.
- Exactly one of Day-of-month and Day-of-week must be `?` (EventBridge also forbids `*` in
  both). `?` must stand alone and is allowed in those two fields only.
- Ranges that wrap are accepted, as Quartz accepts them: `FRI-MON` is FRI,SAT,SUN,MON, `22-2`
  in Hours is 22,23,0,1,2, `NOV-FEB` in Month, `28-3` in Day-of-month (each month's own days).
  Year ranges cannot wrap (Quartz rejects them too): `2028-2027` is an error.
- Day-of-month `L` is the month's last day; `15W` is the weekday nearest the 15th without leaving
  the month (a Saturday 1st moves to Monday the 3rd, a Sunday last day to Friday); `nW` on a day
  the month lacks (`31W` in November) does not fire that month, like plain `31`. Quartz's `LW`
  (last weekday) and `L-n` / `L-nW` (n days before the last day, 1 <= n <= 30) are accepted
  although AWS does not document them: they are unambiguous, and AWS support has confirmed that
  EventBridge accepts `L-n`. `L-n` before the 1st (`L-30` in February) does not fire.
- Day-of-week `L` alone is Saturday, the last day of the week (Quartz); `6L` is the last Friday
  of the month; `6#3` (or `FRI#3`) is the third Friday, `k` in 1-5; a month without a fifth
  Friday does not fire for `6#5`.
- `L`, `W` and `#` items must be the only item in their field: Quartz rejects lists with them
  ("Support for specifying 'L' with other days ... is not implemented"). Rejecting is also the
  safe direction: it can be relaxed later without invalidating stored schedules.
- Names (JAN-DEC, SUN-SAT) and the letters L and W are accepted in any case; numbers may have
  leading zeros. `str(schedule)` is the normalized form: upper case, single spaces, no leading
  zeros (`cron(0 12 ? * mon-wed *)` -> `cron(0 12 ? * MON-WED *)`). The literal `cron(` prefix is
  lower case, as AWS writes it; `rate(...)` (EventBridge only) is rejected with its own message.
- Schedules firing more often than AWS's 5-minute floor (`cron(* * * * ? *)`) are accepted on
  purpose: a superset of Glue that costs nothing here and is handy in tests. Checking the floor
  is left to whoever enforces Glue's limits.
- A schedule that can never fire again (Feb 30, a year range in the past) parses fine and
  `next_fire_after` returns None, as the doc's "report no next fire time" option allows.

Why a hand-written matcher rather than a library: APScheduler 3's CronTrigger numbers weekdays
from 0 = Monday and has no `W`, `?` or year-bounded "never again" answer, and croniter (not a
dependency) uses Unix numbering and syntax (`L5`, 0 = Sunday, no `?`). Either would need a
translation layer as large as this parser, plus a second set of semantics to keep in step.
Instead each field is parsed into a sorted tuple once, and `next_fire_after` walks year ->
month -> day -> hour -> minute with `bisect`, computing only the candidate days of the month at
hand from precomputed month lengths and first weekdays. A call costs a few microseconds, and
impossible schedules end at the last allowed year (at most 230 years, a few hundred steps)
or are recognised when parsed.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Final

__all__ = ["CronSchedule", "InvalidScheduleError", "parse_schedule"]

SYNTAX: Final = "cron(Minutes Hours Day-of-month Month Day-of-week Year)"
"""The shape every Glue schedule must have; quoted in error messages."""

MIN_YEAR: Final = 1970
MAX_YEAR: Final = 2199


class InvalidScheduleError(ValueError):
    """A schedule expression Glue would reject; `field` names the part that is wrong."""

    def __init__(self, field: str, message: str) -> None:
        """Build the error.

        Args:
            field: The field at fault ("Day-of-week"), or "Schedule" for the expression as a whole.
            message: What is wrong with it, e.g. "8 is out of range 1-7 (SUN-SAT)".
        """
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message

    def __reduce__(self) -> tuple[type[InvalidScheduleError], tuple[str, str]]:
        # ValueError pickles as cls(*self.args), which would not match our two-argument __init__.
        return (type(self), (self.field, self.message))


@dataclass(frozen=True, slots=True)
class _FieldSpec:
    """How one of the six fields is numbered and named."""

    name: str
    low: int
    high: int
    names: dict[str, int] | None = None
    name_hint: str = ""

    @property
    def hint(self) -> str:
        """The valid range as error messages show it, e.g. "1-7 (SUN-SAT)"."""
        return f"{self.low}-{self.high}{self.name_hint}"


_MONTH_NAMES: Final = {
    name: number
    for number, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"),
        start=1,
    )
}
_DAY_NAMES: Final = {
    name: number
    for number, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), start=1)
}

_MINUTES: Final = _FieldSpec("Minutes", 0, 59)
_HOURS: Final = _FieldSpec("Hours", 0, 23)
_DAY_OF_MONTH: Final = _FieldSpec("Day-of-month", 1, 31)
_MONTH: Final = _FieldSpec("Month", 1, 12, _MONTH_NAMES, " (JAN-DEC)")
_DAY_OF_WEEK: Final = _FieldSpec("Day-of-week", 1, 7, _DAY_NAMES, " (SUN-SAT)")
_YEAR: Final = _FieldSpec("Year", MIN_YEAR, MAX_YEAR)

# Days in each month (index 1-12) in a leap year: the most a month can ever have.
_MAX_MONTH_DAYS: Final = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _month_table() -> tuple[tuple[int, ...], tuple[int, ...]]:
    # Length and weekday of the 1st (0 = Sunday) of every month the Year field allows, indexed by
    # (year - MIN_YEAR) * 12 + month - 1, so the hot path does no calendar arithmetic.
    lengths: list[int] = []
    first_weekdays: list[int] = []
    for year in range(MIN_YEAR, MAX_YEAR + 1):
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        for month in range(1, 13):
            lengths.append(29 if month == 2 and leap else _MAX_MONTH_DAYS[month] - (month == 2))
            first_weekdays.append((date(year, month, 1).weekday() + 1) % 7)
    return tuple(lengths), tuple(first_weekdays)


_MONTH_LENGTHS, _FIRST_WEEKDAYS = _month_table()

# How next_fire_after finds the matching days of a month; see CronSchedule._day_on_or_after.
_ANY_DAY: Final = 0  # every day
_DAYS_OF_MONTH: Final = 1  # a set of days of the month
_DAYS_OF_WEEK: Final = 2  # a set of weekdays
_ONE_DAY_OF_MONTH: Final = 3  # nW, L, LW, L-n, L-nW: at most one day a month
_LAST_WEEKDAY: Final = 4  # nL: the last given weekday of the month
_NTH_WEEKDAY: Final = 5  # n#k: the k-th given weekday of the month

_ASCII_DIGITS: Final = re.compile(r"[0-9]+")
_DOM_LAST: Final = re.compile(r"L(?:-([0-9]+))?(W?)")
_DOM_WEEKDAY: Final = re.compile(r"([0-9]+)W")
_DOW_LAST: Final = re.compile(r"([0-9]+|[A-Z]{3})L")
_DOW_NTH: Final = re.compile(r"([0-9]+|[A-Z]{3})#([0-9]+)")
# Every special item of each day field, to explain one used in a list or in another field.
_DOM_SPECIAL: Final = re.compile(r"L(?:-[0-9]+)?W?|[0-9]+W")
_DOW_SPECIAL: Final = re.compile(r"L|([0-9]+|[A-Z]{3})(?:L|#[0-9]+)")


@dataclass(frozen=True, slots=True)
class _DayRule:
    """Which days of a month match: one of the kinds above plus its parameters."""

    kind: int
    days: tuple[int, ...] = ()
    """_DAYS_OF_MONTH: the days, sorted. _DAYS_OF_WEEK: for each weekday (0 = Sunday), how many
    days ahead the next allowed weekday is (0 if the weekday itself is allowed)."""
    day: int = 0
    """_ONE_DAY_OF_MONTH: the day, or with `from_last` how many days before the last day."""
    from_last: bool = False
    nearest_weekday: bool = False
    weekday: int = 0
    """_LAST_WEEKDAY and _NTH_WEEKDAY: the weekday, 0 = Sunday."""
    nth: int = 0


class CronSchedule:
    """A parsed Glue cron schedule; immutable, so one instance can serve many triggers."""

    __slots__ = ("_day_rule", "_expression", "_hours", "_minutes", "_months", "_never", "_years")

    def __init__(
        self,
        expression: str,
        minutes: tuple[int, ...],
        hours: tuple[int, ...],
        day_rule: _DayRule,
        months: tuple[int, ...],
        years: tuple[int, ...],
    ) -> None:
        """Build from already-validated fields; use `parse_schedule` instead."""
        self._expression = expression
        self._minutes = minutes
        self._hours = hours
        self._day_rule = day_rule
        self._months = months
        self._years = years
        self._never = not _can_ever_match(day_rule, months)

    @property
    def expression(self) -> str:
        """The normalized expression, e.g. `cron(0 18 ? * MON-FRI *)`."""
        return self._expression

    def __str__(self) -> str:
        return self._expression

    def __repr__(self) -> str:
        return f"CronSchedule({self._expression!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CronSchedule):
            return NotImplemented
        return self._expression == other._expression

    def __hash__(self) -> int:
        return hash(self._expression)

    def next_fire_after(self, after: datetime) -> datetime | None:
        """The first fire time strictly after `after`, or None if the schedule never fires again.

        Args:
            after: Any timezone-aware datetime; seconds and microseconds are allowed.

        Returns:
            An aware UTC datetime on a whole minute, or None.

        Raises:
            ValueError: `after` is naive (Glue schedules are UTC; a naive time is ambiguous).
        """
        offset = after.utcoffset()
        if offset is None:
            raise ValueError("after must be a timezone-aware datetime")
        if self._never:
            return None
        if offset:
            after = after.astimezone(UTC)
        # Fire times are whole minutes, so "strictly after" is "at or after the next minute",
        # whatever the seconds and microseconds of `after` are. Overflowing minute 60, hour 24,
        # day 32 or month 13 is fine: the walk below carries them into the next unit.
        year, month, day, hour, minute = (
            after.year,
            after.month,
            after.day,
            after.hour,
            after.minute + 1,
        )
        years, months, hours, minutes = self._years, self._months, self._hours, self._minutes
        # Each pass either returns or moves the candidate forward to the start of a later unit,
        # so the loop ends at the last allowed year at the latest.
        while True:
            i = bisect_left(years, year)
            if i == len(years):
                return None
            if years[i] != year:
                year, month, day, hour, minute = years[i], 1, 1, 0, 0
            i = bisect_left(months, month)
            if i == len(months):
                year, month, day, hour, minute = year + 1, 1, 1, 0, 0
                continue
            if months[i] != month:
                month, day, hour, minute = months[i], 1, 0, 0
            found = self._day_on_or_after(year, month, day)
            if not found:
                month, day, hour, minute = month + 1, 1, 0, 0
                continue
            if found != day:
                day, hour, minute = found, 0, 0
            i = bisect_left(hours, hour)
            if i == len(hours):
                day, hour, minute = day + 1, 0, 0
                continue
            if hours[i] != hour:
                hour, minute = hours[i], 0
            i = bisect_left(minutes, minute)
            if i == len(minutes):
                hour, minute = hour + 1, 0
                continue
            return datetime(year, month, day, hour, minutes[i], tzinfo=UTC)

    def next_fire_times(self, after: datetime, n: int) -> list[datetime]:
        """Up to `n` consecutive fire times strictly after `after` (fewer if the schedule ends).

        Args:
            after: Any timezone-aware datetime.
            n: How many fire times to return; must not be negative.

        Raises:
            ValueError: `after` is naive or `n` is negative.
        """
        if n < 0:
            raise ValueError(f"n must not be negative, got {n}")
        times: list[datetime] = []
        current = after
        while len(times) < n:
            following = self.next_fire_after(current)
            if following is None:
                break
            times.append(following)
            current = following
        return times

    def _day_on_or_after(self, year: int, month: int, day: int) -> int:
        """The first matching day of the month that is `day` or later, or 0 if there is none.

        `year` is always within MIN_YEAR..MAX_YEAR (the caller takes it from the Year field);
        `day` may be past the month's end.
        """
        index = (year - MIN_YEAR) * 12 + month - 1
        length = _MONTH_LENGTHS[index]
        if day > length:
            return 0
        rule = self._day_rule
        kind = rule.kind
        if kind == _ANY_DAY:
            return day
        if kind == _DAYS_OF_MONTH:
            days = rule.days
            i = bisect_left(days, day)
            return days[i] if i < len(days) and days[i] <= length else 0
        first_weekday = _FIRST_WEEKDAYS[index]
        if kind == _DAYS_OF_WEEK:
            found = day + rule.days[(first_weekday + day - 1) % 7]
            return found if found <= length else 0
        if kind == _ONE_DAY_OF_MONTH:
            target = length - rule.day if rule.from_last else rule.day
            if not 1 <= target <= length:
                return 0
            if rule.nearest_weekday:
                weekday = (first_weekday + target - 1) % 7
                # Quartz's W: the nearest weekday, never crossing into another month.
                if weekday == 6:  # Saturday: the Friday before, or Monday the 3rd
                    target = target - 1 if target > 1 else target + 2
                elif weekday == 0:  # Sunday: the Monday after, or the Friday before the end
                    target = target + 1 if target < length else target - 2
        elif kind == _LAST_WEEKDAY:
            last_weekday = (first_weekday + length - 1) % 7
            target = length - (last_weekday - rule.weekday) % 7
        else:  # _NTH_WEEKDAY
            target = 1 + (rule.weekday - first_weekday) % 7 + 7 * (rule.nth - 1)
            if target > length:
                return 0
        return target if target >= day else 0


def _can_ever_match(rule: _DayRule, months: tuple[int, ...]) -> bool:
    # Recognise at parse time the day-of-month rules no allowed month can satisfy (Feb 30,
    # 31 in 30-day months, 31W in November), so next_fire_after answers None at once instead of
    # walking to 2199. Rules that fire in some years only (Feb 29, 5th Friday) are left to the
    # walk, which the Year field bounds.
    longest = max(_MAX_MONTH_DAYS[month] for month in months)
    if rule.kind == _DAYS_OF_MONTH:
        return rule.days[0] <= longest
    if rule.kind == _ONE_DAY_OF_MONTH:
        return rule.day < longest if rule.from_last else rule.day <= longest
    return True


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
