"""History retention: the scheduler's own history is pruned, never what is still needed.

The scheduler keeps three kinds of history that would otherwise grow without end: the fire
ledger (a trigger firing every minute writes 1,440 rows a day), finished runs with their run
directories (output.log), and the run-event outbox. The catalog keeps the run history users
read (GetJobRun, GetJobRuns); the scheduler's copy serves run logs, ``gluectl triggers fires``
and the event stream. Every replica prunes, in small batches, everything older than the
retention window:

- ledger rows recorded before the cutoff (a due instant that old can never be claimed again:
  the trigger's next fire time moved past it in the transaction that wrote the row);
- terminal runs that completed before the cutoff, and their run directories on this replica's
  site (another site's directories are pruned by a replica of that site);
- outbox events created before the cutoff that the catalog no longer needs: those it has
  acknowledged applying, and those superseded by a newer event about the same run (each event
  carries the run's whole record, so a consumer that is far behind still gets every run's latest
  state). An event the catalog may still need is kept however old it is.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from dataclasses import dataclass
from itertools import takewhile
from pathlib import Path

from sqlalchemy import and_, delete, exists, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from glue_vocabulary.run_states import TERMINAL
from scheduler_service.tables import counters, outbox, runs, trigger_fires
from servicekit.db import Database

log = logging.getLogger(__name__)

# Rows per statement: short transactions, so pruning never holds locks that firing waits on.
BATCH = 1000
PRUNE_INTERVAL_SECONDS = 3600.0
ACKED_COUNTER = "outbox_acked"
_TERMINAL_STATES = sorted(state.value for state in TERMINAL)


@dataclass(slots=True)
class Pruned:
    """What one pass removed."""

    fires: int = 0
    runs: int = 0
    run_dirs: int = 0
    events: int = 0

    def __bool__(self) -> bool:
        return bool(self.fires or self.runs or self.run_dirs or self.events)


async def acknowledge(conn: AsyncConnection, sequence: int) -> None:
    """Record that the catalog has durably applied every event through ``sequence``."""
    await conn.execute(
        update(counters)
        .where(and_(counters.c.name == ACKED_COUNTER, counters.c.value < sequence))
        .values(value=sequence)
    )


async def _acknowledged(conn: AsyncConnection) -> int:
    value = (
        await conn.execute(select(counters.c.value).where(counters.c.name == ACKED_COUNTER))
    ).scalar_one_or_none()
    return int(value or 0)


class Retention:
    """Prunes the scheduler's history older than ``keep_seconds`` every ``interval`` seconds."""

    def __init__(
        self,
        db: Database,
        runs_dir: Path,
        site: str | None,
        *,
        keep_seconds: float,
        interval: float,
    ) -> None:
        self._db = db
        self._runs_dir = runs_dir
        self._site = site
        self._keep = keep_seconds
        self._interval = interval

    async def run(self) -> None:
        """Prune now and every interval, forever (a no-op when retention is off)."""
        if self._keep <= 0:
            return
        while True:
            try:
                pruned = await self.prune(time.time() - self._keep)
                if pruned:
                    log.info(
                        "history pruned",
                        extra={
                            "fires": pruned.fires,
                            "runs": pruned.runs,
                            "run_dirs": pruned.run_dirs,
                            "events": pruned.events,
                        },
                    )
            except Exception:
                # A database outage must not end the loop; the next pass retries.
                log.exception("history pruning failed; retrying next interval")
            await asyncio.sleep(self._interval)

    async def prune(self, cutoff: float) -> Pruned:
        """Remove everything older than ``cutoff`` (epoch seconds) that may go."""
        pruned = Pruned()
        while n := await self._prune_fires(cutoff):
            pruned.fires += n
        while ids := await self._prune_runs(cutoff):
            pruned.runs += len(ids)
            pruned.run_dirs += await asyncio.to_thread(self._remove_run_dirs, ids)
        after = 0
        while True:
            n, after = await self._prune_events(cutoff, after)
            pruned.events += n
            if after == 0:
                break
        return pruned

    async def acknowledged(self) -> int:
        """The last event sequence the catalog acknowledged applying."""
        async with self._db.read() as conn:
            return await _acknowledged(conn)

    async def _prune_fires(self, cutoff: float) -> int:
        old = (
            select(trigger_fires.c.trigger_name, trigger_fires.c.fire_key)
            .where(trigger_fires.c.recorded_at < cutoff)
            .limit(BATCH)
        )
        async with self._db.transaction() as conn:
            result = await conn.execute(
                delete(trigger_fires).where(
                    tuple_(trigger_fires.c.trigger_name, trigger_fires.c.fire_key).in_(old)
                )
            )
        return int(result.rowcount or 0)

    async def _prune_runs(self, cutoff: float) -> list[tuple[str, str | None]]:
        """Delete a batch of old finished runs; returns their (run id, site)."""
        old = (
            select(runs.c.run_id)
            # created_at <= completed_at: the first test lets the (state, created_at) index serve.
            .where(
                runs.c.state.in_(_TERMINAL_STATES),
                runs.c.created_at < cutoff,
                runs.c.completed_at < cutoff,
            )
            .limit(BATCH)
        )
        async with self._db.transaction() as conn:
            rows = await conn.execute(
                delete(runs).where(runs.c.run_id.in_(old)).returning(runs.c.run_id, runs.c.site)
            )
            return [(row.run_id, row.site) for row in rows]

    def _remove_run_dirs(self, deleted: list[tuple[str, str | None]]) -> int:
        """Remove this site's directories of deleted runs (in a worker thread)."""
        removed = 0
        for run_id, site in deleted:
            if site not in (None, self._site):
                continue
            path = self._runs_dir / run_id
            if path.parent != self._runs_dir or not path.is_dir():
                continue  # never follow an odd id out of the runs directory
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
        return removed

    async def _prune_events(self, cutoff: float, after: int) -> tuple[int, int]:
        """Delete a batch of old events from ``after`` on; returns (deleted, where to go on).

        The scan walks the outbox in sequence order (old events come first), stops at the first
        event younger than the cutoff, and goes on past the events it keeps, so a kept event is
        read once per pass; 0 means done.
        """
        async with self._db.transaction() as conn:
            acked = await _acknowledged(conn)
            newer = outbox.alias("newer")
            batch = (
                await conn.execute(
                    select(
                        outbox.c.seq,
                        outbox.c.created_at,
                        or_(
                            outbox.c.seq <= acked,
                            exists().where(
                                newer.c.run_id == outbox.c.run_id, newer.c.seq > outbox.c.seq
                            ),
                        ).label("spent"),
                    )
                    .where(outbox.c.seq > after)
                    .order_by(outbox.c.seq)
                    .limit(BATCH)
                )
            ).all()
            old = list(takewhile(lambda row: row.created_at < cutoff, batch))
            spent = [row.seq for row in old if row.spent]
            if spent:
                await conn.execute(delete(outbox).where(outbox.c.seq.in_(spent)))
        done = not old or len(old) < len(batch) or len(batch) < BATCH
        return len(spent), 0 if done else old[-1].seq
