"""The event consumer and StartJobRun both apply a run's admission event; whichever comes second
changes nothing, and the consumer drops one StartJobRun applied without a transaction.

Deterministic: the events are real ones (admitted on a scheduler database and read from its
outbox as WatchRunEvents reads them), and the catalog's two paths are driven in a fixed order -
StartJobRun's write as ``JobRunCatalog.start`` does it, and the consumer's apply step
(``EventConsumer._apply``, one call per batch the stream would deliver). End to end, the
scheduler's stream usually delivers the event before StartRun's answer, and the consumer waits
for StartJobRun's write (``AppliedElsewhere.admitting``); each order is pinned here. Both
backends, real databases, no services.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from catalog_service import event_consumer
from catalog_service.event_consumer import EventConsumer
from catalog_service.run_events import AppliedElsewhere, apply_admissions
from catalog_service.scheduler_link import SchedulerLink
from catalog_service.tables import job_runs
from glue.scheduler.v1 import scheduler_pb2
from glue.v1 import glue_pb2
from scheduler_service.outbox import EventFeed
from scheduler_service.runs import RunStore
from servicekit.db import Database
from tests.catalog.conftest import UNREACHABLE
from tests.helpers.catalog_rows import add_catalog_job
from tests.helpers.scheduler_store import add_job, admit, run_store


@dataclass
class Catalog:
    """The catalog's side: its database, what StartJobRun noted, and the consumer."""

    db: Database
    elsewhere: AppliedElsewhere
    consumer: EventConsumer
    batches_applied: list[list[str]]
    """Run ids of each batch the consumer wrote (its ``on_applied``), in order."""


@dataclass
class Scheduler:
    db: Database
    store: RunStore

    async def events(self) -> list[scheduler_pb2.RunEvent]:
        """Every event in the outbox, as the stream would deliver them."""
        return await EventFeed(self.db).read_after(0)


@pytest.fixture
async def scheduler(scheduler_db: Database, tmp_path: Path) -> Scheduler:
    await add_job(scheduler_db, "job")
    return Scheduler(scheduler_db, run_store(scheduler_db, tmp_path / "runs", "replica"))


@pytest.fixture
async def catalog(database_urls: tuple[str, str]) -> AsyncIterator[Catalog]:
    db = Database(database_urls[0])
    # The job the events belong to (its incarnation is the scheduler's: add_job's is the name).
    await add_catalog_job(db, "job", "job")
    # Never called: the consumer's apply step does not use the stream's link.
    link = SchedulerLink(UNREACHABLE)
    elsewhere = AppliedElsewhere()
    batches: list[list[str]] = []

    def on_applied(events: Sequence[scheduler_pb2.RunEvent]) -> None:
        batches.append([e.run.id for e in events])

    consumer = EventConsumer(db, link, applied_elsewhere=elsewhere, on_applied=on_applied)
    try:
        yield Catalog(db, elsewhere, consumer, batches)
    finally:
        await link.close()
        await db.dispose()


async def start_job_runs_write(catalog: Catalog, event: scheduler_pb2.RunEvent) -> None:
    """StartJobRun's own write of the admission event, as ``JobRunCatalog.start`` does it."""
    async with catalog.db.statement() as conn:
        await apply_admissions(conn, [(event, "alice")])
    catalog.elsewhere.note([event])


async def stored(db: Database, run_id: str) -> dict[str, Any]:
    """The run's catalog row."""
    async with db.read() as conn:
        row = (await conn.execute(select(job_runs).where(job_runs.c.run_id == run_id))).one()
    return dict(row._mapping)


async def test_the_consumer_skips_an_admission_start_job_run_applied(
    catalog: Catalog, scheduler: Scheduler
) -> None:
    # A run StartJobRun did not start (a trigger's, say), then one it did.
    await admit(scheduler.store, "job", "jr_other", slot=False)
    started = await admit(scheduler.store, "job", "jr_started", slot=True)
    other_event, admission = await scheduler.events()
    assert (admission.sequence, admission.run.id) == (2, "jr_started")
    assert admission == started.event  # what StartRun answered is what the stream delivers

    # StartJobRun writes the run before answering; the stream brings its event afterwards.
    await start_job_runs_write(catalog, started.event)
    written = await stored(catalog.db, "jr_started")
    assert (written["state"], written["event_seq"], written["started_by"]) == (
        "STARTING",
        2,
        "alice",
    )
    consumer = catalog.consumer
    await consumer._apply([other_event])
    assert (consumer.applied_through, await consumer.cursor()) == (1, 1)

    await consumer._apply([admission])

    # Skipped: counted as applied (once), handed to no one, and no transaction was opened -
    # the stored cursor lags the applied position.
    assert consumer.events_skipped == 1
    assert consumer.events_applied == 2
    assert catalog.batches_applied == [["jr_other"]]
    assert consumer.applied_through == 2
    assert await consumer.cursor() == 1
    assert await stored(catalog.db, "jr_started") == written  # the row is unchanged
    # The event is forgotten once reached: a replay of it is not "applied elsewhere" again.
    assert catalog.elsewhere.take(admission) is False

    # The run's next event is the consumer's to apply, and it does (StartJobRun's caller kept).
    [running] = await scheduler.store.mark_running(["jr_started"])
    *_, running_event = await scheduler.events()
    assert (running_event.sequence, running_event.run.job_run_state) == (3, "RUNNING")
    await consumer._apply([running_event])
    assert consumer.events_skipped == 1
    assert catalog.batches_applied == [["jr_other"], ["jr_started"]]
    assert await consumer.cursor() == 3
    now = await stored(catalog.db, "jr_started")
    assert (now["state"], now["event_seq"], now["started_by"]) == ("RUNNING", 3, "alice")
    assert glue_pb2.JobRun.FromString(now["snapshot"]) == running.to_proto()


async def test_start_job_run_changes_only_its_caller_when_the_consumer_came_first(
    catalog: Catalog, scheduler: Scheduler
) -> None:
    started = await admit(scheduler.store, "job", "jr_started", slot=True)
    [admission] = await scheduler.events()
    await catalog.consumer._apply([admission])
    applied = await stored(catalog.db, "jr_started")
    assert (applied["event_seq"], applied["started_by"]) == (1, None)

    # StartJobRun's write comes second: the snapshot is kept, only who started it is added,
    # and nothing is noted for the consumer (it is past that event).
    await start_job_runs_write(catalog, started.event)
    assert await stored(catalog.db, "jr_started") == {**applied, "started_by": "alice"}
    assert catalog.elsewhere.take(admission) is False
    assert (catalog.consumer.events_skipped, catalog.batches_applied) == (0, [["jr_started"]])


async def test_a_late_admission_write_adds_its_caller_and_keeps_a_newer_snapshot(
    catalog: Catalog, scheduler: Scheduler
) -> None:
    # The consumer wrote the run and applied its next event before StartJobRun's write came.
    started = await admit(scheduler.store, "job", "jr_started", slot=True)
    await scheduler.store.mark_running(["jr_started"])
    admission, running_event = await scheduler.events()
    await catalog.consumer._apply([admission, running_event])
    applied = await stored(catalog.db, "jr_started")
    assert (applied["state"], applied["event_seq"], applied["started_by"]) == ("RUNNING", 2, None)

    await start_job_runs_write(catalog, started.event)
    assert await stored(catalog.db, "jr_started") == {**applied, "started_by": "alice"}
    # A second write (a replay) changes nothing: who started it is not replaced.
    async with catalog.db.statement() as conn:
        await apply_admissions(conn, [(started.event, "mallory")])
    assert await stored(catalog.db, "jr_started") == {**applied, "started_by": "alice"}


async def test_admissions_written_together_are_each_written(
    catalog: Catalog, scheduler: Scheduler
) -> None:
    for n in range(3):
        await admit(scheduler.store, "job", f"jr_{n}", slot=False)
    events = await scheduler.events()
    async with catalog.db.statement() as conn:
        await apply_admissions(conn, [(e, f"caller-{i}") for i, e in enumerate(events)])
    rows = [await stored(catalog.db, f"jr_{n}") for n in range(3)]
    assert [(r["state"], r["event_seq"], r["started_by"]) for r in rows] == [
        ("WAITING", 1, "caller-0"),
        ("WAITING", 2, "caller-1"),
        ("WAITING", 3, "caller-2"),
    ]


async def test_the_consumer_waits_for_start_job_run_still_writing_the_admission(
    catalog: Catalog, scheduler: Scheduler
) -> None:
    # The stream's copy of the event usually arrives before StartRun's answer: the consumer
    # waits for StartJobRun's write instead of writing the run too.
    started = await admit(scheduler.store, "job", "jr_started", slot=True)
    [admission] = await scheduler.events()
    with catalog.elsewhere.admitting("jr_started"):
        applying = asyncio.create_task(catalog.consumer._apply([admission]))
        await asyncio.sleep(0.2)
        assert not applying.done()
        await start_job_runs_write(catalog, started.event)
    await applying
    consumer = catalog.consumer
    assert (consumer.events_skipped, consumer.applied_through) == (1, 1)
    assert catalog.batches_applied == []
    row = await stored(catalog.db, "jr_started")
    assert (row["event_seq"], row["started_by"]) == (1, "alice")


async def test_the_consumer_applies_the_admission_itself_when_start_job_run_fails_or_hangs(
    catalog: Catalog, scheduler: Scheduler, monkeypatch: pytest.MonkeyPatch
) -> None:
    await admit(scheduler.store, "job", "jr_failed", slot=True)
    await admit(scheduler.store, "job", "jr_hung", slot=True)
    failed, hung = await scheduler.events()
    # StartJobRun's write failed (its call ended without a note): the consumer writes the run.
    with catalog.elsewhere.admitting("jr_failed"):
        applying = asyncio.create_task(catalog.consumer._apply([failed]))
        await asyncio.sleep(0.05)
    await applying
    assert catalog.batches_applied == [["jr_failed"]]
    # A write that never ends holds the consumer only so long.
    monkeypatch.setattr(event_consumer, "ADMISSION_WRITE_WAIT", 0.2)
    with catalog.elsewhere.admitting("jr_hung"):
        await asyncio.wait_for(catalog.consumer._apply([hung]), timeout=5)
    assert catalog.batches_applied == [["jr_failed"], ["jr_hung"]]
    assert (await stored(catalog.db, "jr_hung"))["state"] == "STARTING"
