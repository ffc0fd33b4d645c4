"""Rows that cannot be decoded: skipped, logged once with their key, and counted.

One bad row - JSON that does not parse, a state that is not a state, a run id that cannot name
a directory (written by an older version, by hand, or by a caller before the internal API was
checked) - must not stop start-up, recovery, the reaper or the clock for every other row. The
paths that read many rows decode each with ``decode`` and go on without the ones that fail;
where a row would otherwise be picked again and again (a run in flight, a due trigger) the
caller also parks it (an ERROR run, a trigger with no due time), so nothing is deleted and
the reason is kept (docs/invariants.md §6).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


class UnreadableRowError(ValueError):
    """A database row that cannot be decoded into its domain value."""

    def __init__(self, table: str, key: str, reason: str) -> None:
        super().__init__(f"{table} row {key[:200]!r} cannot be read: {reason}")
        self.table = table
        self.key = key
        self.reason = reason


class BadRowTally:
    """How many distinct bad rows this process met, per table; each is logged once."""

    def __init__(self) -> None:
        self.by_table: Counter[str] = Counter()
        self._seen: set[tuple[str, str]] = set()

    def note(self, error: UnreadableRowError) -> None:
        """Count and log a bad row (the first time it is met)."""
        if (error.table, error.key) in self._seen:
            return
        self._seen.add((error.table, error.key))
        self.by_table[error.table] += 1
        log.error(
            "skipping a database row that cannot be read",
            extra={
                "table": error.table,
                "key": error.key[:200],
                "reason": error.reason,
                "bad_rows": sum(self.by_table.values()),
            },
        )

    def clear(self) -> None:
        """Forget every row met (a scheduler started anew in the same process: tests)."""
        self.by_table.clear()
        self._seen.clear()

    def decode(self, rows: Iterable[Any], decode: Callable[[Any], T]) -> list[T]:
        """``decode`` applied to each row, without the rows it cannot read."""
        out = []
        for row in rows:
            try:
                out.append(decode(row))
            except UnreadableRowError as exc:
                self.note(exc)
        return out


TALLY = BadRowTally()
"""The process's tally (one scheduler per process; tests read it)."""
