"""Run ownership queries: claiming in-flight runs whose lease expired, renewing and releasing
this replica's leases (the rules are in ``leases``).

These are the only statements that move ``owner`` and ``lease_until`` outside the run's own
transitions (``runs``), which take a lease with ``lease_expr`` when they admit or promote.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import and_, or_, select, true, update

from glue_vocabulary.run_states import HOLDS_PROCESS_SLOT, JobRunState
from scheduler_service.leases import Replica, db_epoch
from scheduler_service.run_record import RunRecord, readable_runs
from scheduler_service.tables import runs
from servicekit.db import Database

# Runs claimed per transaction by ``claim_runs``, and run ids per statement when renewing.
CLAIM_BATCH = 500
RENEW_CHUNK = 500
_IN_FLIGHT = [s.value for s in HOLDS_PROCESS_SLOT]


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimedRun:
    """An in-flight run this replica just took charge of, and who had it before."""

    run: RunRecord
    """The run as it now is (owned by this replica)."""
    previous_owner: str | None
    """The replica that owned it (None: never owned, a run from before leases existed)."""


class RunLeases:
    """This replica's claims on in-flight runs."""

    def __init__(self, db: Database, replica: Replica) -> None:
        self._db = db
        self.replica = replica

    def lease_expr(self) -> Any:
        """SQL for a lease taken now: the database's clock plus the lease length."""
        return db_epoch() + self.replica.lease_seconds

    @property
    def single_process(self) -> bool:
        """True on SQLite, where a file lock keeps every other scheduler process away."""
        return self._db.is_sqlite

    def _takeable(
        self, now: Any, *, include_own: bool, dead_owners: Sequence[str], site_only: bool
    ) -> Any:
        """Which in-flight runs a claim may take at database time ``now`` (see ``leases``)."""
        site = self.replica.site
        here_or_unlaunched = or_(runs.c.site.is_(None), runs.c.site == site)
        takeable = or_(
            runs.c.owner.is_(None),
            runs.c.lease_until.is_(None),
            # Launched here or never launched: as soon as the lease expired.
            and_(runs.c.lease_until < now, here_or_unlaunched),
            # Launched on another site: only after a further lease period of silence, which
            # gives that site's caretaker time to take it (the orphan grace).
            runs.c.lease_until < now - self.replica.lease_seconds,
        )
        if include_own:
            takeable = or_(takeable, runs.c.owner == self.replica.replica_id)
        if dead_owners:
            # Processes of this site known to be dead: their runs at once, lease or not.
            takeable = or_(takeable, and_(runs.c.owner.in_(dead_owners), here_or_unlaunched))
        if site_only:
            takeable = and_(
                takeable,
                or_(
                    runs.c.site == site,
                    and_(runs.c.site.is_(None), runs.c.owner.in_(dead_owners)),
                ),
            )
        return takeable

    async def claim_runs(
        self,
        *,
        include_own: bool,
        include_all: bool = False,
        dead_owners: Sequence[str] = (),
        site_only: bool = False,
        limit: int = CLAIM_BATCH,
    ) -> list[ClaimedRun]:
        """Take charge of in-flight runs whose owner's lease expired (or that have no owner).

        A run launched on another site is taken only once its lease has been expired for a
        further lease period, a run of ``dead_owners`` (processes of this site known to be
        dead) at once. With ``include_own`` also this replica's own runs whatever their lease
        (a replica restarted under the same id re-adopts them at once); with ``include_all``
        every in-flight run (start-up in single-process mode, where no other owner can be
        alive); with ``site_only`` only runs launched on this site or never launched by one of
        ``dead_owners`` (a caretaker). Rows another transaction holds are skipped
        (``FOR UPDATE SKIP LOCKED``); each is taken by an update that compares the owner and
        lease that were read, so two reapers can never both take a run, and a run whose owner
        renewed its lease meanwhile is left alone. A run's site is left as it is: it says where
        its supervisor was launched. Oldest first.
        """
        me = self.replica.replica_id

        def takeable_at(now: Any) -> Any:
            if include_all:
                return true()
            return self._takeable(
                now, include_own=include_own, dead_owners=dead_owners, site_only=site_only
            )

        # A read first: almost always nothing is takeable, and the reaper of every replica asks
        # every second, so it must not take write locks (SQLite has one writer) to find that.
        async with self._db.read() as conn:
            takeable = takeable_at(db_epoch())
            any_takeable = (
                await conn.execute(
                    select(runs.c.run_id)
                    .where(runs.c.state.in_(_IN_FLIGHT))
                    .where(takeable)
                    .limit(1)
                )
            ).first()
        if any_takeable is None:
            return []
        async with self._db.transaction() as conn:
            now = float((await conn.execute(select(db_epoch()))).scalar_one())
            takeable = takeable_at(now)
            query = (
                select(runs)
                .where(runs.c.state.in_(_IN_FLIGHT))
                .where(takeable)
                .order_by(runs.c.created_at, runs.c.run_id)
                .limit(limit)
            )
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            found = await readable_runs(conn, (await conn.execute(query)).all())
            lease_until = now + self.replica.lease_seconds
            claimed = []
            for run in found:
                result = await conn.execute(
                    update(runs)
                    .where(runs.c.run_id == run.run_id)
                    .where(runs.c.owner.is_not_distinct_from(run.owner))
                    .where(runs.c.lease_until.is_not_distinct_from(run.lease_until))
                    .values(owner=me, lease_until=lease_until)
                )
                if result.rowcount:
                    claimed.append(
                        ClaimedRun(
                            run=replace(run, owner=me, lease_until=lease_until),
                            previous_owner=run.owner,
                        )
                    )
        return claimed

    async def other_owners(self) -> list[str]:
        """The owners of in-flight runs other than this replica (candidates for
        ``SiteProcesses.dead``)."""
        async with self._db.read() as conn:
            rows = await conn.execute(
                select(runs.c.owner)
                .where(runs.c.state.in_(_IN_FLIGHT))
                .where(runs.c.owner.is_not(None))
                .where(runs.c.owner != self.replica.replica_id)
                .distinct()
            )
            return [row.owner for row in rows]

    async def renew_leases(
        self, run_ids: Sequence[str]
    ) -> dict[str, tuple[str | None, JobRunState]]:
        """The heartbeat: extend this replica's leases on ``run_ids`` (those still in flight).

        Returns each run's owner and state after the renewal, so the caller sees runs another
        replica took (owner not this replica) and runs asked to stop (STOPPING).
        """
        me = self.replica.replica_id
        seen: dict[str, tuple[str | None, JobRunState]] = {}
        ordered = sorted(run_ids)  # one lock order for every renewal: no deadlocks between them
        async with self._db.transaction() as conn:
            for start in range(0, len(ordered), RENEW_CHUNK):
                chunk = ordered[start : start + RENEW_CHUNK]
                await conn.execute(
                    update(runs)
                    .where(runs.c.run_id.in_(chunk))
                    .where(runs.c.owner == me)
                    .where(runs.c.state.in_(_IN_FLIGHT))
                    .values(lease_until=self.lease_expr())
                )
                rows = await conn.execute(
                    select(runs.c.run_id, runs.c.owner, runs.c.state).where(
                        runs.c.run_id.in_(chunk)
                    )
                )
                for row in rows:
                    seen[row.run_id] = (row.owner, JobRunState(row.state))
        return seen

    async def release_leases(self) -> int:
        """Expire this replica's leases now (graceful shutdown, a caretaker's hand-over).

        They expire at the database's current time, not at some time long past: a process of
        this site (and anyone, for a run never launched) may take them at once, while a replica
        of another site, which cannot see a launched run's supervisor, still waits out the
        orphan grace (see ``leases``). The owner stays, so a restart under the same id
        re-adopts whatever nobody took meanwhile. Returns how many runs were released.
        """
        async with self._db.transaction() as conn:
            result = await conn.execute(
                update(runs)
                .where(runs.c.owner == self.replica.replica_id)
                .where(runs.c.state.in_(_IN_FLIGHT))
                .values(lease_until=db_epoch())
            )
        return int(result.rowcount or 0)
