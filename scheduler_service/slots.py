"""The scheduler's process slots: how many runs this replica has processes for at once.

One ``ProcessSlots`` per scheduler process, made by the app and shared by whoever starts runs:
admissions and trigger fires reserve a slot for a run that may start at once, the executor holds
one for every run it launches, adopts or watches, and gives it back when the run ends (or hands
it straight to a waiting run promoted in the transaction that ended the run, ``run_end``).

New runs queue behind waiting ones (first in, first out): while runs may be WAITING, a new run
gets no slot at admission, and only promotion fills freed slots. Plain counters on the event
loop: nothing here awaits, so a check and its update cannot interleave with another.
"""

from __future__ import annotations

from collections.abc import Callable


class ProcessSlots:
    """A bounded count of process slots, and whether runs may be waiting for one."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._used = 0
        # True while runs may be WAITING (the safe guess at start-up): new runs then queue.
        self._maybe_waiting = True
        self._freed: list[Callable[[], None]] = []

    @property
    def capacity(self) -> int:
        """Processes this replica runs at once at most (``--max-processes``)."""
        return self._capacity

    @property
    def used(self) -> int:
        """Slots held right now (adopted runs may take it past ``capacity``)."""
        return self._used

    @property
    def free(self) -> int:
        """Slots not held (never negative)."""
        return max(0, self._capacity - self._used)

    @property
    def maybe_waiting(self) -> bool:
        """Whether runs may be WAITING for a slot (new runs then queue behind them)."""
        return self._maybe_waiting

    def when_freed(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` whenever slots are given back (the executor promotes then)."""
        self._freed.append(callback)

    def reserve(self, wanted: int = 1) -> int:
        """Take up to ``wanted`` free slots for new runs that may start at once; returns how
        many. None while runs may be waiting: they come first."""
        if self._maybe_waiting:
            return 0
        granted = max(0, min(wanted, self._capacity - self._used))
        self._used += granted
        return granted

    def take_free(self, wanted: int) -> int:
        """Take up to ``wanted`` free slots for waiting runs about to be promoted."""
        granted = max(0, min(wanted, self._capacity - self._used))
        self._used += granted
        return granted

    def hold(self) -> None:
        """Take a slot whatever the count: a run taken over runs (or must be launched) anyway."""
        self._used += 1

    def release(self, count: int = 1, *, notify: bool = True) -> None:
        """Give back ``count`` slots (runs ended, or reservations not used); unless not
        ``notify``, tell the ``when_freed`` callbacks."""
        if count <= 0:
            return
        self._used -= count
        assert self._used >= 0, self._used
        if notify:
            for callback in self._freed:
                callback()

    def runs_waiting(self) -> None:
        """A run was created WAITING: new runs queue behind it until promotion drains them."""
        self._maybe_waiting = True

    def none_waiting(self) -> None:
        """Promotion found fewer waiting runs than it had slots for: new runs may take slots."""
        self._maybe_waiting = False
