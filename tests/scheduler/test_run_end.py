"""A run's end and what follows in its transaction (``run_end``); launches recorded with the
transaction that gives a run its slot (``RunStore.launched_here``), STARTING; RUNNING written
once the process started (``RunStore.mark_running``) or with the end. On a real database, with
two replicas' stores on it; no process is started."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from glue.v1 import glue_pb2
from glue_vocabulary.run_states import JobRunState
from scheduler_service.firing import Firing
from scheduler_service.leases import Replica
from scheduler_service.outbox import EventFeed
from scheduler_service.run_end import RunEnd
from scheduler_service.runs import EndReport, NotOwnerError, RunStore
from scheduler_service.slots import ProcessSlots
from scheduler_service.tables import outbox
from servicekit.db import Database
from tests.helpers.scheduler_store import add_job as register_job
from tests.helpers.scheduler_store import admit, run_store


@dataclass
class Replicas:
    db: Database
    mine: RunStore
    mine_end: RunEnd
    other: RunStore
    other_end: RunEnd


@pytest.fixture
async def replicas(scheduler_db: Database, tmp_path: Path) -> Replicas:
    def replica(name: str) -> tuple[RunStore, RunEnd]:
        store = run_store(scheduler_db, tmp_path / name, name, site=f"site-{name}")
        firing = Firing(scheduler_db, store, misfire_grace_seconds=60, slots=ProcessSlots(1))
        return store, RunEnd(store, firing)

    mine, mine_end = replica("mine")
    other, other_end = replica("other")
    return Replicas(scheduler_db, mine, mine_end, other, other_end)


async def add_job(db: Database, name: str, max_concurrent_runs: int) -> None:
    """A job whose runs beyond ``max_concurrent_runs`` wait (JobRunQueuingEnabled)."""
    await register_job(
        db, name, max_concurrent_runs=max_concurrent_runs, job_run_queuing_enabled=True
    )


async def events(db: Database) -> list[tuple[str, str]]:
    """(run id, state) of every event, in sequence order."""
    async with db.read() as conn:
        rows = await conn.execute(select(outbox.c.run_id, outbox.c.payload).order_by(outbox.c.seq))
        return [(r.run_id, glue_pb2.JobRun.FromString(r.payload).job_run_state) for r in rows]


async def test_an_admission_into_a_slot_records_the_launch_and_one_event(
    replicas: Replicas,
) -> None:
    await add_job(replicas.db, "job", 2)
    started = await admit(replicas.mine, "job", "jr_started", slot=True)
    waiting = await admit(replicas.mine, "job", "jr_waiting", slot=False)
    run = started.run
    assert run.state is JobRunState.STARTING
    assert (run.owner, run.site) == ("mine", "site-mine")
    assert run.deadline == pytest.approx(run.created_at + run.timeout_minutes * 60)
    assert started.event.run.job_run_state == "STARTING"
    stored = await replicas.mine.get("jr_started")
    assert stored is not None and (stored.state, stored.site, stored.owner) == (
        JobRunState.STARTING,
        "site-mine",
        "mine",
    )
    assert stored.lease_until is not None
    assert waiting.run.state is JobRunState.WAITING and waiting.run.site is None
    assert await events(replicas.db) == [("jr_started", "STARTING"), ("jr_waiting", "WAITING")]


async def test_a_run_end_promotes_into_the_slot_it_frees_within_max_concurrent_runs(
    replicas: Replicas,
) -> None:
    await add_job(replicas.db, "one", 1)  # one at a time: its second run queues
    await add_job(replicas.db, "many", 5)
    first = await admit(replicas.mine, "one", "jr_1", slot=True)
    await admit(replicas.mine, "one", "jr_2", slot=False)
    await admit(replicas.mine, "many", "jr_3", slot=False)
    await admit(replicas.mine, "one", "jr_4", slot=False)
    assert first.run.state is JobRunState.STARTING

    # The other replica has a slot: "one" is full, so the oldest run it may start is jr_3.
    [taken] = (await replicas.other.promote_waiting(1)).runs
    assert taken.run_id == "jr_3" and taken.owner == "other"
    # jr_1's end frees "one" and a slot of this replica: jr_2 gets them, in the same commit.
    assert await replicas.mine.mark_running(["jr_1"]) != []
    ended = await replicas.mine_end.finish(
        "jr_1", EndReport(JobRunState.SUCCEEDED, None, started=True), free_slots=1
    )
    assert ended.run is not None and ended.run.state is JobRunState.SUCCEEDED
    [run] = ended.promoted
    assert run.run_id == "jr_2"
    assert (run.state, run.owner, run.site) == (JobRunState.STARTING, "mine", "site-mine")
    assert run.deadline is not None and run.lease_until is not None
    # The end and the promotion are consecutive events of one transaction.
    assert (await events(replicas.db))[-2:] == [("jr_1", "SUCCEEDED"), ("jr_2", "STARTING")]
    # jr_3's end frees a slot of the other replica, but "one" is full again: jr_4 waits.
    other = await replicas.other_end.finish(
        "jr_3", EndReport(JobRunState.SUCCEEDED, None, started=True), free_slots=1
    )
    assert other.run is not None and other.promoted == []
    waiting = await replicas.mine.get("jr_4")
    assert waiting is not None and waiting.state is JobRunState.WAITING

    # jr_2's end frees "one": jr_4 follows it.
    again = await replicas.mine_end.finish(
        "jr_2", EndReport(JobRunState.SUCCEEDED, None, started=True), free_slots=1
    )
    assert [r.run_id for r in again.promoted] == ["jr_4"]
    # Nothing waits any more: an end offering its slot promotes nothing.
    last = await replicas.mine_end.finish(
        "jr_4", EndReport(JobRunState.SUCCEEDED, None, started=True), free_slots=1
    )
    assert last.run is not None and last.promoted == []


async def test_a_run_end_is_fenced_and_written_once(replicas: Replicas) -> None:
    await add_job(replicas.db, "job", 3)
    await admit(replicas.mine, "job", "jr_mine", slot=True)
    with pytest.raises(NotOwnerError):
        await replicas.other_end.finish(
            "jr_mine", EndReport(JobRunState.FAILED, "not mine"), free_slots=1
        )
    # Nor is its RUNNING write: another replica's batch leaves it alone.
    assert await replicas.other.mark_running(["jr_mine"]) == []
    ended = await replicas.mine_end.finish(
        "jr_mine", EndReport(JobRunState.SUCCEEDED, None, started=True)
    )
    assert ended.run is not None
    repeated = await replicas.mine_end.finish(
        "jr_mine", EndReport(JobRunState.FAILED, "again", started=True)
    )
    assert repeated.run is None
    stored = await replicas.mine.get("jr_mine")
    assert stored is not None and stored.state is JobRunState.SUCCEEDED
    assert await run_events(replicas.db, "jr_mine") == ["STARTING", "RUNNING", "SUCCEEDED"]


async def run_events(db: Database, run_id: str) -> list[str]:
    """The states of one run's events, in sequence order."""
    return [state for event_run_id, state in await events(db) if event_run_id == run_id]


async def test_glue_progression_starting_running_end_whichever_writes_running(
    replicas: Replicas,
) -> None:
    """Glue's STARTING -> RUNNING -> end: RUNNING written by the batch once the process
    started, or - for a trivial run whose end comes first - by the end's own transaction,
    just before the end; a process that could not start goes STARTING -> ERROR."""
    await add_job(replicas.db, "job", 10)
    for run_id in ("jr_batched", "jr_trivial", "jr_error", "jr_other"):
        admitted = await admit(replicas.mine, "job", run_id, slot=True)
        assert admitted.event.run.job_run_state == "STARTING"  # StartRun's answer
    # Several runs' RUNNING writes in one transaction: consecutive events.
    moved = await replicas.mine.mark_running(["jr_batched", "jr_other"])
    assert sorted(run.run_id for run in moved) == ["jr_batched", "jr_other"]
    assert {run.state for run in moved} == {JobRunState.RUNNING}
    assert [state for _, state in (await events(replicas.db))[-2:]] == ["RUNNING", "RUNNING"]
    assert await replicas.mine.mark_running(["jr_batched"]) == []  # written once
    await replicas.mine_end.finish(
        "jr_batched", EndReport(JobRunState.SUCCEEDED, None, started=True)
    )

    # The trivial run ends before its RUNNING write: two events in the end's commit.
    ended = await replicas.mine_end.finish(
        "jr_trivial", EndReport(JobRunState.SUCCEEDED, None, started=True)
    )
    assert ended.run is not None and ended.run.state is JobRunState.SUCCEEDED
    assert (await events(replicas.db))[-2:] == [
        ("jr_trivial", "RUNNING"),
        ("jr_trivial", "SUCCEEDED"),
    ]
    # Its batched RUNNING write comes too late and writes nothing.
    assert await replicas.mine.mark_running(["jr_trivial"]) == []

    await replicas.mine_end.finish("jr_error", EndReport(JobRunState.ERROR, "no such interpreter"))
    for run_id in ("jr_batched", "jr_trivial"):
        assert await run_events(replicas.db, run_id) == ["STARTING", "RUNNING", "SUCCEEDED"]
    assert await run_events(replicas.db, "jr_error") == ["STARTING", "ERROR"]
    stored = await replicas.mine.get("jr_trivial")
    assert stored is not None and stored.state is JobRunState.SUCCEEDED


async def test_a_queued_run_goes_waiting_starting_running_end(replicas: Replicas) -> None:
    await add_job(replicas.db, "job", 10)
    await admit(replicas.mine, "job", "jr_first", slot=True)
    await admit(replicas.mine, "job", "jr_queued", slot=False)
    # The first run's end promotes the queued one into its slot, STARTING.
    ended = await replicas.mine_end.finish(
        "jr_first", EndReport(JobRunState.SUCCEEDED, None, started=True), free_slots=1
    )
    [promoted] = ended.promoted
    assert promoted.run_id == "jr_queued" and promoted.state is JobRunState.STARTING
    [running] = await replicas.mine.mark_running(["jr_queued"])
    assert running.state is JobRunState.RUNNING
    await replicas.mine_end.finish(
        "jr_queued", EndReport(JobRunState.FAILED, "exit 1", started=True)
    )
    assert await run_events(replicas.db, "jr_queued") == [
        "WAITING",
        "STARTING",
        "RUNNING",
        "FAILED",
    ]


async def test_a_stream_gets_local_commits_from_memory_and_the_rest_in_order(
    replicas: Replicas,
) -> None:
    """The feed hands this process's commits over without a read; an event another replica
    committed in between is read from the table, so the stream stays in sequence order."""
    await add_job(replicas.db, "job", 10)
    feed = EventFeed(replicas.db)
    mine = RunStore(
        replicas.db, feed, Path("unused"), replica=Replica(replica_id="mine", site="site-mine")
    )
    stream = feed.stream(0)
    await admit(mine, "job", "jr_a", slot=False)
    assert (await anext(stream)).run.id == "jr_a"  # read from the table, then it waits
    await admit(replicas.other, "job", "jr_b", slot=False)  # another replica's commit
    await admit(mine, "job", "jr_c", slot=False)  # wakes the stream: jr_b is not in memory
    seen = [(await asyncio.wait_for(anext(stream), 0.5)).run.id for _ in range(2)]
    assert seen == ["jr_b", "jr_c"]
    await admit(mine, "job", "jr_d", slot=False)
    event = await asyncio.wait_for(anext(stream), 0.5)  # well within the poll interval
    assert (event.sequence, event.run.id, event.run.job_run_state) == (4, "jr_d", "WAITING")
    await stream.aclose()


async def test_a_promotion_racing_another_takes_the_next_run_not_an_empty_queue(
    replicas: Replicas,
) -> None:
    """Two promotions at once (two runs ending on two replicas): the second must not see the
    queue as empty because the first holds its head - a slot would then sit idle while runs
    wait. It waits for the first's commit and promotes the next run."""
    await add_job(replicas.db, "job", 100)
    for k in range(5):
        await admit(replicas.mine, "job", f"jr_{k}", slot=False)
    async with replicas.mine.write() as conn:
        first = await replicas.mine.promote(conn, 1)
        await replicas.mine.emit_many(conn, first.runs)
        racing = asyncio.create_task(replicas.other.promote_waiting(1))
        await asyncio.sleep(0.3)  # its read of the queue happens while this one is open
    second = await racing
    assert [r.run_id for r in first.runs] == ["jr_0"]
    assert [r.run_id for r in second.runs] == ["jr_1"]
    assert second.runs[0].owner == "other"
    # Each stopped at its one slot with runs still waiting: neither says the queue is empty.
    assert not first.exhausted and not second.exhausted
    rest = await replicas.mine.promote_waiting(10)
    assert [r.run_id for r in rest.runs] == ["jr_2", "jr_3", "jr_4"]
    assert rest.exhausted
    assert (await replicas.mine.promote_waiting(1)).exhausted


async def test_a_promotion_stopped_by_max_concurrent_runs_says_whether_the_queue_is_exhausted(
    replicas: Replicas,
) -> None:
    await add_job(replicas.db, "one", 1)
    await admit(replicas.mine, "one", "jr_1", slot=True)
    await admit(replicas.mine, "one", "jr_2", slot=False)
    # jr_2's job is full: nothing may start, and that is the whole queue.
    blocked = await replicas.mine.promote_waiting(1)
    assert blocked.runs == [] and blocked.exhausted
