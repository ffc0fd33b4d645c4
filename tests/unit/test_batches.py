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


async def test_a_batch_whose_write_raises_is_written_again_one_item_at_a_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    written: list[list[int]] = []
    alone: list[int] = []
    settled: list[tuple[int, object]] = []

    async def poisoned(items: list[int]) -> Sequence[int]:
        written.append(list(items))
        if 13 in items:
            raise RuntimeError("the database refused something in this batch")
        return [i * 10 for i in items]

    async def write_alone(item: int) -> int | BaseException:
        alone.append(item)
        if item == 13:
            raise RuntimeError("refused: 13")
        return ValueError(f"odd {item}") if item % 2 else item * 10

    calls: Batches[int, int] = Batches(
        poisoned,
        stopping=Stopping,
        max_batch=10,
        settle=lambda item, result: settled.append((item, result)),
        write_alone=write_alone,
        noun="numbers",
    )
    results = await asyncio.gather(
        *(calls.submit(i) for i in (2, 13, 4, 7)), return_exceptions=True
    )
    # One batch; it failed, so each item was written alone, in order.
    assert written == [[2, 13, 4, 7]]
    assert alone == [2, 13, 4, 7]
    assert results[0::2] == [20, 40]
    assert [(type(r), str(r)) for r in results[1::2]] == [
        (RuntimeError, "refused: 13"),
        (ValueError, "odd 7"),
    ]
    assert [item for item, _ in settled] == [2, 13, 4, 7]
    assert [r.getMessage() for r in caplog.records] == [
        "a batch of numbers failed; writing them one by one"
    ]
    # A batch whose write succeeds is answered from it; a lone call is written alone.
    assert await asyncio.gather(calls.submit(8), calls.submit(10)) == [80, 100]
    assert await calls.submit(6) == 60
    assert written[1:] == [[8, 10]]
    assert alone[4:] == [6]


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
