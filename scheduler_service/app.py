"""SchedulerApp: owns the scheduler's database, server, executor and background loops."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from glue.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc
from scheduler_service.admissions import Admissions
from scheduler_service.caretaker import start_watcher
from scheduler_service.clock import FIRING_CONCURRENCY, MAX_LAUNCH_HOLD_SECONDS, Clock
from scheduler_service.commands import check_run_reach
from scheduler_service.executor import Executor
from scheduler_service.firing import Firing
from scheduler_service.leases import Replica
from scheduler_service.metrics import SchedulerMetrics
from scheduler_service.outbox import EventFeed
from scheduler_service.retention import PRUNE_INTERVAL_SECONDS, Retention
from scheduler_service.retries import retry_backoff
from scheduler_service.run_end import RunEnd
from scheduler_service.runner import ProcessRunner
from scheduler_service.runs import RunStore
from scheduler_service.sandbox import protect_data_dir
from scheduler_service.servicer import SchedulerServicer
from scheduler_service.settings import SchedulerSettings
from scheduler_service.site import Role, SiteProcesses, site_id
from scheduler_service.slots import ProcessSlots
from scheduler_service.warm_up import ArchiveWarmUp
from servicekit.file_modes import private_dir
from servicekit.internal_auth import MutualTls, check_exposure, load_secret, secret_guard
from servicekit.lifecycle import ServiceApp
from servicekit.metrics import HttpListener, RpcMetrics, http_routes, new_registry
from servicekit.migrations import upgrade_to_head
from servicekit.server import GrpcServer, server_credentials, split_address

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"
SERVICE_NAME = scheduler_pb2.DESCRIPTOR.services_by_name["Scheduler"].full_name


class SchedulerApp(ServiceApp):
    """The running scheduler service; an async context manager.

    Entering binds the port, migrates the database, re-adopts runs left in flight and only then
    reports SERVING; leaving stops the server and closes everything it opened, in reverse
    order, without killing any job process (its runs' leases are released for other replicas).

    Several replicas may share one PostgreSQL database, with no leader (see ``leases``); on
    SQLite a file lock allows one process per database file.
    """

    def __init__(self, settings: SchedulerSettings) -> None:
        super().__init__()
        self.settings = settings
        self.port = 0
        self.http_port = 0

    async def _start(self) -> None:
        settings = self.settings
        stack = self._stack
        # Before anything opens: a bad secret file or an unguarded open address stops start-up
        # with one line naming the fix.
        secret = load_secret(settings.internal_secret) if settings.internal_secret else None
        mutual_tls = MutualTls.from_paths(
            settings.internal_ca, settings.internal_cert, settings.internal_key
        )
        problem = settings.http_exposure_problem()
        if problem is not None:
            raise ValueError(problem)
        check_exposure(
            settings.listen,
            secret=secret is not None,
            mutual_tls=mutual_tls is not None,
            insecure=settings.insecure,
        )
        credentials = (
            server_credentials(
                mutual_tls.cert,
                mutual_tls.key,
                client_ca=mutual_tls.ca,
                require_client_cert=True,
            )
            if mutual_tls is not None
            else None
        )
        # Jobs run as someone else's code: refuse to start if the run identity cannot reach
        # the interpreter or the runtime, rather than failing every run.
        commands = settings.commands
        check_run_reach(commands)
        # The databases, secret and logs are the services' alone; a run as another user only
        # passes through (0711) on its way to its own run directory.
        others_enter = commands.identity.uid != os.geteuid()
        private_dir(settings.data_dir.resolve(), traversable=others_enter)
        db = self.open_database(settings.effective_database_url, "scheduler-service")

        private_dir(settings.runs_dir, traversable=others_enter)
        replica = Replica(
            replica_id=settings.replica_id,
            lease_seconds=settings.lease_seconds,
            site=site_id(settings.runs_dir),
        )
        feed = EventFeed(db)
        registry = new_registry()
        metrics = SchedulerMetrics(registry)
        self.metrics = metrics
        store = RunStore(
            db,
            feed,
            settings.runs_dir,
            replica=replica,
            retry_backoff=retry_backoff(settings),
            metrics=metrics,
        )
        sandbox = settings.make_sandbox()
        runner = ProcessRunner(
            settings.runs_dir, stop_grace=settings.stop_grace_seconds, sandbox=sandbox
        )
        # Supervisors are forked by a zygote of this process (the launcher if it cannot start);
        # closed after the executor, which launches through it. Runs outlive both.
        await runner.start_zygote()
        stack.push_async_callback(runner.close)
        site_processes = SiteProcesses(settings.runs_dir)
        site_processes.register(replica.replica_id, Role.REPLICA)
        # The process slots, shared: admissions and fires reserve them for runs that start at
        # once, the executor holds one per run it launches or watches.
        slots = ProcessSlots(settings.max_processes)
        # Writes the glueetl drivers' class-data archive when a launch finds none; closed (its
        # warm-up killed) after the executor, which asks for it.
        warm_up = ArchiveWarmUp(commands)
        stack.push_async_callback(warm_up.close)
        self.warm_up = warm_up
        firing = Firing(
            db,
            store,
            misfire_grace_seconds=settings.misfire_grace_seconds,
            slots=slots,
            metrics=metrics,
        )
        # What follows a run's end (conditional triggers, retries, promotion into the freed
        # slot) is recorded with the end, in one transaction.
        run_end = RunEnd(store, firing)
        executor = Executor(
            store,
            runner,
            run_end=run_end,
            slots=slots,
            commands=commands,
            site_processes=site_processes,
            warm_up=warm_up,
        )
        metrics.watch_slots(lambda: slots.used, slots.capacity)
        clock = Clock(
            firing,
            executor,
            concurrency=1 if db.is_sqlite else FIRING_CONCURRENCY,
            launch_hold=min(MAX_LAUNCH_HOLD_SECONDS, settings.lease_seconds / 4),
        )
        retention = Retention(
            db,
            settings.runs_dir,
            replica.site,
            keep_seconds=settings.history_days * 86400,
            interval=PRUNE_INTERVAL_SECONDS,
        )
        self.retention = retention
        self.feed = feed
        self.db, self.store, self.executor, self.firing, self.clock = (
            db,
            store,
            executor,
            firing,
            clock,
        )

        stack.push_async_callback(executor.close)
        # Closed before the executor: ends reported after it are written alone, and a batch in
        # flight commits (or not) before the executor hands its runs over.
        stack.push_async_callback(run_end.close)
        # StartRun's batch writers: closed after the server stops taking calls, before the
        # executor they hand runs to.
        admissions = Admissions(store, executor, slots, writers=1 if db.is_sqlite else 2)
        stack.push_async_callback(admissions.close)
        self._loops: list[asyncio.Task[None]] = []
        stack.push_async_callback(self._stop_loops)

        server = GrpcServer(
            [SERVICE_NAME],
            guard=secret_guard(secret) if secret is not None else None,
            metrics=RpcMetrics(registry),
        )
        scheduler_pb2_grpc.add_SchedulerServicer_to_server(
            SchedulerServicer(db, store, feed, executor, firing, clock, admissions), server.server
        )
        self.port = server.bind(settings.listen, credentials, setting="--listen / SCHEDULER_LISTEN")
        if settings.http_listen is not None:
            # Up before the migration, so /readyz says "starting" while it runs.
            host, http_port = split_address(settings.http_listen)
            listener = HttpListener(
                host,
                http_port,
                http_routes(registry, server, refresh=[lambda: metrics.refresh_runs(db)]),
                setting="--http-listen / SCHEDULER_HTTP_LISTEN",
            )
            await listener.start()
            stack.push_async_callback(listener.stop)
            self.http_port = listener.port
        # Listening (NOT_SERVING, calls refused as unavailable) while the database is migrated
        # and runs left in flight are re-adopted.
        await server.start()
        stack.push_async_callback(server.stop, settings.shutdown_grace_seconds)
        await upgrade_to_head(db, MIGRATIONS, "scheduler_alembic_version")
        if sandbox.changes_identity:
            # After the migration: the SQLite file exists by then, and no run has started.
            protect_data_dir(settings.data_dir)
        await executor.recover()
        loop = asyncio.get_running_loop()
        self._loops = [
            loop.create_task(executor.housekeeping()),
            loop.create_task(executor.heartbeat()),
            loop.create_task(executor.reaper()),
            loop.create_task(clock.run()),
            loop.create_task(retention.run()),
        ]
        if settings.caretaker and not db.is_sqlite:
            # Runs outlive this process; on a shared database something must record their ends
            # when it is gone (see ``caretaker``).
            await start_watcher(settings)
        server.accept_calls(True)
        await server.set_serving(True, "")
        log.info(
            "scheduler serving",
            extra={"listen": settings.listen, "port": self.port, "replica": replica.replica_id},
        )

    async def _stop_loops(self) -> None:
        for task in self._loops:
            task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
