"""Misfire arithmetic: which due time of a schedule fires now, and what the missed ones become.

Due times missed while no scheduler ran are not replayed. If the latest missed due time is
within the grace window it fires once, and the earlier ones become one COALESCED ledger row;
otherwise they become one SKIPPED row and the trigger waits for its next due time
(``scheduled_fires.ScheduledFiring._step`` decides per trigger).
"""

from __future__ import annotations

from typing import Any, NamedTuple

from scheduler_service import registry
from scheduler_service.fire_ledger import _dt, _ledger_row

# Missed due times counted one by one at most this far; beyond it the ledger says "at least".
MISSED_COUNT_LIMIT = 100_000


class _Step(NamedTuple):
    """One due time of a schedule, worked out at one instant (see module docstring)."""

    fire_at: float | None
    """The due time that fires now; None: none is within the misfire grace."""
    fire_key: str | None
    """The ledger key of that fire (None when nothing fires)."""
    missed: int
    """Earlier due times not replayed, recorded as one COALESCED (or SKIPPED) ledger row."""
    following: float | None
    """The schedule's next due time once this one is handled (None: never again)."""


def _misfire_row(
    trigger_name: str, due: float, missed: int, outcome: str, then: str
) -> tuple[Any, ...]:
    """The one ledger row of the due times from ``due`` that did not fire: SKIPPED or
    COALESCED, keyed by its outcome and first due time; ``then`` ends the reason with what
    became of them."""
    return _ledger_row(
        trigger_name,
        f"{outcome.lower()}:{registry.fire_key_for_instant(due)}",
        scheduled_at=due,
        outcome=outcome,
        reason=(
            f"{_count(missed)} due time(s) from {_iso(due)} were missed while "
            f"no scheduler ran{then}"
        ),
        due_times=missed,
    )


def _next(schedule: Any, after: float) -> float | None:
    following = schedule.next_fire_after(_dt(after))
    return following.timestamp() if following is not None else None


def _count_between(schedule: Any, first: float, end: float) -> int:
    """How many due times lie in [first, end), counting at most MISSED_COUNT_LIMIT."""
    count, current = 0, first
    while current < end and count < MISSED_COUNT_LIMIT:
        count += 1
        following = _next(schedule, current)
        if following is None:
            break
        current = following
    return count


def _iso(epoch: float) -> str:
    return _dt(epoch).strftime("%Y-%m-%dT%H:%M:%SZ")


def _count(n: int) -> str:
    return f"at least {n}" if n >= MISSED_COUNT_LIMIT else str(n)
