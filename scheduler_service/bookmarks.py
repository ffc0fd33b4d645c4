"""Job bookmarks: the state a job's runs commit, one entry per job, with every version kept.

A run started with ``--job-bookmark-option job-bookmark-enable`` that calls ``job.commit()``
leaves its state (JSON text) in its run directory. When the run SUCCEEDED, the transaction that
settles it passes that text to ``commit``; the next run of the job starts from
``state_for_next_run``. The catalog reads and resets entries through ``get`` and ``reset``
(GetJobBookmark, ResetJobBookmark).

An entry is Glue's JobBookmarkEntry. Where AWS leaves its meaning open, it means here:

- ``Version`` counts the changes to the entry: every commit and every reset adds one, so a job's
  first commit makes Version 1.
- ``Run`` counts the commits; a reset leaves it alone.
- ``Attempt``, ``RunId`` and ``PreviousRunId`` name the run that last committed; a reset leaves
  them alone too, so only ``JobBookmark`` says where the next run starts.
- ``JobBookmark`` is the committed text, verbatim. A reset to the beginning leaves it absent
  (not empty, not ``{}``): the next run gets no state at all.
- A job none of whose runs committed has no entry: reading or resetting it is
  EntityNotFoundException (what AWS answers to a read, as public reports have it; a reset of
  nothing is refused alike rather than inventing an entry).
- Read with a RunId, the entry is the version that run's commit made.
- Reset with a RunId rewinds ``JobBookmark`` to what it was just before that run committed
  (absent if there was none then: the job's first commit, or one right after a reset to the
  beginning), so the next run reprocesses what that run and every later one processed. Runs
  are ordered by their commits. A RunId that committed nothing (unknown, failed, or another
  job's) is EntityNotFoundException.
- Every version of every entry stays in ``scheduler_job_bookmark_history``: a rewind and a read
  by RunId look there, and a rewind removes nothing (a later rewind to a run after the first
  rewind's run still finds that run's commit).

Incarnations: an entry belongs to one incarnation of a job name (see ``registry``). DeleteJob
drops the job's entry and history (``forget_job``), so a job re-created under the same name
starts without a bookmark. An entry that outlives its incarnation anyway (the DeleteJob push was
lost and the re-created job registered over it) is never read as the new job's, and the new
job's first commit replaces it. A run of a deleted job that ends after the delete commits
nothing.

Longer than the ~400 lines the team aims for, and still one job (the bookmark tables' only
writer): its every operation shares the same row helpers and lock, and a tenth of it is the
semantics above.
"""

from __future__ import annotations

import enum
import json
import logging
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import and_, bindparam, delete, false, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from glue.v1 import glue_pb2
from scheduler_service import registry
from scheduler_service.tables import job_bookmark_history, job_bookmarks, jobs, runs
from servicekit.db import Database
from servicekit.errors import EntityNotFoundException

log = logging.getLogger(__name__)


class Change(enum.StrEnum):
    """What made a version of an entry (``scheduler_job_bookmark_history.change``)."""

    COMMIT = "COMMIT"
    """A SUCCEEDED run committed its state."""
    RESET = "RESET"
    """ResetJobBookmark without a RunId: the next run starts from the beginning."""
    REWIND = "REWIND"
    """ResetJobBookmark with a RunId: back to the state just before that run committed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BookmarkEntry:
    """One version of a job's bookmark entry (Glue's JobBookmarkEntry)."""

    job_name: str
    version: int
    """Changes so far: commits and resets."""
    run: int
    """Commits so far."""
    attempt: int
    """The Attempt of the run that last committed."""
    run_id: str
    """The run that last committed."""
    previous_run_id: str | None
    """The PreviousRunId of the run that last committed."""
    job_bookmark: str | None
    """The state the next run starts from (JSON text); None after a reset to the beginning."""

    @classmethod
    def from_row(cls, row: Row[Any]) -> BookmarkEntry:
        """Decode a row of either bookmark table."""
        return cls(
            job_name=row.job_name,
            version=row.version,
            run=row.run,
            attempt=row.attempt,
            run_id=row.run_id,
            previous_run_id=row.previous_run_id,
            job_bookmark=row.job_bookmark,
        )

    def to_proto(self) -> glue_pb2.JobBookmarkEntry:
        """The glue.v1 message; absent members stay absent."""
        return glue_pb2.JobBookmarkEntry(
            job_name=self.job_name,
            version=self.version,
            run=self.run,
            attempt=self.attempt,
            run_id=self.run_id,
            previous_run_id=self.previous_run_id,
            job_bookmark=self.job_bookmark,
        )


def _no_bookmark(job_name: str) -> EntityNotFoundException:
    """The error for a job none of whose runs committed a bookmark."""
    return EntityNotFoundException(
        f"Job {job_name} has no job bookmark: none of its runs has committed one."
    )


def _no_commit(job_name: str, run_id: str) -> EntityNotFoundException:
    """The error for a RunId that committed no bookmark of the job."""
    return EntityNotFoundException(
        f"Job run {run_id} of job {job_name} has committed no job bookmark."
    )


# Built once: commit runs inside every bookmarked run's settling transaction.
_CURRENT = select(job_bookmarks).where(job_bookmarks.c.job_name == bindparam("job_name"))
_CURRENT_LOCKED = _CURRENT.with_for_update()
_RUN_INCARNATION = select(runs.c.job_incarnation).where(runs.c.run_id == bindparam("run_id"))
_COMMIT_OF = select(job_bookmark_history).where(
    job_bookmark_history.c.job_name == bindparam("job_name"),
    job_bookmark_history.c.run_id == bindparam("run_id"),
    job_bookmark_history.c.incarnation == bindparam("incarnation"),
    job_bookmark_history.c.change == Change.COMMIT.value,
)
# The registered incarnation's bookmark, in one round trip (a run is about to start).
_NEXT_STATE = (
    select(job_bookmarks.c.job_bookmark)
    .join(
        jobs,
        and_(
            jobs.c.name == job_bookmarks.c.job_name,
            jobs.c.incarnation == job_bookmarks.c.incarnation,
        ),
    )
    .where(job_bookmarks.c.job_name == bindparam("job_name"), jobs.c.deleted == false())
)


async def _current(conn: AsyncConnection, job_name: str, *, lock: bool) -> Row[Any] | None:
    """The job's entry row (of whatever incarnation); ``lock`` takes its row lock."""
    locked = lock and conn.dialect.name == "postgresql"
    result = await conn.execute(_CURRENT_LOCKED if locked else _CURRENT, {"job_name": job_name})
    return result.first()


async def _commit_of(
    conn: AsyncConnection, job_name: str, incarnation: str, run_id: str
) -> Row[Any] | None:
    """The history row of run ``run_id``'s commit, if it committed."""
    result = await conn.execute(
        _COMMIT_OF, {"job_name": job_name, "incarnation": incarnation, "run_id": run_id}
    )
    return result.first()


async def _store(
    conn: AsyncConnection,
    entry: BookmarkEntry,
    *,
    incarnation: str,
    change: Change,
    replaces: bool,
    now: float,
    rewound_run_id: str | None = None,
) -> bool:
    """Make ``entry`` the job's current entry and add it to the history.

    ``replaces``: the job has an entry row (locked by the caller) to overwrite. Without one,
    False means a concurrent first commit inserted it first: nothing was written.
    """
    values = {
        "incarnation": incarnation,
        "version": entry.version,
        "run": entry.run,
        "attempt": entry.attempt,
        "run_id": entry.run_id,
        "previous_run_id": entry.previous_run_id,
        "job_bookmark": entry.job_bookmark,
    }
    if replaces:
        await conn.execute(
            update(job_bookmarks)
            .where(job_bookmarks.c.job_name == entry.job_name)
            .values(**values, updated_at=now)
        )
    else:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        inserted = await conn.execute(
            dialect.insert(job_bookmarks)
            .values(job_name=entry.job_name, **values, updated_at=now)
            .on_conflict_do_nothing()
        )
        if not inserted.rowcount:
            return False
    await conn.execute(
        insert(job_bookmark_history).values(
            job_name=entry.job_name,
            **values,
            change=change.value,
            rewound_run_id=rewound_run_id,
            recorded_at=now,
        )
    )
    return True


async def commit(
    conn: AsyncConnection,
    *,
    job_name: str,
    run_id: str,
    previous_run_id: str | None,
    attempt: int,
    state: str,
    now: float,
) -> None:
    """Record the state (JSON text) a SUCCEEDED run committed; called INSIDE the transaction
    that settles the run.

    The entry advances: Version and Run go up by one, Attempt, RunId and PreviousRunId become
    the run's, and ``state`` the bookmark. It reads the job's registration without locking it
    and takes one lock, the job's bookmark row. Call it after anything that locks job rows (the
    conditional-trigger hook) and before the run's outbox event is appended: job rows, then
    bookmark rows, then the outbox counter is the order DeleteJob and every other writer take
    them in. It raises nothing for what the run left, so the run settles regardless: a state
    that is not JSON text, a second commit of the same run, and a run of a job that was deleted
    (or deleted and re-created) meanwhile are logged and not recorded - the next run then
    reprocesses rather than skips.

    Args:
        conn: The settling transaction.
        job_name: The run's job.
        run_id: The run.
        previous_run_id: The run's PreviousRunId (the run it retries), if any.
        attempt: The run's Attempt.
        state: The state the run committed, as JSON text.
        now: The settling time, in epoch seconds.
    """
    try:
        json.loads(state)
    except ValueError:
        _not_recorded(job_name, run_id, "the committed state is not JSON text")
        return
    job = await registry.get_job(conn, job_name)
    if job is None or job.deleted:
        _not_recorded(job_name, run_id, "the job was deleted")
        return
    # A run row always exists when a run settles; the job's registration is the fallback for a
    # caller that has none (tests that commit as a settling run would).
    run_incarnation = (
        await conn.execute(_RUN_INCARNATION, {"run_id": run_id})
    ).scalar_one_or_none()
    if run_incarnation is not None and run_incarnation != job.incarnation:
        _not_recorded(job_name, run_id, "the run's job was deleted and re-created meanwhile")
        return
    incarnation = job.incarnation
    # Twice at most: a first commit that loses the insert race to a concurrent one (runs of a
    # job with MaxConcurrentRuns > 1) goes again as the second commit.
    for _ in range(2):
        row = await _current(conn, job_name, lock=True)
        held = row if row is not None and row.incarnation == incarnation else None
        if held is not None and await _commit_of(conn, job_name, incarnation, run_id) is not None:
            _not_recorded(job_name, run_id, "the run already committed")
            return
        if row is not None and held is None:
            # The row is an earlier incarnation's (its DeleteJob never arrived): replaced below.
            await _forget_history(conn, job_name)
        entry = BookmarkEntry(
            job_name=job_name,
            version=(held.version if held is not None else 0) + 1,
            run=(held.run if held is not None else 0) + 1,
            attempt=attempt,
            run_id=run_id,
            previous_run_id=previous_run_id,
            job_bookmark=state,
        )
        if await _store(
            conn,
            entry,
            incarnation=incarnation,
            change=Change.COMMIT,
            replaces=row is not None,
            now=now,
        ):
            return
    raise AssertionError(f"the bookmark row of job {job_name} appeared and vanished")


def _not_recorded(job_name: str, run_id: str, why: str) -> None:
    log.warning(
        "job bookmark not recorded", extra={"job": job_name, "run_id": run_id, "reason": why}
    )


async def state_for_next_run(db: Database, job_name: str) -> str | None:
    """The JSON text to give the next run of the job (None: no bookmark, or reset).

    The bookmark of the job's registered incarnation; None for a job that is not registered
    or is deleted.
    """
    async with db.read() as conn:
        value = (await conn.execute(_NEXT_STATE, {"job_name": job_name})).scalar_one_or_none()
    return str(value) if value is not None else None


async def get(
    conn: AsyncConnection, job_name: str, incarnation: str, *, run_id: str | None = None
) -> BookmarkEntry:
    """GetJobBookmark: the job's current entry, or the version run ``run_id``'s commit made.

    Args:
        conn: A connection to read on.
        job_name: The job.
        incarnation: The job incarnation the catalog holds.
        run_id: The run whose commit to read back; None for the current entry.

    Raises:
        EntityNotFoundException: the job has no entry (of this incarnation), or ``run_id``
            committed none.
    """
    row = await _current(conn, job_name, lock=False)
    if row is None or row.incarnation != incarnation:
        raise _no_bookmark(job_name)
    if run_id is None:
        return BookmarkEntry.from_row(row)
    committed = await _commit_of(conn, job_name, incarnation, run_id)
    if committed is None:
        raise _no_commit(job_name, run_id)
    return BookmarkEntry.from_row(committed)


async def reset(
    conn: AsyncConnection,
    job_name: str,
    incarnation: str,
    *,
    run_id: str | None = None,
    now: float,
) -> BookmarkEntry:
    """ResetJobBookmark: clear the bookmark, or rewind it to just before ``run_id`` committed.

    Version goes up by one; Run, Attempt, RunId and PreviousRunId stay (they name the last
    commit). Applying the same reset twice leaves the same bookmark (only Version counts both),
    so a retried call is harmless.

    Args:
        conn: The transaction to write in.
        job_name: The job.
        incarnation: The job incarnation the catalog holds.
        run_id: Rewind to the state before this run's commit; None to clear.
        now: The time of the change, in epoch seconds.

    Returns:
        The entry after the reset.

    Raises:
        EntityNotFoundException: the job has no entry (of this incarnation), or ``run_id``
            committed none.
    """
    row = await _current(conn, job_name, lock=True)
    if row is None or row.incarnation != incarnation:
        raise _no_bookmark(job_name)
    current = BookmarkEntry.from_row(row)
    state: str | None = None
    change = Change.RESET
    if run_id is not None:
        committed = await _commit_of(conn, job_name, incarnation, run_id)
        if committed is None:
            raise _no_commit(job_name, run_id)
        # Versions are dense, so the one before the commit is what the run started from (a
        # commit that was version 1 started from nothing).
        state = await _bookmark_at(conn, job_name, incarnation, committed.version - 1)
        change = Change.REWIND
    entry = replace(current, version=current.version + 1, job_bookmark=state)
    await _store(
        conn,
        entry,
        incarnation=incarnation,
        change=change,
        replaces=True,
        now=now,
        rewound_run_id=run_id,
    )
    return entry


async def _bookmark_at(
    conn: AsyncConnection, job_name: str, incarnation: str, version: int
) -> str | None:
    """The bookmark of one version of the entry (None before version 1, or if it was none)."""
    if version < 1:
        return None
    value = (
        await conn.execute(
            select(job_bookmark_history.c.job_bookmark).where(
                job_bookmark_history.c.job_name == job_name,
                job_bookmark_history.c.incarnation == incarnation,
                job_bookmark_history.c.version == version,
            )
        )
    ).scalar_one_or_none()
    return str(value) if value is not None else None


async def _forget_history(conn: AsyncConnection, job_name: str) -> None:
    await conn.execute(
        delete(job_bookmark_history).where(job_bookmark_history.c.job_name == job_name)
    )


async def forget_job(conn: AsyncConnection, job_name: str) -> None:
    """Drop the job's entry and its history (DeleteJob: a re-created job starts without one)."""
    await conn.execute(delete(job_bookmarks).where(job_bookmarks.c.job_name == job_name))
    await _forget_history(conn, job_name)
