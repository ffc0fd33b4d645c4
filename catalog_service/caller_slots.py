"""What one caller holds open at once (``CallerSlots``): unary calls in flight and GetJobRunLog
streams, capped per caller and in total (README "Limits and quotas").

The caller is ``identity.caller`` (set by the front door); None is one caller, "anonymous".
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing, asynccontextmanager
from typing import Any, TypeVar

from catalog_service import identity
from catalog_service.limits import ANONYMOUS, Limits
from servicekit.errors import GlueError, ResourceNumberLimitExceededException, ThrottlingException

T = TypeVar("T")


def caller_name() -> str:
    """The caller of the request being served, as the limits count it."""
    return identity.caller_name() or ANONYMOUS


class CallerSlots:
    """How many of something each caller holds (calls in flight, open streams), capped.

    Taking and giving back a slot never awaits, so on the one event loop that serves both front
    doors a check and its increment cannot interleave with another caller's.
    """

    def __init__(
        self,
        what: str,
        per_caller: tuple[int, str],
        total: tuple[int, str] | None,
        error: Callable[[str], GlueError],
    ) -> None:
        """Args:
        what: What a slot is, for messages ("calls in flight").
        per_caller: The cap per caller and the flag that sets it.
        total: The cap over all callers and its flag, or None.
        error: Builds the exception for a refusal from its message.
        """
        self._what = what
        self._per_caller, self._per_caller_flag = per_caller
        self._total = total
        self._error = error
        self._held: dict[str, int] = {}
        self._all = 0

    def held(self, caller: str | None = None) -> int:
        """Slots held by one caller, or by all of them."""
        return self._all if caller is None else self._held.get(caller, 0)

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        """Hold one slot of the current caller for the block; refuse if none is free.

        Raises:
            GlueError: the class ``error`` builds, naming the cap that was reached.
        """
        who = caller_name()
        mine = self._held.get(who, 0)
        if mine >= self._per_caller:
            raise self._error(
                f"{who} already has {mine} {self._what}, the most one caller may have "
                f"(--{self._per_caller_flag} {self._per_caller}); retry when one has finished"
            )
        if self._total is not None and self._all >= self._total[0]:
            raise self._error(
                f"the service already has {self._all} {self._what}, the most it allows "
                f"(--{self._total[1]} {self._total[0]}); retry when one has finished"
            )
        self._held[who] = mine + 1
        self._all += 1
        try:
            yield
        finally:
            left = self._held[who] - 1
            if left:
                self._held[who] = left
            else:
                del self._held[who]
            self._all -= 1

    def guard(self, call: Callable[[T], Awaitable[Any]]) -> Callable[[T], Awaitable[Any]]:
        """``call`` holding a slot while it runs."""

        async def guarded(arg: T) -> Any:
            async with self.hold():
                return await call(arg)

        return guarded

    async def stream(self, items: AsyncIterator[T]) -> AsyncIterator[T]:
        """``items`` holding a slot from the first item until the stream ends or is dropped.

        A client that goes away cancels the task iterating this; the slot is freed and the
        inner stream closed on the way out.
        """
        async with self.hold(), aclosing(items) as inner:  # type: ignore[type-var]
            async for item in inner:
                yield item


def calls_in_flight(limits: Limits) -> CallerSlots:
    """The cap on unary calls in flight per caller (both front doors)."""
    return CallerSlots(
        "calls in flight",
        (limits.max_calls_in_flight_per_caller, "max-calls-in-flight-per-caller"),
        None,
        ThrottlingException,
    )


def log_streams(limits: Limits) -> CallerSlots:
    """The caps on open GetJobRunLog streams, per caller and in total."""
    return CallerSlots(
        "GetJobRunLog streams open",
        (limits.max_log_streams_per_caller, "max-log-streams-per-caller"),
        (limits.max_log_streams, "max-log-streams"),
        ResourceNumberLimitExceededException,
    )
