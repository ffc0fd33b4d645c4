"""The six fields of Glue's cron schedules (see ``cron``): their ranges and names, the calendar
tables the next fire time is computed from, and the kinds of day rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Final

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
