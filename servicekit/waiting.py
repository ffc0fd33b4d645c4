"""Waiting with a time limit without losing a cancellation.

Python 3.11's ``asyncio.wait_for`` returns the awaited result when the waiting task is
cancelled just as the awaited thing completes: the cancellation is lost. A loop that only a
cancellation ends (the catalog's reconciler, the scheduler's clock, the outbox's stream) then
runs on, and a shutdown that gathers it waits forever. CI saw it once: a catalog stop hung with
its reconciler woken at the moment it was cancelled. ``asyncio.timeout`` has no such race, so
the services use it (or ``woken``), and ruff bans ``asyncio.wait_for`` in them
(pyproject.toml, TID251).
"""

from __future__ import annotations

import asyncio

__all__ = ["woken"]


async def woken(event: asyncio.Event, seconds: float) -> bool:
    """Wait until ``event`` is set, for at most ``seconds``; whether it was set.

    A cancellation always propagates, even one that arrives as the event is set.
    """
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True
