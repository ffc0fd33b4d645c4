"""A run's end and everything that follows from it, in the one transaction that records it.

When a run reaches a terminal state, in the same transaction (so that a crash leaves all of it
or none of it, and each follows exactly once):

1. its terminal state is written, fenced on this replica's ownership (``RunStore.end``); a run
   whose process ran but that is still STARTING (its batched RUNNING write, ``running``, had
   not happened) gets its RUNNING event first, so its history reads STARTING, RUNNING, end;
2. conditional triggers watching its job observe it and may fire (``Firing.on_run_terminal``);
3. a FAILED run with retries left gets its retry, WAITING out its backoff (``RunStore.retry``);
4. the process slot it frees goes to the oldest waiting run that may start, promoted STARTING
   and recorded as launched here (``RunStore.promote``), when the caller offers the slot and no
   fire took the outbox counter already;
5. a bookmark its script committed becomes the job's (``bookmarks.commit``);
6. the events of all of these are appended, last (the outbox counter is every writer's last
   lock, see ``outbox``).

The lock order is the one every writer keeps: the run's row, then job rows (a fire locks its
actions' jobs; promotion locks the jobs of the runs at the queue's head; each set in name
order), then the bookmark row, then the outbox counter. Promotion skips a chosen waiting row
another transaction holds rather than wait for it.

Ends reported while another is being written go together in the next transaction
(``servicekit.batches``): their run rows, one promotion for all the slots they free, one append
of their events. Under load most short runs end beside others, and one transaction per end was
most of the scheduler's and the database's work per run. Some ends are still written alone:

- a run a trigger started may fire conditional triggers, and a fire takes the outbox counter,
  after which no job row may be locked, so two fires (or a fire and a promotion) cannot share
  a transaction;
- an end that commits a bookmark (glueetl runs: long, so rarely together);
- a run whose row another transaction holds when the batch locks its rows (PostgreSQL's SKIP
  LOCKED, ``RunStore.lock_many``): a batch never waits for a run's row, so it cannot deadlock
  against another writer of several runs.

Built by the app (and by a caretaker, which offers no slots: it starts no new runs) from the
store and the firing it calls; its owner closes it (``close``) before the executor hands its
runs over.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from glue_vocabulary.run_states import TERMINAL
from scheduler_service import bookmarks
from scheduler_service.firing import Firing
from scheduler_service.run_record import RunRecord
from scheduler_service.runs import Ending, EndReport, NotOwnerError, Promotion, RunStore
from servicekit.batches import Batches


@dataclass(frozen=True, slots=True)
class Ended:
    """What ``RunEnd.finish`` recorded."""

    run: RunRecord | None
    """The run as it ended; None if nothing was written (the run is gone or had ended)."""
    created: list[RunRecord] = field(default_factory=list)
    """Runs its end created, WAITING: its retry, runs of conditional triggers it fired."""
    promoted: list[RunRecord] = field(default_factory=list)
    """Waiting runs promoted STARTING into the slots offered, launched by this replica:
    the caller launches them in those slots."""
    queue_exhausted: bool = False
    """Slots were offered and no other waiting run may start now (``Promotion.exhausted``)."""


@dataclass(frozen=True, slots=True)
class _EndCall:
    """One ``RunEnd.finish`` call waiting for its batch."""

    run_id: str
    report: EndReport
    free_slots: int


class _BatchingStopped(Exception):
    """The batches were closed before this end was written (it is then written alone)."""


class RunEnd:
    """Records runs' ends with what follows from them (module docstring)."""

    def __init__(self, store: RunStore, firing: Firing) -> None:
        self._store = store
        self._firing = firing
        # One batch at a time: ends mostly promote runs of the same jobs, whose row locks
        # would make a second batch wait anyway (two writers measured no better on PostgreSQL).
        self._batches: Batches[_EndCall, Ended | None] = Batches(
            self._finish_together,
            stopping=_BatchingStopped,
            # Something unexpected (a database error) fails only the end that caused it.
            write_alone=self._finish_alone,
            noun="run ends",
        )

    async def close(self, grace: float = 1.0) -> None:
        """Stop batching: a batch in flight gets ``grace`` seconds to commit; ends reported
        afterwards (and those of a batch cut short) are written alone."""
        await self._batches.close(grace)

    async def finish(self, run_id: str, report: EndReport, *, free_slots: int = 0) -> Ended:
        """Settle ``run_id`` as ``report`` says it ended and what follows, in one transaction
        (shared with other ends reported meanwhile, see the module docstring).

        ``free_slots`` are process slots the caller gives to waiting runs (the one this run
        held, usually): the runs promoted into them are returned to be launched.

        Raises:
            NotOwnerError: another replica owns the run now (nothing written).
        """
        call = _EndCall(run_id, report, free_slots)
        if report.bookmark is None and not self._batches.closed:
            try:
                ended = await self._batches.submit(call)
            except _BatchingStopped:
                pass  # shutting down: written alone
            else:
                if ended is not None:
                    return ended
                # Left out of its batch (module docstring): written alone, in the caller's
                # task, so that the others of the batch are answered at once.
        return await self._finish_alone(call)

    async def _finish_together(
        self, calls: Sequence[_EndCall]
    ) -> list[Ended | BaseException | None]:
        """Write the ends of ``calls`` in one transaction; None for each call to be written
        alone (module docstring)."""
        store = self._store
        results: list[Ended | BaseException | None] = [None] * len(calls)
        async with store.write() as conn:
            locked = {
                run.run_id: run for run in await store.lock_many(conn, [c.run_id for c in calls])
            }
            endings: list[tuple[int, Ending]] = []
            for i, call in enumerate(calls):
                run = locked.pop(call.run_id, None)  # popped: a run asked twice goes alone
                if run is None or run.record.get("TriggerName"):
                    continue
                try:
                    store.fence(run)
                except NotOwnerError as exc:
                    results[i] = exc
                    continue
                if run.state in TERMINAL:
                    results[i] = Ended(run=None)
                    continue
                endings.append((i, store.ending(run, call.report)))
            await store.save_many(conn, [ending.run for _, ending in endings])
            now = time.time()
            retries: dict[int, RunRecord] = {}
            for i, ending in endings:
                if calls[i].report.retry:
                    retry_run = await store.retry(conn, ending.run, now)
                    if retry_run is not None:
                        retries[i] = retry_run
            promotion = await store.promote(conn, sum(calls[i].free_slots for i, _ in endings))
            await store.emit_many(
                conn,
                [
                    *(
                        record
                        for i, ending in endings
                        for record in (ending.running, ending.run, retries.get(i))
                        if record is not None
                    ),
                    *promotion.runs,
                ],
            )
        # Each caller launches the runs promoted into the slots it offered. A retry waits:
        # the queue is not empty after all.
        promoted = iter(promotion.runs)
        exhausted = promotion.exhausted and not retries
        for i, ending in endings:
            offered = calls[i].free_slots
            retry_run = retries.get(i)
            results[i] = Ended(
                run=ending.run,
                created=[retry_run] if retry_run is not None else [],
                promoted=list(itertools.islice(promoted, offered)),
                queue_exhausted=exhausted and offered > 0,
            )
        return results

    async def _finish_alone(self, call: _EndCall) -> Ended:
        report = call.report
        store = self._store
        async with store.write() as conn:
            ending = await store.end(conn, call.run_id, report)
            if ending is None:
                return Ended(run=None)
            run = ending.run
            now = time.time()
            fired = await self._firing.on_run_terminal(conn, run)
            created = list(fired)
            retry_run = await store.retry(conn, run, now) if report.retry else None
            if retry_run is not None:
                created.append(retry_run)
            # A fire appended its runs' events, so this transaction holds the outbox counter:
            # no job row may be locked after it. Its runs wait and are promoted after the
            # commit (rare: only runs a trigger started fire conditional triggers).
            promotion = Promotion([], exhausted=False)
            if not fired:
                promotion = await store.promote(conn, call.free_slots)
            promoted = promotion.runs
            if report.bookmark is not None:
                # After the job rows fires and promotion lock, before the outbox counter.
                await bookmarks.commit(
                    conn,
                    job_name=run.job_name,
                    run_id=run.run_id,
                    previous_run_id=run.record.get("PreviousRunId"),
                    attempt=run.attempt,
                    state=report.bookmark,
                    now=now,
                )
            # Fired runs have their events already (``RunStore.insert_many``); the retry was
            # inserted without one.
            # Two events for one run when its RUNNING write had not happened: RUNNING, then
            # its end, consecutive in this commit.
            await store.emit_many(
                conn,
                [
                    *([ending.running] if ending.running is not None else []),
                    run,
                    *([retry_run] if retry_run is not None else []),
                    *promoted,
                ],
            )
        return Ended(
            run=run, created=created, promoted=promoted, queue_exhausted=promotion.exhausted
        )
