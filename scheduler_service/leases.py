"""Run ownership across scheduler replicas: replica identity, leases on the database clock, sites.

Several scheduler replicas may share one PostgreSQL database. There is **no leader**, and none
is needed, because every piece of shared work is claimed row by row:

- *Firing*: due triggers are claimed with ``SELECT ... FOR UPDATE SKIP LOCKED`` and the update of
  ``next_fire_at`` compares the value read; the fire ledger's key (trigger, fire key) makes a
  lost race fail instead of firing twice (``firing``). A replica that dies mid-fire has its
  transaction rolled back, and any other replica's clock, which re-reads the due-time index at
  least every second, fires the still-due triggers.
- *Queued runs*: WAITING runs are promoted with ``SKIP LOCKED`` by whichever replica has a free
  process slot (``runs.RunStore.promote_waiting``).
- *In-flight runs* (STARTING, RUNNING, STOPPING) each have one **owner**, the replica that
  started, promoted or adopted them, held by a **lease** (``scheduler_runs.owner`` and
  ``lease_until``):

  * the owner's heartbeat renews the leases of the runs it watches every third of the lease;
  * every replica's reaper claims in-flight runs whose lease expired (or that have no owner) with
    ``FOR UPDATE SKIP LOCKED`` and an update that compares the old owner and lease, then adopts
    them through the runner;
  * every write of a run's state by an executor (``mark_running``, ``finish``) checks
    ``owner = me`` in the same transaction (**fencing**): a replica that was paused past its
    lease and resumes finds the run taken, logs it and drops the run instead of writing over
    the new owner.

A leader (an advisory lock plus a fencing epoch, DESIGN invariant 4) would add a single point
whose failover must itself be fenced, and buys nothing the row claims do not already give.

**Clock.** Leases are compared on the database server's clock (``db_epoch()``: PostgreSQL's
``clock_timestamp()``, SQLite's ``julianday('now')``), never on the replicas' own clocks, so
replicas on different machines need no clock synchronisation for leases to work (the Quartz
check-in rule compares peers' wall clocks and fails under skew). Timestamps shown to users stay
the replicas' wall clock, as before.

**Sites.** A run's process runs under a supervisor in ``<data-dir>/runs/<run_id>/``. Replicas that
share a data directory (one machine, or one pod) can read that directory and signal and await
the supervisor, so a surviving replica *adopts* a dead replica's runs: the job goes on and its
real outcome is recorded. Each data directory has a random id (``runs/.data-dir-id``), the
*site*; every owned run records its owner's site. A reaper on another site cannot see the run
directory: it settles the run FAILED with a message saying the replica died and the outcome is
unknown (the run is retried if the job allows). If that replica was not dead but paused or cut
off from the database, its heartbeat later finds the run settled by another replica and stops
the process, whose result nothing would record. Replicas sharing a data directory must share
the PID namespace (the supervisors' pids must mean the same processes); a data directory
shared over a network file system between machines is not supported.

**Replica ids** must be unique among live replicas; the default (host, pid, random suffix) is.
A replica restarted with the *same* id re-adopts its own runs at start-up without waiting for
their leases to expire, so a stable id (a StatefulSet pod name, a systemd instance name) makes
restarts after a crash faster. A replica stopped gracefully (SIGTERM) expires the leases of its
runs as it leaves, so another replica (or its restart) takes them over at once.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Double
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

DEFAULT_LEASE_SECONDS = 10.0
SITE_FILE = ".data-dir-id"
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
    """The id of this replica's data directory (``site_id``); None: unknown (tests)."""


def default_replica_id() -> str:
    """``<hostname>-<pid>-<random>``: unique among live replicas without any configuration."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def heartbeat_interval(lease_seconds: float) -> float:
    """How often an owner renews its leases."""
    return lease_seconds / RENEWALS_PER_LEASE


def reap_interval(lease_seconds: float) -> float:
    """How often a replica looks for runs whose lease expired."""
    return min(MAX_REAP_INTERVAL_SECONDS, lease_seconds / RENEWALS_PER_LEASE)


def site_id(runs_dir: Path) -> str:
    """The id of the data directory that holds ``runs_dir``, created on first use.

    Created by writing a temporary file and hard-linking it into place, so two replicas
    starting at once on a new directory agree on one id.
    """
    runs_dir.mkdir(parents=True, exist_ok=True)
    path = runs_dir / SITE_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    tmp = runs_dir / f".{SITE_FILE}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    tmp.write_text(secrets.token_hex(16) + "\n")
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass  # another replica won the race; use its id
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return path.read_text().strip()


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
