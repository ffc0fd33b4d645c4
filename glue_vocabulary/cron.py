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

This module is the grammar's reference and the public names; the fields and calendar tables
are in ``cron_fields``, parsing in ``cron_parser``, the schedule and its next fire time in
``cron_schedule``.
"""

from __future__ import annotations

from glue_vocabulary.cron_fields import InvalidScheduleError
from glue_vocabulary.cron_parser import parse_schedule
from glue_vocabulary.cron_schedule import CronSchedule

__all__ = ["CronSchedule", "InvalidScheduleError", "parse_schedule"]
