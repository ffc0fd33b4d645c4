"""The caretaker: looks after a dead replica's runs on its machine until a replica is back.

Started by the replica's watcher (``replica_watch``) when the replica's process has ended, with
the replica's settings in its environment::

    python -m scheduler_service.caretaker --for REPLICA_ID

It is an executor without a server, a clock or a queue (see ``leases``): it takes the in-flight
runs of its data directory whose owners are dead processes of the site - their leases need not
expire first - and then, like any owner, renews their leases, records each run's true outcome
from its supervisor (retries and conditional triggers follow in the same transaction, as from a
replica; the runs those create wait for a replica to start them), and launches a run whose
launch was recorded but whose supervisor never started. It leaves as soon as it owns nothing,
or as soon as a replica of its site is alive, expiring its leases so that replica takes every
run over at once. One caretaker runs per data directory at a time (a file lock); another waits
for the lock, then looks again. On SQLite no caretaker is needed: one scheduler process owns
the database, and its restart re-adopts everything.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import logging
import os
import sys
from pathlib import Path

from scheduler_service import replica_watch
from scheduler_service.cli import parse_settings, settings_environment
from scheduler_service.executor import Executor
from scheduler_service.firing import Firing
from scheduler_service.leases import Replica, heartbeat_interval
from scheduler_service.outbox import EventFeed
from scheduler_service.retries import retry_backoff
from scheduler_service.run_end import RunEnd
from scheduler_service.runner import ProcessRunner
from scheduler_service.runs import RunStore
from scheduler_service.settings import SchedulerSettings
from scheduler_service.site import Role, SiteProcesses, site_id
from scheduler_service.slots import ProcessSlots
from servicekit.db import Database
from servicekit.logs import configure_logging

log = logging.getLogger(__name__)
LOCK_FILE = ".caretaker.lock"
LOG_FILE = ".caretaker.log"
CARETAKER_SUFFIX = "/caretaker"


def caretaker_id(replica_id: str) -> str:
    """The owner name a caretaker of ``replica_id`` writes into the runs it takes."""
    return replica_id + CARETAKER_SUFFIX


async def start_watcher(settings: SchedulerSettings) -> None:
    """Start this replica's watcher (``replica_watch``), which starts a caretaker when this
    process has ended. Its output, and the caretaker's, goes to ``<runs_dir>/.caretaker.log``.

    Raises:
        OSError: the watcher could not be started.
    """
    runs_dir = settings.runs_dir
    level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
    caretaker_argv = [
        sys.executable,
        "-m",
        "scheduler_service.caretaker",
        "--for",
        settings.replica_id,
    ]
    log_fd = os.open(
        runs_dir / LOG_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600
    )
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",
            "-S",
            "-c",
            replica_watch.BOOTSTRAP.format(directory=str(Path(replica_watch.__file__).parent)),
            "--runs-dir",
            str(runs_dir),
            "--",
            *caretaker_argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log_fd,
            stderr=log_fd,
            start_new_session=True,
            env=settings_environment(settings, level),
            # The caretaker imports this package, as the replica did.
            cwd=os.getcwd(),
        )
    finally:
        os.close(log_fd)
    # It forks the watcher and exits at once.
    await proc.wait()


def _lock(runs_dir: Path) -> int:
    """Wait for the site's caretaker lock; returns its file descriptor (held until exit)."""
    fd = os.open(runs_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


async def care(settings: SchedulerSettings, dead_replica: str) -> int:
    """Look after the site's orphaned runs; returns how many runs it took over in all."""
    runs_dir = settings.runs_dir
    runs_dir.mkdir(parents=True, exist_ok=True)
    lock_fd = await asyncio.to_thread(_lock, runs_dir)
    try:
        site_processes = SiteProcesses(runs_dir)
        live = site_processes.live_replicas()
        if live:
            log.info("a replica of this site is alive; nothing to do", extra={"replicas": live})
            return 0
        db = Database(settings.effective_database_url)
        try:
            return await _care(settings, dead_replica, db, site_processes)
        finally:
            await db.dispose()
    finally:
        os.close(lock_fd)


async def _care(
    settings: SchedulerSettings, dead_replica: str, db: Database, site_processes: SiteProcesses
) -> int:
    me = caretaker_id(dead_replica)
    replica = Replica(
        replica_id=me, lease_seconds=settings.lease_seconds, site=site_id(settings.runs_dir)
    )
    site_processes.register(me, Role.CARETAKER)
    # A caretaker records the ends of runs, and so makes their retries, with the same waits.
    store = RunStore(
        db, EventFeed(db), settings.runs_dir, replica=replica, retry_backoff=retry_backoff(settings)
    )
    # A caretaker starts no new runs: its slots only count the runs it watches, and a run's
    # end may fire conditional triggers whose runs wait until a replica promotes them.
    slots = ProcessSlots(settings.max_processes)
    firing = Firing(db, store, misfire_grace_seconds=settings.misfire_grace_seconds, slots=slots)
    run_end = RunEnd(store, firing)
    executor = Executor(
        store,
        ProcessRunner(
            settings.runs_dir,
            stop_grace=settings.stop_grace_seconds,
            sandbox=settings.make_sandbox(),
        ),
        run_end=run_end,
        slots=slots,
        commands=settings.commands,
        site_processes=site_processes,
        caretaker=True,
    )
    taken = 0
    try:
        await executor.recover()
        taken = len(executor.owned_runs)
        log.info("caretaker started", extra={"dead_replica": dead_replica, "runs": taken})
        while executor.owned_runs:
            await asyncio.sleep(heartbeat_interval(settings.lease_seconds))
            live = await asyncio.to_thread(site_processes.live_replicas)
            if live:
                log.info("handing the runs over to a live replica", extra={"replicas": live})
                break
            try:
                await executor.renew_leases()
                taken += await executor.reap()
            except Exception:
                log.exception("renewing or taking runs failed; will retry")
    finally:
        await run_end.close()
        await executor.close()
    log.info("caretaker leaving", extra={"runs_taken": taken})
    return taken


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``--for REPLICA_ID``; every other setting from the environment."""
    parser = argparse.ArgumentParser(
        prog="scheduler-caretaker",
        description="Looks after a dead scheduler replica's runs on its machine.",
    )
    parser.add_argument("--for", dest="dead_replica", required=True, help="the dead replica's id")
    args = parser.parse_args(argv)
    settings, level = parse_settings([])
    configure_logging(level)
    try:
        asyncio.run(care(settings, args.dead_replica))
    except (RuntimeError, OSError, ValueError) as exc:
        print(f"scheduler-caretaker: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
