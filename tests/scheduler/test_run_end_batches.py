"""Run ends reported together are written together (``run_end.RunEnd``'s batches): one
transaction, one promotion for every slot they free, each caller answered with its own end.

On a real database, with two replicas' stores on it; no process is started. Ends reported in
one turn of the event loop (``asyncio.gather``) make one batch.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select

from glue_vocabulary.run_states import HOLDS_PROCESS_SLOT, JobRunState
from scheduler_service.firing import Firing
from scheduler_service.run_end import Ended, RunEnd
from scheduler_service.runs import EndReport, NotOwnerError, RunStore
from scheduler_service.slots import ProcessSlots
from scheduler_service.tables import runs
from servicekit.db import Database
from tests.helpers.scheduler_store import add_job, admit, run_store
from tests.scheduler.test_run_end import run_events

SUCCEEDED = EndReport(JobRunState.SUCCEEDED, None, started=True)


def replica(db: Database, tmp_path: Path, name: str) -> tuple[RunStore, RunEnd]:
    store = run_store(db, tmp_path / name, name, site=f"site-{name}")
    firing = Firing(db, store, misfire_grace_seconds=60, slots=ProcessSlots(1))
    return store, RunEnd(store, firing)


async def active_runs(db: Database, job: str) -> int:
    async with db.read() as conn:
        states = (await conn.execute(select(runs.c.state).where(runs.c.job_name == job))).all()
    return sum(JobRunState(state) in HOLDS_PROCESS_SLOT for (state,) in states)


async def test_ends_together_share_a_promotion_and_each_caller_gets_its_own_runs(
    scheduler_db: Database, tmp_path: Path
) -> None:
    store, run_end = replica(scheduler_db, tmp_path, "mine")
    await add_job(scheduler_db, "job", max_concurrent_runs=5, job_run_queuing_enabled=True)
    for i in range(1, 6):
        await admit(store, "job", f"jr_{i}", slot=True)
    for i in range(1, 5):
        await admit(store, "job", f"jr_w{i}", slot=False)  # the job is full: they queue

    # Reported together: one batch, offering 1 + 1 + 0 + 2 + 1 slots to the four runs
    # waiting, each caller getting the runs promoted into the slots it offered.
    offered = {"jr_1": 1, "jr_2": 1, "jr_3": 0, "jr_4": 2, "jr_5": 1}
    ended = dict(
        zip(
            offered,
            await asyncio.gather(
                *(run_end.finish(run_id, SUCCEEDED, free_slots=n) for run_id, n in offered.items())
            ),
            strict=True,
        )
    )
    assert run_end._batches.batches == 1
    assert {run_id: [r.run_id for r in e.promoted] for run_id, e in ended.items()} == {
        "jr_1": ["jr_w1"],
        "jr_2": ["jr_w2"],
        "jr_3": [],
        "jr_4": ["jr_w3", "jr_w4"],
        "jr_5": [],
    }
    # The batch's promotion saw the whole queue: the callers that offered a slot may give
    # theirs back to new admissions.
    assert [ended[r].queue_exhausted for r in ("jr_2", "jr_3", "jr_4", "jr_5")] == [
        True,
        False,
        True,
        True,
    ]
    for run_id in offered:
        result = ended[run_id]
        assert result.run is not None and result.run.state is JobRunState.SUCCEEDED
        assert await run_events(scheduler_db, run_id) == ["STARTING", "RUNNING", "SUCCEEDED"]
    for i in range(1, 5):
        promoted = await store.get(f"jr_w{i}")
        assert promoted is not None and (promoted.state, promoted.owner) == (
            JobRunState.STARTING,
            "mine",
        )
    assert await active_runs(scheduler_db, "job") == 4


async def test_a_batchs_promotion_keeps_max_concurrent_runs(
    scheduler_db: Database, tmp_path: Path
) -> None:
    store, run_end = replica(scheduler_db, tmp_path, "mine")
    await add_job(scheduler_db, "two", max_concurrent_runs=2, job_run_queuing_enabled=True)
    await add_job(scheduler_db, "other", max_concurrent_runs=10)
    await admit(store, "two", "jr_two_1", slot=True)
    await admit(store, "two", "jr_two_2", slot=True)
    for i in range(3):
        await admit(store, "other", f"jr_other_{i}", slot=True)
    for i in range(3):
        await admit(store, "two", f"jr_two_w{i}", slot=False)

    # Three slots offered in one batch, but only jr_two_2's end makes room in "two".
    calls = [("jr_other_0", 0), ("jr_other_1", 1), ("jr_two_2", 1), ("jr_other_2", 1)]
    results = await asyncio.gather(
        *(run_end.finish(run_id, SUCCEEDED, free_slots=n) for run_id, n in calls)
    )
    promoted = [run.run_id for result in results for run in result.promoted]
    assert promoted == ["jr_two_w0"]
    assert await active_runs(scheduler_db, "two") == 2
    # The rest wait for "two" (MaxConcurrentRuns), not for a slot: those who offered one may
    # give it back to new admissions.
    assert [result.queue_exhausted for result in results] == [False, True, True, True]


async def test_a_failed_run_in_a_batch_gets_its_retry(
    scheduler_db: Database, tmp_path: Path
) -> None:
    store, run_end = replica(scheduler_db, tmp_path, "mine")
    await add_job(scheduler_db, "flaky", max_concurrent_runs=10, max_retries=1)
    for i in range(3):
        await admit(store, "flaky", f"jr_{i}", slot=True)
    failed = EndReport(JobRunState.FAILED, "boom", started=True)
    results = await asyncio.gather(
        run_end.finish("jr_0", SUCCEEDED, free_slots=1),
        run_end.finish("jr_1", failed, free_slots=1),
        run_end.finish("jr_2", SUCCEEDED, free_slots=1),
    )
    assert run_end._batches.batches == 1
    retried = results[1]
    assert retried.run is not None and retried.run.state is JobRunState.FAILED
    [retry] = retried.created
    assert (retry.state, retry.attempt, retry.record["PreviousRunId"]) == (
        JobRunState.WAITING,
        1,
        "jr_1",
    )
    assert [r.created for r in (results[0], results[2])] == [[], []]
    # A retry waits out its backoff: the queue is not empty, whatever the promotion saw.
    assert not any(r.queue_exhausted for r in results[1:])
    assert await run_events(scheduler_db, retry.run_id) == ["WAITING"]


async def test_a_batch_answers_another_replicas_run_and_an_ended_one_alone(
    scheduler_db: Database, tmp_path: Path
) -> None:
    mine, _ = replica(scheduler_db, tmp_path, "mine")
    other, other_end = replica(scheduler_db, tmp_path, "other")
    await add_job(scheduler_db, "job", max_concurrent_runs=10)
    await admit(mine, "job", "jr_mine", slot=True)
    for i in range(3):
        await admit(other, "job", f"jr_other_{i}", slot=True)
    await other_end.finish("jr_other_2", SUCCEEDED)

    results = await asyncio.gather(
        other_end.finish("jr_other_0", SUCCEEDED),
        other_end.finish("jr_mine", SUCCEEDED),  # not its own: fenced
        other_end.finish("jr_other_1", SUCCEEDED),
        other_end.finish("jr_other_2", EndReport(JobRunState.FAILED, "late")),  # ended
        return_exceptions=True,
    )
    assert isinstance(results[1], NotOwnerError)
    assert isinstance(results[3], Ended) and results[3].run is None
    for result in (results[0], results[2]):
        assert isinstance(result, Ended) and result.run is not None
    stored = await mine.get("jr_mine")
    assert stored is not None and stored.state is JobRunState.STARTING
    ended = await other.get("jr_other_2")
    assert ended is not None and ended.state is JobRunState.SUCCEEDED


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_a_batch_does_not_wait_for_a_run_another_transaction_holds(
    scheduler_db: Database, tmp_path: Path
) -> None:
    """The batch skips the held row (SKIP LOCKED) and commits the others; the held run's end
    is then written alone, once the holder lets go."""
    store, run_end = replica(scheduler_db, tmp_path, "mine")
    await add_job(scheduler_db, "job", max_concurrent_runs=10)
    for i in range(3):
        await admit(store, "job", f"jr_{i}", slot=True)
    held = asyncio.Event()
    release = asyncio.Event()

    async def hold_row() -> None:
        async with scheduler_db.transaction() as conn:
            await conn.execute(
                select(runs.c.run_id).where(runs.c.run_id == "jr_1").with_for_update()
            )
            held.set()
            await release.wait()

    holder = asyncio.create_task(hold_row())
    await held.wait()
    ends = {
        run_id: asyncio.create_task(run_end.finish(run_id, SUCCEEDED))
        for run_id in ("jr_0", "jr_1", "jr_2")
    }
    async with asyncio.timeout(10):
        await ends["jr_0"]
        await ends["jr_2"]  # in the batch with jr_1, not waiting for it
    assert not ends["jr_1"].done()
    release.set()
    await holder
    async with asyncio.timeout(10):
        result = await ends["jr_1"]
    assert result.run is not None and result.run.state is JobRunState.SUCCEEDED
    for run_id in ("jr_0", "jr_1", "jr_2"):
        assert await run_events(scheduler_db, run_id) == ["STARTING", "RUNNING", "SUCCEEDED"]


async def test_ends_after_close_are_written_alone(scheduler_db: Database, tmp_path: Path) -> None:
    store, run_end = replica(scheduler_db, tmp_path, "mine")
    await add_job(scheduler_db, "job", max_concurrent_runs=10)
    for i in range(3):
        await admit(store, "job", f"jr_{i}", slot=True)
    await run_end.close()
    results = await asyncio.gather(*(run_end.finish(f"jr_{i}", SUCCEEDED) for i in range(3)))
    assert all(r.run is not None for r in results)
    assert run_end._batches.batches == 0


async def test_a_batch_that_fails_is_written_again_end_by_end(
    scheduler_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, run_end = replica(scheduler_db, tmp_path, "mine")
    await add_job(scheduler_db, "job", max_concurrent_runs=10)
    for i in range(3):
        await admit(store, "job", f"jr_{i}", slot=True)

    async def broken(*args: object) -> None:
        raise RuntimeError("the database refused this batch")

    monkeypatch.setattr(store, "save_many", broken)
    results = await asyncio.gather(*(run_end.finish(f"jr_{i}", SUCCEEDED) for i in range(3)))
    assert run_end._batches.batches == 1
    assert all(r.run is not None and r.run.state is JobRunState.SUCCEEDED for r in results)
    for i in range(3):
        assert await run_events(scheduler_db, f"jr_{i}") == ["STARTING", "RUNNING", "SUCCEEDED"]
