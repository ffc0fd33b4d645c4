"""Quotas per identity (README "Limits and quotas"): jobs and triggers (``check_quota``,
``JobQuota``) and runs waiting to start (``RunAdmissions``), each refused with
ResourceNumberLimitExceededException before anything is written.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import Column, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from catalog_service import identity
from catalog_service.limits import ANONYMOUS
from catalog_service.tables import job_runs
from servicekit.db import Database
from servicekit.errors import GlueError, ResourceNumberLimitExceededException

# States of a run that is accepted but not yet running (the "waiting runs" quota).
WAITING_STATES: Final = ("WAITING", "STARTING")
# Namespace of the PostgreSQL advisory locks that serialise quota checks (two-int form, so it
# never meets the scheduler's single-bigint leadership locks).
_QUOTA_LOCK_NAMESPACE: Final = 0x51554F54


def _owned_by(column: Column[Any], who: str | None) -> Any:
    return column.is_(None) if who is None else column == who


async def check_quota(
    conn: AsyncConnection, column: Column[Any], limit: int, noun: str, flag: str
) -> None:
    """Refuse a create that would give the current identity more than ``limit`` ``noun``.

    Call it inside the transaction that inserts, before the insert. SQLite transactions here
    hold the database's write lock (BEGIN IMMEDIATE), so the count is exact; on PostgreSQL a
    transaction-scoped advisory lock per (table, identity) makes concurrent creates of one
    identity take turns, so the count is exact there too (other identities are not held up).

    Raises:
        ResourceNumberLimitExceededException: the identity is at its quota.
    """
    if not limit:
        return
    who = identity.caller_name()
    if conn.dialect.name == "postgresql":
        key = f"{column.table.name}:" + ("-" if who is None else f"={who}")
        await conn.execute(
            text("SELECT pg_advisory_xact_lock(:namespace, hashtext(:key))"),
            {"namespace": _QUOTA_LOCK_NAMESPACE, "key": key},
        )
    count = (
        await conn.execute(
            select(func.count()).select_from(column.table).where(_owned_by(column, who))
        )
    ).scalar_one()
    if count >= limit:
        raise ResourceNumberLimitExceededException(
            f"{who or ANONYMOUS} already has {count} {noun}, the most one identity may have "
            f"(--{flag} {limit}); delete some first"
        )


@dataclass(slots=True)
class _Turns:
    """One identity's turns at exact reads, and how many checks hold or wait for them."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class IdentityQuota:
    """A quota of things one identity owns (jobs, runs waiting to start), checked without a
    COUNT while the identity is far from it, and exactly near it.

    Per identity it keeps an upper bound of what the identity owns: the count last read, plus
    every thing this process added (or may have added) for it since that read began.
    Removals are not subtracted, so the bound only drifts up. Things being added right now are
    ``pending`` until their write is over, and taking one never awaits after the decision, so
    checks of one identity cannot interleave: within one catalog process no identity ever
    passes its quota (one catalog process owns the catalog's tables).

    The bound can also count an addition twice: a read may see a write that finished while it
    ran, which is then in the count and in what was added since the read began. So a call is
    refused only on an exact count: when the bound leaves no room, the identity's checks take
    turns, wait until none of its additions is in flight, and read again, until a read during
    which nothing of the identity was added or in flight says it is full (or there is room).
    """

    def __init__(
        self,
        limit: int,
        count: Callable[[str | None], Awaitable[int]],
        refuse: Callable[[str | None, int], GlueError],
    ) -> None:
        """Args:
        limit: The quota (0: none).
        count: Reads how many the identity owns now.
        refuse: The error for an identity that already owns the given number.
        """
        self._limit = limit
        self._count = count
        self._refuse = refuse
        self._pending: dict[str | None, int] = {}
        # Monotonic per identity: things added (or maybe added) by this process.
        self._added: dict[str | None, int] = {}
        # The last count read, and ``_added`` as it was when that read began.
        self._read: dict[str | None, tuple[int, int]] = {}
        # Checks near the quota take turns per identity; each waits for additions in flight
        # (set when the identity's last one is over, for whoever waits). An identity's turns
        # are dropped when no check holds or waits for them.
        self._exact_turns: dict[str | None, _Turns] = {}
        self._settled: dict[str | None, asyncio.Event] = {}
        self.reads = 0
        """Counts read (for tests: a check far from the quota reads none)."""

    def note_added(self, who: str | None, number: int = 1) -> None:
        """``number`` things were (or may have been) added for ``who`` by other means than
        ``hold`` - e.g. runs started by triggers, recorded with no identity."""
        if number:
            self._added[who] = self._added.get(who, 0) + number

    def _bound(self, who: str | None) -> int | None:
        read = self._read.get(who)
        if read is None:
            return None
        count, added_before = read
        return count + self._added.get(who, 0) - added_before

    def _has_room(self, who: str | None) -> bool:
        owned = self._bound(who)
        return owned is not None and owned + self._pending.get(who, 0) < self._limit

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        """Hold one addition of the current identity for the block (check, then write).

        Whatever the block does, the addition is counted afterwards (a write that failed
        half-way may have committed; counting one too many only brings the next read sooner).

        Raises:
            GlueError: ``refuse``'s error; the identity is at its quota, nothing added.
        """
        if not self._limit:
            yield
            return
        who = identity.caller_name()
        if not self._has_room(who):
            await self._read_exactly(who)
        # No await from here to the increment: checks of one identity cannot interleave.
        self._pending[who] = self._pending.get(who, 0) + 1
        try:
            yield
        finally:
            # Synchronous, so a cancelled call cannot leave its addition pending for good.
            left = self._pending[who] - 1
            if left:
                self._pending[who] = left
            else:
                del self._pending[who]
                settled = self._settled.pop(who, None)
                if settled is not None:
                    settled.set()
            self._added[who] = self._added.get(who, 0) + 1

    async def _read_exactly(self, who: str | None) -> None:
        """Return once ``who`` has room; raise ``refuse``'s error once an exact count says it
        has none (class docstring)."""
        turns = self._exact_turns.get(who)
        if turns is None:
            turns = self._exact_turns[who] = _Turns()
        turns.users += 1
        try:
            async with turns.lock:
                while not self._has_room(who):
                    while self._pending.get(who):
                        await self._settled.setdefault(who, asyncio.Event()).wait()
                    added_before = self._added.get(who, 0)
                    self.reads += 1
                    count = await self._count(who)
                    self._read[who] = (count, added_before)
                    exact = self._added.get(who, 0) == added_before and not self._pending.get(who)
                    if exact and count >= self._limit:
                        raise self._refuse(who, count)
        finally:
            # Synchronous, so a cancelled check cannot leave the identity's turns behind.
            turns.users -= 1
            if not turns.users:
                del self._exact_turns[who]


class RunAdmissions(IdentityQuota):
    """The quota of runs one identity started that wait to run (WAITING or STARTING).

    A StartJobRun's row is inserted only after the scheduler admitted the run, so the check
    cannot share the insert's transaction: each admission is held from the check until its
    row is committed (``IdentityQuota``). Runs recorded with no identity (a trigger's, a
    retry) are anonymous's: the event consumer notes them (``note_added``).
    """

    def __init__(self, db: Database, limit: int) -> None:
        self._db = db
        super().__init__(limit, self._waiting, self._refusal)

    async def _waiting(self, who: str | None) -> int:
        query = (
            select(func.count())
            .select_from(job_runs)
            .where(_owned_by(job_runs.c.started_by, who))
            .where(job_runs.c.state.in_(WAITING_STATES))
        )
        async with self._db.read() as conn:
            return int((await conn.execute(query)).scalar_one())

    def _refusal(self, who: str | None, waiting: int) -> GlueError:
        return ResourceNumberLimitExceededException(
            f"{who or ANONYMOUS} already has {waiting} job runs waiting to start "
            f"(WAITING or STARTING), the most one identity may have "
            f"(--max-waiting-runs-per-identity {self._limit}); retry when some have started"
        )

    def admit(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Hold one admission of the current identity for the block (start, then record).

        Raises:
            ResourceNumberLimitExceededException: the identity is at its quota; nothing started.
        """
        return self.hold()


class JobQuota(IdentityQuota):
    """The quota of jobs one identity created (--max-jobs-per-identity)."""

    def __init__(self, db: Database, limit: int, table: Any, column: Column[Any]) -> None:
        self._db = db
        self._table = table
        self._column = column
        super().__init__(limit, self._owned, self._refusal)

    async def _owned(self, who: str | None) -> int:
        query = select(func.count()).select_from(self._table).where(_owned_by(self._column, who))
        async with self._db.read() as conn:
            return int((await conn.execute(query)).scalar_one())

    def _refusal(self, who: str | None, count: int) -> GlueError:
        return ResourceNumberLimitExceededException(
            f"{who or ANONYMOUS} already has {count} jobs, the most one identity may have "
            f"(--max-jobs-per-identity {self._limit}); delete some first"
        )
