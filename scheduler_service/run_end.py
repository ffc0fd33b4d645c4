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
Built by the app (and by a caretaker, which offers no slots: it starts no new runs) from the
store and the firing it calls.
"""

from __future__ import annotations

import time
from dataclasses import KW_ONLY, dataclass, field

from glue_vocabulary.run_states import JobRunState
from scheduler_service import bookmarks
from scheduler_service.firing import Firing
from scheduler_service.run_record import RunRecord
from scheduler_service.runs import Promotion, RunStore


@dataclass(frozen=True, slots=True)
class EndReport:
    """How a run ended, as its executor reports it to ``RunEnd.finish``."""

    state: JobRunState
    """The terminal state to record."""
    message: str | None
    """Its ErrorMessage (None: none)."""
    _: KW_ONLY
    started_at: float | None = None
    """When its process started (None: worked out from its deadline, ``RunStore.end``)."""
    ended_at: float | None = None
    """When it ended (None: now)."""
    started: bool = False
    """The run's process ran, so a run still STARTING passes through RUNNING (``RunStore.end``)."""
    retry: bool = True
    """False: a FAILED run gets no automatic retry (its job may still run somewhere)."""
    bookmark: str | None = None
    """The bookmark its script committed, to become the job's (``bookmarks.commit``)."""


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


class RunEnd:
    """Records runs' ends with what follows from them (module docstring)."""

    def __init__(self, store: RunStore, firing: Firing) -> None:
        self._store = store
        self._firing = firing

    async def finish(self, run_id: str, report: EndReport, *, free_slots: int = 0) -> Ended:
        """Settle ``run_id`` as ``report`` says it ended and what follows, in one transaction.

        ``free_slots`` are process slots the caller gives to waiting runs (the one this run
        held, usually): the runs promoted into them are returned to be launched.

        Raises:
            NotOwnerError: another replica owns the run now (nothing written).
        """
        store = self._store
        async with store.write() as conn:
            ending = await store.end(
                conn,
                run_id,
                report.state,
                report.message,
                started_at=report.started_at,
                ended_at=report.ended_at,
                started=report.started,
            )
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
                promotion = await store.promote(conn, free_slots)
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
