"""Run ownership across scheduler replicas: replica identity, leases on the database clock, sites.

Several scheduler replicas may share one PostgreSQL database. There is **no leader**, and none
is needed, because every piece of shared work is claimed row by row:

- *Firing*: due triggers are claimed with ``SELECT ... FOR UPDATE SKIP LOCKED`` and the update of
  ``next_fire_at`` compares the value read; the fire ledger's key (trigger, fire key) makes a
  lost race fail instead of firing twice (``firing``). A replica that dies mid-fire has its
  transaction rolled back, and any other replica's clock, which re-reads the due-time index at
  least every second, fires the still-due triggers.
- *Queued runs*: WAITING runs are promoted under their jobs' row locks by whichever replica
  has a free process slot (``runs.RunStore.promote``).
- *In-flight runs* (STARTING, RUNNING, STOPPING) each have one **owner**, the replica that
  started, promoted or adopted them, held by a **lease** (``scheduler_runs.owner`` and
  ``lease_until``):

  * the owner's heartbeat renews the leases of the runs it watches every third of the lease;
  * every replica's reaper claims in-flight runs whose lease expired (or that have no owner) with
    ``FOR UPDATE SKIP LOCKED`` and an update that compares the old owner and lease, then adopts
    them through the runner; a run launched on another site only once its lease has been
    expired for a further lease period (the *orphan grace*, see Sites below), and a run of a
    dead process of its own site at once, lease or not;
  * every write of a run's state by an executor (``record_launch``, ``mark_running``,
    ``finish``) checks
    ``owner = me`` in the same transaction (**fencing**): a replica that was paused past its
    lease and resumes finds the run taken, logs it and drops the run instead of writing over
    the new owner.

A leader (an advisory lock plus a fencing epoch, docs/invariants.md §4) would add a single point
whose failover must itself be fenced, and buys nothing the row claims do not already give.

**Clock.** Leases are compared on the database server's clock (``db_epoch()``: PostgreSQL's
``clock_timestamp()``, SQLite's ``julianday('now')``), never on the replicas' own clocks, so
replicas on different machines need no clock synchronisation for leases to work (the Quartz
check-in rule compares peers' wall clocks and fails under skew). Timestamps shown to users stay
the replicas' wall clock, as before.

**Sites.** A run's process runs under a supervisor in ``<data-dir>/runs/<run_id>/``, on the
machine of the replica that launched it. Each data directory has a random id
(``runs/.data-dir-id``), the *site*. **Launching is a recorded step**: before it starts the
supervisor, the owner writes its own site into ``scheduler_runs.site`` - in the transaction that
gives the run its process slot and makes it STARTING (an admission, a fire, or a promotion,
``runs.RunStore.promote_waiting`` / ``promote``: ``RunStore.launched_here``), or, for a run taken
over without one, in one fenced transaction (``RunStore.record_launch``) - and the site never
changes after that. The run moves from STARTING to RUNNING, fenced, only once its supervisor
reported the job's process started (``RunStore.mark_running``, batched by ``running``). So the
database alone tells a run that was never launched (site NULL: any replica that takes it over
launches it, exactly once, because that write is fenced) from one launched on a given machine
(only that machine can see its supervisor; STARTING or RUNNING, its run directory's claim says
whether a supervisor started).

Processes of one site know exactly which of them are alive: each replica (and caretaker)
registers its pid, process start time and boot id under ``runs/.processes/`` (``SiteProcesses``),
so a replica takes a dead sibling's runs at once, without waiting for their leases.

A run launched on another site is never settled from afar while that site may still report on
it. When a replica process dies, a small watcher it started (``replica_watch``) starts a
**caretaker** for its site (``caretaker``): a scheduler process without a server that takes the
dead replica's runs, keeps their leases, records their true outcomes from the supervisors'
``exit.json`` (and launches any whose launch was recorded but whose supervisor never started),
and hands them back to a replica of the site as soon as one is alive. Only when nothing on that
site has renewed a run's lease for a whole further lease period (``orphan grace``) may a replica
elsewhere take the run, and then it can only say what it knows: the run ends FAILED with a
message naming the lost replica, and is **not retried automatically**, since its job may still be
running on a machine that is merely cut off. If that machine comes back, its heartbeat finds the
run settled and stops the process. Replicas sharing a data directory must share the PID
namespace; a data directory shared over a network file system between machines is not supported.

**Replica ids** must be unique among live replicas; the default (host, pid, random suffix) is.
A replica restarted with the *same* id re-adopts its own runs at start-up without waiting for
their leases to expire, so a stable id (a StatefulSet pod name, a systemd instance name) makes
restarts after a crash faster. A replica stopped gracefully (SIGTERM) expires its leases as it
leaves (at the database's current time), so a sibling on its site takes its runs at once, and
any replica its runs that were never launched; replicas elsewhere still wait out the orphan
grace.
"""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Double
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

DEFAULT_LEASE_SECONDS = 10.0
# The heartbeat renews leases this many times per lease period: two renewals may be lost (a
# slow database, a busy event loop) before the lease expires.
RENEWALS_PER_LEASE = 3
# How often the reaper looks for expired leases, at most; a shorter lease makes it look sooner.
MAX_REAP_INTERVAL_SECONDS = 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Replica:
    """This scheduler process as the run table knows it."""

    replica_id: str
    """Written into ``scheduler_runs.owner`` for the runs this replica is responsible for."""
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    """How long an owner's claim on a run holds without renewal."""
    site: str | None = None
    """The id of this replica's data directory (``site.site_id``); None: unknown (tests)."""


def default_replica_id() -> str:
    """``<hostname>-<pid>-<random>``: unique among live replicas without any configuration."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def heartbeat_interval(lease_seconds: float) -> float:
    """How often an owner renews its leases."""
    return lease_seconds / RENEWALS_PER_LEASE


def reap_interval(lease_seconds: float) -> float:
    """How often a replica looks for runs whose lease expired."""
    return min(MAX_REAP_INTERVAL_SECONDS, lease_seconds / RENEWALS_PER_LEASE)


class db_epoch(FunctionElement[float]):  # noqa: N801 - named like the SQL functions it renders
    """The database server's current time in epoch seconds (double precision).

    Renders ``EXTRACT(EPOCH FROM clock_timestamp())`` on PostgreSQL (the time of the statement,
    not of the transaction's start) and ``julianday('now')`` arithmetic on SQLite.
    """

    type = Double()
    inherit_cache = True
    name = "db_epoch"


@compiles(db_epoch, "postgresql")
def _db_epoch_postgresql(element: db_epoch, compiler: Any, **kw: Any) -> str:
    return "CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)"


@compiles(db_epoch, "sqlite")
def _db_epoch_sqlite(element: db_epoch, compiler: Any, **kw: Any) -> str:
    # julianday('now') has millisecond precision; 2440587.5 is the Julian day of 1970-01-01.
    return "((julianday('now') - 2440587.5) * 86400.0)"
