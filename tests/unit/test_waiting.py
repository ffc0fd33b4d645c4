"""servicekit.waiting: a bounded wait that never loses a cancellation."""

from __future__ import annotations

import asyncio
import sys

import pytest

from servicekit.waiting import woken


async def test_woken_says_whether_the_event_was_set() -> None:
    event = asyncio.Event()
    assert not await woken(event, 0.01)
    asyncio.get_running_loop().call_later(0.01, event.set)
    assert await woken(event, 5.0)


async def test_a_cancellation_as_the_event_is_set_still_cancels() -> None:
    event = asyncio.Event()
    waiting = asyncio.create_task(woken(event, 60.0))
    await asyncio.sleep(0)  # now waiting on the event
    event.set()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="asyncio.wait_for was rewritten in 3.12")
async def test_asyncio_wait_for_loses_that_cancellation_on_this_python() -> None:
    # Why woken exists (and ruff bans asyncio.wait_for in the services): the same steps, and
    # the task that was cancelled returns normally.
    event = asyncio.Event()
    waiting = asyncio.create_task(asyncio.wait_for(event.wait(), 60.0))
    await asyncio.sleep(0)
    event.set()
    waiting.cancel()
    assert await waiting is True
    assert not waiting.cancelled()
