"""How long a failed run's automatic retry waits before it may start: exponential backoff.

A retry (Glue's MaxRetries) is a new WAITING run, inserted in the transaction that ends the
failed run, with a not-before time (``scheduler_runs.not_before``) that promotion respects; so
the wait survives a restart, and the retry is made exactly once. Without a wait, a script that
fails at once would be restarted as fast as processes can start (93 attempts in 5 s were seen
with MaxRetries 2^31-1 before the catalog capped it at 10).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from scheduler_service.settings import SchedulerSettings

__all__ = ["DEFAULT_FIRST_SECONDS", "DEFAULT_MAX_SECONDS", "RetryBackoff", "retry_backoff"]

DEFAULT_FIRST_SECONDS: Final = 1.0
DEFAULT_MAX_SECONDS: Final = 60.0
# 2**64 times any sane first delay is far past any ceiling; stops the float overflowing.
_MAX_DOUBLINGS: Final = 64


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryBackoff:
    """The waits before automatic retries: ``first_seconds``, doubling, at most ``max_seconds``."""

    first_seconds: float = DEFAULT_FIRST_SECONDS
    """The wait before the first retry (Attempt 1)."""
    max_seconds: float = DEFAULT_MAX_SECONDS
    """No retry waits longer than this."""

    def __post_init__(self) -> None:
        for name in ("first_seconds", "max_seconds"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number of seconds, 0 or more")

    def delay(self, attempt: int) -> float:
        """Seconds retry ``attempt`` (1 for the first retry) waits after the failure before it."""
        if attempt < 1:
            return 0.0
        doublings = min(attempt - 1, _MAX_DOUBLINGS)
        return min(self.max_seconds, self.first_seconds * 2.0**doublings)


def retry_backoff(settings: SchedulerSettings) -> RetryBackoff:
    """The backoff a scheduler's settings ask for (``--retry-backoff``, ``--retry-backoff-max``)."""
    return RetryBackoff(
        first_seconds=settings.retry_backoff_seconds,
        max_seconds=settings.retry_backoff_max_seconds,
    )
