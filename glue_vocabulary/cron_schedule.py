"""CronSchedule: a parsed Glue cron schedule (see ``cron``) and its next fire time."""

from __future__ import annotations

from bisect import bisect_left
from datetime import UTC, datetime

from glue_vocabulary.cron_fields import (
    _ANY_DAY,
    _DAYS_OF_MONTH,
    _DAYS_OF_WEEK,
    _FIRST_WEEKDAYS,
    _LAST_WEEKDAY,
    _MAX_MONTH_DAYS,
    _MONTH_LENGTHS,
    _ONE_DAY_OF_MONTH,
    MIN_YEAR,
    _DayRule,
)


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
