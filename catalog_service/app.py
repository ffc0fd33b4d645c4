"""CatalogApp: owns the catalog's database, server, scheduler channel and background loops."""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import replace
from pathlib import Path

from catalog_service import metrics as catalog_metrics
from catalog_service.access.bearer import BearerAuthenticator
from catalog_service.console import Console
from catalog_service.event_consumer import EventConsumer
from catalog_service.gateway.server import HttpGateway, load_keys
from catalog_service.job_bookmarks import JobBookmarkCatalog
from catalog_service.job_runs import JobRunCatalog
from catalog_service.jobs import JobCatalog
from catalog_service.reconciler import Reconciler
from catalog_service.scheduler_link import SchedulerLink
from catalog_service.servicer import GlueOperations, GlueServicer
from catalog_service.settings import CatalogSettings
from catalog_service.tags import TagCatalog
from catalog_service.triggers import TriggerCatalog
from glue.v1 import glue_pb2, glue_pb2_grpc
from servicekit.internal_auth import MutualTls, load_secret, refuse_shared
from servicekit.lifecycle import ServiceApp
from servicekit.metrics import RpcMetrics, http_routes, new_registry
from servicekit.migrations import upgrade_to_head
from servicekit.server import GrpcServer, server_credentials

log = logging.getLogger(__name__)
MIGRATIONS = Path(__file__).parent / "migrations"
SERVICE_NAME = glue_pb2.DESCRIPTOR.services_by_name["Glue"].full_name


class CatalogApp(ServiceApp):
    """The running catalog service; an async context manager.

    Entering binds the port, migrates, and starts the event consumer and the reconciler. API
    calls are accepted once migrations ran; health reports SERVING only while the scheduler's
    event stream is connected. With ``http_listen`` the HTTP gateway starts after migrations
    and stops before the gRPC server. Leaving stops the servers, then the loops, then closes
    the channel and the engine.
    """

    def __init__(self, settings: CatalogSettings) -> None:
        super().__init__()
        self.settings = settings
        self.port = 0
        self.http_port = 0
        self._tasks: list[asyncio.Task[None]] = []

    async def _start(self) -> None:
        settings = self.settings
        problem = settings.exposure_problem()
        if problem is not None:
            raise ValueError(problem)
        waived = replace(settings, insecure=False).exposure_problem() if settings.insecure else None
        if waived is not None:
            log.warning("INSECURE (--insecure): %s", waived)
        # Read before anything binds: a bad keys file stops start-up with a clear message, and
        # so does one others may read (it holds every caller's secret key).
        if settings.access_keys is not None:
            refuse_shared(
                settings.access_keys, settings.access_keys.stat().st_mode, "--access-keys"
            )
        keys = load_keys(settings.access_keys)
        credentials = (
            server_credentials(settings.tls_cert, settings.tls_key)
            if settings.tls_cert is not None and settings.tls_key is not None
            else None
        )
        stack = self._stack
        db = self.open_database(settings.effective_database_url, "catalog-service")
        link = SchedulerLink(
            settings.scheduler_target,
            timeout=settings.scheduler_timeout_seconds,
            secret=load_secret(settings.internal_secret) if settings.internal_secret else None,
            mutual_tls=MutualTls.from_paths(
                settings.internal_ca, settings.internal_cert, settings.internal_key
            ),
        )
        stack.push_async_callback(link.close)

        jobs = JobCatalog(db, link, caps=settings.limits)
        stack.push_async_callback(jobs.close)
        runs = JobRunCatalog(db, link, jobs, caps=settings.limits)
        stack.push_async_callback(runs.close)
        trigger_catalog = TriggerCatalog(db, link, jobs, caps=settings.limits)
        registry = new_registry()
        self.registry = registry
        server = GrpcServer(
            [SERVICE_NAME],
            guard=None if keys is None else BearerAuthenticator(keys),
            metrics=RpcMetrics(registry),
        )
        reconciler = Reconciler(
            db, link, jobs, trigger_catalog, interval=settings.reconcile_interval_seconds
        )

        health_updates: set[asyncio.Task[None]] = set()

        def on_connected(up: bool) -> None:
            if up:
                reconciler.wake()
            task = asyncio.get_running_loop().create_task(
                server.set_serving(up, "the scheduler's run-event stream is not connected")
            )
            health_updates.add(task)
            task.add_done_callback(health_updates.discard)

        consumer = EventConsumer(
            db,
            link,
            on_connected=on_connected,
            applied_elsewhere=runs.applied_elsewhere,
            on_applied=runs.consumer_applied,
        )
        catalog_metrics.register(registry, consumer, reconciler)
        self.db, self.jobs, self.runs = db, jobs, runs
        self.consumer, self.reconciler = consumer, reconciler
        stack.push_async_callback(self._stop_tasks)

        operations = GlueOperations(
            jobs,
            runs,
            JobBookmarkCatalog(link, jobs),
            trigger_catalog,
            TagCatalog(db),
            settings.limits,
        )
        # mypy sees the stub's abstract methods; servicer.py attaches them at import.
        servicer = GlueServicer(operations)  # type: ignore[abstract]
        glue_pb2_grpc.add_GlueServicer_to_server(servicer, server.server)
        gateway = None
        if settings.http_listen is not None:
            gateway = HttpGateway(
                operations,
                settings.http_listen,
                access_keys=keys,
                ssl_context=_server_ssl_context(settings),
                insecure=settings.insecure,
                shutdown_grace=settings.shutdown_grace_seconds,
                routes=http_routes(registry, server),
                # The operator's web console, on the same listener and keys as the gateway.
                mounts=[Console(operations, keys).mount],
                runs=runs,
            )
        self.port = server.bind(settings.listen, credentials, setting="--listen / CATALOG_LISTEN")
        await server.start()
        stack.push_async_callback(server.stop, settings.shutdown_grace_seconds)
        await upgrade_to_head(db, MIGRATIONS, "catalog_alembic_version")
        server.accept_calls(True)
        if gateway is not None:
            await gateway.start()
            stack.push_async_callback(gateway.stop)
            self.http_port = gateway.port
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(consumer.run()),
            loop.create_task(reconciler.run()),
            loop.create_task(runs.prune_deleted_job_runs_forever()),
        ]
        log.info(
            "catalog serving",
            extra={
                "listen": settings.listen,
                "port": self.port,
                "scheduler": settings.scheduler,
                "tls": credentials is not None,
                "authentication": "access keys" if keys is not None else "none (loopback)",
            },
        )

    async def _stop_tasks(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _server_ssl_context(settings: CatalogSettings) -> ssl.SSLContext | None:
    """The gateway's HTTPS context from --tls-cert/--tls-key; None: plain HTTP."""
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(settings.tls_cert, settings.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(
            f"cannot use --tls-cert {settings.tls_cert} with --tls-key {settings.tls_key}: {exc}"
        ) from exc
    return context
