"""Due schedules fired in batches (``Firing.fire_due``), with and without drafts made ahead.

These drive ``Firing`` directly on a scheduler database (no services): the ledger, the runs,
their outbox events and the due-time index are read back from the tables. Every test runs on
SQLite and on PostgreSQL, where ledger rows are written by COPY with a fallback.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from glue.scheduler.v1 import scheduler_pb2
from glue.v1 import glue_pb2
from glue_vocabulary.run_states import JobRunState
from glue_vocabulary.shapes import from_glue
from scheduler_service import registry
from scheduler_service.firing import Firing
from scheduler_service.run_record import RunDraft
from scheduler_service.slots import ProcessSlots
from scheduler_service.tables import outbox, runs, trigger_fires, triggers
from servicekit.db import Database
from tests.helpers.scheduler_store import add_job, run_store

# Never due by its schedule: the tests set ``next_fire_at`` themselves.
FAR_SCHEDULE = "cron(0 0 1 1 ? 2199)"


@dataclass
class Scheduler:
    """A scheduler database and the ``Firing`` on it (two process slots)."""

    db: Database
    firing: Firing
    slots: ProcessSlots


@pytest.fixture
def scheduler(scheduler_db: Database, tmp_path: Path) -> Scheduler:
    store = run_store(scheduler_db, tmp_path / "runs", "test")
    slots = ProcessSlots(2)
    slots.none_waiting()
    firing = Firing(scheduler_db, store, misfire_grace_seconds=60, slots=slots, batch_size=10)
    return Scheduler(scheduler_db, firing, slots)


async def add_triggers(db: Database, names: list[str], job: str, due: float) -> None:
    """ACTIVATED SCHEDULED triggers starting ``job``, all due at ``due``."""
    async with db.transaction() as conn:
        for name in names:
            trigger = glue_pb2.Trigger(
                name=name,
                type="SCHEDULED",
                state="ACTIVATED",
                schedule=FAR_SCHEDULE,
                actions=[glue_pb2.Action(job_name=job)],
            )
            await registry.upsert_trigger(
                conn, scheduler_pb2.TriggerRegistration(trigger=trigger, version=1)
            )
        await conn.execute(
            update(triggers).where(triggers.c.name.in_(names)).values(next_fire_at=due)
        )


async def fire_all(firing: Firing, now: float, batches_in_flight: int = 2) -> int:
    """Fire until nothing is due at ``now``, with batches in flight as the clock has them."""

    async def worker() -> int:
        handled = 0
        while True:
            count, _ = await firing.fire_due(now)
            handled += count
            if count < firing.batch_size:
                return handled

    return sum(await asyncio.gather(*(worker() for _ in range(batches_in_flight))))


async def ledger(db: Database) -> list[tuple[str, str, str, list[str], float]]:
    """(trigger, fire key, outcome, run ids, recorded at) of every ledger row."""
    async with db.read() as conn:
        rows = await conn.execute(select(trigger_fires).order_by(trigger_fires.c.trigger_name))
        return [
            (r.trigger_name, r.fire_key, r.outcome, json.loads(r.run_ids), r.recorded_at)
            for r in rows
        ]


async def runs_by_id(db: Database) -> dict[str, tuple[str, str, float, dict[str, object]]]:
    """run id -> (job, state, created at, record)."""
    async with db.read() as conn:
        rows = await conn.execute(select(runs))
        return {r.run_id: (r.job_name, r.state, r.created_at, json.loads(r.record)) for r in rows}


async def test_a_burst_fires_each_due_trigger_once_over_several_batches(
    scheduler: Scheduler,
) -> None:
    db, firing = scheduler.db, scheduler.firing
    await add_job(db, "job")
    names = [f"t{i:02d}" for i in range(25)]
    due = round(time.time() - 1, 3)
    await add_triggers(db, names, "job", due)

    assert await fire_all(firing, time.time()) == 25

    key = registry.fire_key_for_instant(due)
    rows = await ledger(db)
    assert [(r[0], r[1], r[2]) for r in rows] == [(name, key, "FIRED") for name in names]
    created = await runs_by_id(db)
    assert sorted(i for r in rows for i in r[3]) == sorted(created)
    assert {(job, record["TriggerName"]) for job, _, _, record in created.values()} == {
        ("job", name) for name in names
    }
    # Two process slots: two runs start, the rest wait.
    states = sorted(state for _, state, _, _ in created.values())
    assert states == ["STARTING"] * 2 + ["WAITING"] * 23
    async with db.read() as conn:
        events = (await conn.execute(select(outbox.c.run_id, outbox.c.payload))).all()
        advanced = (
            await conn.execute(select(func.count()).where(triggers.c.next_fire_at == due))
        ).scalar_one()
    assert sorted(e.run_id for e in events) == sorted(created)
    for event in events:
        run = glue_pb2.JobRun.FromString(event.payload)
        assert run.id == event.run_id
        assert run.job_run_state == created[event.run_id][1]
        assert abs(run.started_on.ToMicroseconds() - created[event.run_id][2] * 1e6) <= 1
    assert advanced == 0


async def test_fires_another_replica_recorded_create_no_runs(scheduler: Scheduler) -> None:
    db, firing = scheduler.db, scheduler.firing
    await add_job(db, "job")
    names = [f"t{i:02d}" for i in range(8)]
    due = round(time.time() - 1, 3)
    await add_triggers(db, names, "job", due)
    key = registry.fire_key_for_instant(due)
    taken = {"t01", "t04", "t05"}
    async with db.transaction() as conn:
        await conn.execute(
            trigger_fires.insert(),
            [
                {
                    "trigger_name": name,
                    "fire_key": key,
                    "scheduled_at": due,
                    "recorded_at": due,
                    "outcome": "FIRED",
                    "reason": "another replica",
                    "run_ids": json.dumps([f"jr_{name}"]),
                    "due_times": 1,
                }
                for name in sorted(taken)
            ],
        )

    assert await fire_all(firing, time.time()) == len(names)

    rows = await ledger(db)
    assert len(rows) == len(names)
    created = await runs_by_id(db)
    for name, fire_key, outcome, run_ids, _ in rows:
        assert (fire_key, outcome) == (key, "FIRED")
        if name in taken:
            assert run_ids == [f"jr_{name}"]  # left as the other replica wrote it
        else:
            (run_id,) = run_ids
            assert created[run_id][3]["TriggerName"] == name
    assert len(created) == len(names) - len(taken)
    assert scheduler.slots.used == 2  # both slots went to runs that exist
    async with db.read() as conn:
        still_due = (
            await conn.execute(select(func.count()).where(triggers.c.next_fire_at == due))
        ).scalar_one()
    assert still_due == 0  # every claimed trigger moved on, recorded elsewhere or not


async def test_drafts_are_checked_against_what_is_claimed(scheduler: Scheduler) -> None:
    db, firing = scheduler.db, scheduler.firing
    await add_job(db, "job", default_arguments={"--from": "v1"})
    await add_job(db, "other")
    due = round(time.time() + 2, 3)
    await add_triggers(db, ["same", "changed", "job-changed"], "job", due)
    await add_triggers(db, ["gone"], "other", due)

    assert await firing.prepare(due) == 4
    # Drafting writes nothing.
    assert await ledger(db) == []
    assert await runs_by_id(db) == {}
    # Changes between the drafts and the due time: a new trigger version, a new job version,
    # a deactivated trigger.
    changed = glue_pb2.Trigger(
        name="changed",
        type="SCHEDULED",
        state="ACTIVATED",
        schedule=FAR_SCHEDULE,
        actions=[glue_pb2.Action(job_name="job", arguments={"--changed": "yes"})],
    )
    async with db.transaction() as conn:
        await registry.upsert_trigger(
            conn, scheduler_pb2.TriggerRegistration(trigger=changed, version=2)
        )
        await conn.execute(
            update(triggers).where(triggers.c.name == "changed").values(next_fire_at=due)
        )
        await registry.unschedule_trigger(conn, "gone", 2, delete_it=False)
    await add_job(db, "job", version=2, default_arguments={"--from": "v2"})
    await asyncio.sleep(max(due - time.time(), 0) + 0.01)

    assert await fire_all(firing, time.time()) == 3

    rows = await ledger(db)
    assert sorted(r[0] for r in rows) == ["changed", "job-changed", "same"]
    assert all(r[4] >= due for r in rows)  # recorded at the due time, not when drafted
    created = await runs_by_id(db)
    arguments = {record["TriggerName"]: record["Arguments"] for _, _, _, record in created.values()}
    # Every run is built from the job as it is at the due time; "changed" from its version 2.
    assert arguments == {
        "same": {"--from": "v2"},
        "job-changed": {"--from": "v2"},
        "changed": {"--from": "v2", "--changed": "yes"},
    }
    assert all(created_at >= due for _, _, created_at, _ in created.values())
    assert firing.forget_drafts(time.time()) == 1  # the deactivated trigger's


@pytest.mark.parametrize(
    ("state", "error"),
    [
        (JobRunState.WAITING, None),
        (JobRunState.STARTING, None),
        (JobRunState.FAILED, "ConcurrentRunsExceededException: ..."),
        (JobRunState.ERROR, "Job gone does not exist"),
    ],
)
def test_a_settled_draft_has_the_event_of_its_run(
    tmp_path: Path, state: JobRunState, error: str | None
) -> None:
    db = Database("sqlite+aiosqlite:///:memory:")  # never connected to
    store = run_store(db, tmp_path, "test")
    job = registry.RegisteredJob(
        name="job",
        version=3,
        incarnation="inc",
        deleted=False,
        definition={
            "Name": "job",
            "Command": {"Name": "pythonshell", "ScriptLocation": "/bin/true"},
            "DefaultArguments": {"--a": "1"},
            "NotificationProperty": {"NotifyDelayAfter": 5},
            "MaxCapacity": 0.0625,
        },
    )
    request = {
        "JobName": "job",
        "TriggerName": "t",
        "Arguments": {"--b": "2"},
        "PredecessorRuns": [{"JobName": "p", "RunId": "jr_p"}],
    }
    draft = RunDraft.of(
        store.new_run(run_id="jr_1", job=job, request=request, state=JobRunState.WAITING)
    )

    new = draft.settle(state, 1_800_000_000.123456, error)

    assert new.run.state is state
    assert new.run.created_at == new.run.updated_at == 1_800_000_000.123456
    assert glue_pb2.JobRun.FromString(new.payload) == new.run.to_proto()
    assert new.run.to_proto() == from_glue(new.run.to_glue(), glue_pb2.JobRun)
    assert json.loads(new.record_json) == new.run.record
