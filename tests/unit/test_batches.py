"""servicekit.batches: calls made while a batch is in flight go together in the next one."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from servicekit.batches import Batches


class Stopping(Exception):
    """The error callers get when the batches stop."""


class Recorder:
    """A write that records its batches; it waits for ``gate`` when one is set."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.settled: list[tuple[int, object]] = []
        self.gate: asyncio.Event | None = None

    async def write(self, items: list[int]) -> Sequence[int | BaseException]:
        self.batches.append(list(items))
        if self.gate is not None:
            await self.gate.wait()
        return [ValueError(f"odd {i}") if i % 2 else i * 10 for i in items]

    def settle(self, item: int, result: object) -> None:
        self.settled.append((item, result))


def batches(recorder: Recorder, **options: int) -> Batches[int, int]:
    return Batches(
        recorder.write,
        stopping=Stopping,
        settle=recorder.settle,
        max_batch=options.pop("max_batch", 100),
        **options,  # type: ignore[arg-type]
    )


async def test_calls_made_together_go_in_one_batch_each_answered_alone() -> None:
    recorder = Recorder()
    calls = batches(recorder)
    results = await asyncio.gather(*(calls.submit(i) for i in range(6)), return_exceptions=True)
    # The first call found no batch in flight and started one; it ran after all six queued.
    assert recorder.batches == [[0, 1, 2, 3, 4, 5]]
    assert results[0::2] == [0, 20, 40]
    assert [str(r) for r in results[1::2]] == ["odd 1", "odd 3", "odd 5"]
    assert len(recorder.settled) == 6


async def test_a_lone_call_is_written_at_once() -> None:
    recorder = Recorder()
    calls = batches(recorder)
    assert await calls.submit(4) == 40
    assert await calls.submit(6) == 60
    assert recorder.batches == [[4], [6]]


async def test_batches_are_bounded_by_count_and_by_size() -> None:
    recorder = Recorder()
    calls = batches(recorder, max_batch=3)
    await asyncio.gather(*(calls.submit(i * 2) for i in range(7)))
    assert [len(b) for b in recorder.batches] == [3, 3, 1]

    sized = Recorder()
    by_size: Batches[int, int] = Batches(
        sized.write, stopping=Stopping, max_batch=100, size=lambda i: i, max_size=10
    )
    await asyncio.gather(*(by_size.submit(i) for i in (4, 4, 4, 20, 2)))
    # 4+4 fit, the third 4 does not; 20 is over the bound alone and still goes, alone.
    assert sized.batches == [[4, 4], [4], [20], [2]]


async def test_two_writers_take_turns_with_the_queue() -> None:
    recorder = Recorder()
    recorder.gate = asyncio.Event()
    calls = batches(recorder, writers=2)
    first = asyncio.ensure_future(calls.submit(0))
    await asyncio.sleep(0)
    second = asyncio.ensure_future(calls.submit(2))
    await asyncio.sleep(0)
    rest = [asyncio.ensure_future(calls.submit(i)) for i in (4, 6, 8)]
    await asyncio.sleep(0.01)
    # Two batches in flight (a lone call each); the rest wait for one of them to end.
    assert recorder.batches == [[0], [2]]
    recorder.gate.set()
    assert await asyncio.gather(first, second, *rest) == [0, 20, 40, 60, 80]
    assert sorted(map(len, recorder.batches)) == [1, 1, 3]


async def test_an_error_of_the_whole_write_fails_each_caller_with_its_own_copy() -> None:
    async def broken(items: list[int]) -> Sequence[int]:
        raise RuntimeError("the link broke")

    calls: Batches[int, int] = Batches(broken, stopping=Stopping, max_batch=10)
    results = await asyncio.gather(*(calls.submit(i) for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) and str(r) == "the link broke" for r in results)
    assert len({id(r) for r in results}) == 3


async def test_a_write_that_answers_the_wrong_count_fails_its_callers() -> None:
    async def short(items: list[int]) -> Sequence[int]:
        return items[:-1]

    calls: Batches[int, int] = Batches(short, stopping=Stopping, max_batch=10)
    results = await asyncio.gather(*(calls.submit(i) for i in range(3)), return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results), results


async def test_closing_answers_the_batch_in_flight_and_the_queue_and_settles_each() -> None:
    recorder = Recorder()
    recorder.gate = asyncio.Event()  # never set: the first batch hangs
    calls = batches(recorder)
    waiting = [asyncio.ensure_future(calls.submit(i)) for i in range(4)]
    await asyncio.sleep(0.01)
    later = asyncio.ensure_future(calls.submit(10))  # queued behind the hung batch
    await asyncio.sleep(0.01)
    await calls.close()
    results = await asyncio.gather(*waiting, later, return_exceptions=True)
    assert all(isinstance(r, Stopping) for r in results), results
    assert sorted(item for item, _ in recorder.settled) == [0, 1, 2, 3, 10]
    with pytest.raises(Stopping):
        await calls.submit(12)


async def test_a_caller_that_gave_up_is_still_settled() -> None:
    recorder = Recorder()
    recorder.gate = asyncio.Event()
    calls = batches(recorder)
    impatient = asyncio.ensure_future(calls.submit(8))
    await asyncio.sleep(0.01)
    impatient.cancel()
    await asyncio.sleep(0)
    recorder.gate.set()
    await asyncio.sleep(0.01)
    assert recorder.settled == [(8, 80)]
    assert await calls.submit(2) == 20
