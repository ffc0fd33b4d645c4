"""Shared fixtures: both services in-process on ephemeral ports, over SQLite and PostgreSQL.

Every test that uses ``stack`` runs once per database backend. The PostgreSQL runs get a new
database each (both services share it, as a production deployment may).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest

from catalog_service.app import CatalogApp
from catalog_service.settings import CatalogSettings
from clients.credentials import Credentials, metadata_interceptors
from glue.v1 import glue_pb2, glue_pb2_grpc
from scheduler_service.app import SchedulerApp
from scheduler_service.settings import SchedulerSettings
from servicekit.db import Database
from tests.helpers.databases import (
    CATALOG,
    SCHEDULER,
    copy_sqlite,
    create_postgres_database,
    drop_postgres_database,
    migrate,
    sqlite_url,
)
from tests.helpers.spark import start_session

T = TypeVar("T")
# Seconds a test that starts a JVM may take, fixtures included (pytest's default is 120).
JVM_TEST_TIMEOUT = 600
TERMINAL = {"SUCCEEDED", "FAILED", "TIMEOUT", "STOPPED", "ERROR", "EXPIRED"}


# First: xdist's own hook (a worker's) turns each item's xdist_group marker into its node id's
# "@group" suffix, by which --dist loadgroup sends a group to one worker; it is registered after
# this conftest and so would otherwise run first and see none of the markers added here.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (``make test``), keep the tests that start JVMs on one worker
    (``--dist loadgroup``): the users of the one Spark session (a second session per worker
    would cost start-up time and memory for nothing) and tests/spark's glueetl runs (each a
    spark-submit JVM; two at once on a 2-core machine slow every other worker's timing). The
    browser tests share one chromium the same way. Every other test goes to whichever worker is
    free."""
    xdist = config.pluginmanager.hasplugin("xdist")
    for item in items:
        uses = getattr(item, "fixturenames", ())
        jvm = "spark" in uses or item.path.parent.name == "spark"
        if jvm:
            # A JVM (the session's, or a run's spark-submit) takes minutes to start on a loaded
            # 2-core machine; the tests' own waits for a run go up to 240 s.
            item.add_marker(pytest.mark.timeout(JVM_TEST_TIMEOUT))
        if xdist and jvm:
            item.add_marker(pytest.mark.xdist_group("spark"))
        elif xdist and "browser" in uses:
            item.add_marker(pytest.mark.xdist_group("browser"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    """The database backend a test runs on."""
    return str(request.param)


def run_apart(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` to completion on a loop of its own, in a thread: the session fixtures below
    are first asked for from inside a test's running loop, where ``asyncio.run`` refuses."""
    with ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, work).result()


@pytest.fixture(scope="session")
def sqlite_templates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(catalog file, scheduler file): SQLite databases each service's migrations brought to
    head, made once per test process (tests/helpers/databases.py)."""
    directory = tmp_path_factory.mktemp("migrated")
    catalog, scheduler = directory / "catalog.db", directory / "scheduler.db"
    run_apart(migrate(sqlite_url(directory, catalog.name), CATALOG))
    run_apart(migrate(sqlite_url(directory, scheduler.name), SCHEDULER))
    return catalog, scheduler


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """The URL of a PostgreSQL database both services' migrations brought to head (they may
    share one), made once per test process and dropped at its end."""
    url = run_apart(create_postgres_database())
    try:
        run_apart(migrate(url, CATALOG, SCHEDULER))
        yield url
    finally:
        run_apart(drop_postgres_database(url))


@pytest.fixture(scope="session")
def class_archives(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The glueetl drivers' class-data archive directory every stack of the session shares: the
    warm-up that writes the archive then runs (at most) once per session, not once per stack."""
    return tmp_path_factory.mktemp("class-archives")


@pytest.fixture
async def database_urls(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[str, str]]:
    """(catalog URL, scheduler URL) on storage of the test's own, already migrated."""
    if backend == "sqlite":
        catalog, scheduler = request.getfixturevalue("sqlite_templates")
        yield copy_sqlite(catalog, tmp_path), copy_sqlite(scheduler, tmp_path)
        return
    url = await create_postgres_database(template=request.getfixturevalue("postgres_template"))
    try:
        yield url, url
    finally:
        await drop_postgres_database(url)


@pytest.fixture
async def scheduler_db(database_urls: tuple[str, str]) -> AsyncIterator[Database]:
    """The test's own scheduler database (already migrated), for tests that drive the
    scheduler's stores directly (tests/helpers/scheduler_store.py); disposed at the end."""
    db = Database(database_urls[1])
    try:
        yield db
    finally:
        await db.dispose()


@dataclass
class Stack:
    """Both services running in this process, and a client channel to the catalog."""

    data_dir: Path
    catalog_url: str
    scheduler_url: str
    scheduler_settings: SchedulerSettings
    catalog_settings: CatalogSettings
    scheduler: SchedulerApp | None = None
    catalog: CatalogApp | None = None
    channel: grpc.aio.Channel | None = None
    glue: glue_pb2_grpc.GlueStub = field(init=False)
    credentials: Credentials | None = None
    """The access key ``glue`` calls with (needed once the catalog has access keys)."""

    async def start_scheduler(self) -> None:
        """Start the scheduler on its settings' address."""
        self.scheduler = SchedulerApp(self.scheduler_settings)
        await self.scheduler.__aenter__()

    async def stop_scheduler(self) -> None:
        """Stop the scheduler gracefully (job processes keep running)."""
        assert self.scheduler is not None
        await self.scheduler.__aexit__(None, None, None)
        self.scheduler = None

    async def start_catalog(self) -> None:
        """Start the catalog and (re)open the client channel."""
        self.catalog = CatalogApp(self.catalog_settings)
        await self.catalog.__aenter__()
        if self.channel is not None:
            await self.channel.close()
        self.channel = grpc.aio.insecure_channel(
            f"127.0.0.1:{self.catalog.port}",
            interceptors=None
            if self.credentials is None
            else metadata_interceptors(self.credentials.metadata),
        )
        self.glue = glue_pb2_grpc.GlueStub(self.channel)

    async def stop_catalog(self) -> None:
        """Stop the catalog gracefully."""
        assert self.catalog is not None
        await self.catalog.__aexit__(None, None, None)
        self.catalog = None

    async def close(self) -> None:
        """Stop whatever runs."""
        if self.channel is not None:
            await self.channel.close()
        if self.catalog is not None:
            await self.stop_catalog()
        if self.scheduler is not None:
            await self.stop_scheduler()

    async def create_job(self, name: str, script: Path, **fields: object) -> None:
        """CreateJob with a pythonshell command running ``script``."""
        request = glue_pb2.CreateJobRequest(
            name=name,
            role="arn:aws:iam::123456789012:role/test",
            command=glue_pb2.JobCommand(name="pythonshell", script_location=str(script)),
            **fields,  # type: ignore[arg-type]
        )
        await self.glue.CreateJob(request)

    async def start_run(self, job: str, **fields: object) -> str:
        """StartJobRun; returns the run id."""
        response = await self.glue.StartJobRun(
            glue_pb2.StartJobRunRequest(job_name=job, **fields)  # type: ignore[arg-type]
        )
        return response.job_run_id

    async def get_run(self, job: str, run_id: str) -> glue_pb2.JobRun:
        """GetJobRun."""
        response = await self.glue.GetJobRun(glue_pb2.GetJobRunRequest(job_name=job, run_id=run_id))
        return response.job_run

    async def wait_run(
        self, job: str, run_id: str, states: set[str] | None = None, timeout: float = 60.0
    ) -> glue_pb2.JobRun:
        """Poll GetJobRun until the run is in one of ``states`` (default: terminal). The
        default bound is generous: under ``make test``'s workers a run can take seconds to
        start on a loaded machine, and only a stuck run reaches it."""
        wanted = states or TERMINAL
        deadline = time.monotonic() + timeout
        seen: list[str] = []
        while True:
            try:
                run = await self.get_run(job, run_id)
            except grpc.aio.AioRpcError as exc:
                # A run a trigger started reaches the catalog through the event stream.
                if exc.code() != grpc.StatusCode.NOT_FOUND or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)
                continue
            if not seen or seen[-1] != run.job_run_state:
                seen.append(run.job_run_state)
            if run.job_run_state in wanted:
                return run
            if time.monotonic() > deadline:
                raise AssertionError(f"run {run_id} stuck; states seen: {seen}")
            await asyncio.sleep(0.05)


@pytest.fixture
async def stack(
    database_urls: tuple[str, str],
    tmp_path: Path,
    class_archives: Path,
    request: pytest.FixtureRequest,
) -> AsyncIterator[Stack]:
    """Scheduler and catalog running on fresh databases, ephemeral ports.

    ``@pytest.mark.scheduler_settings(max_processes=1)`` overrides scheduler settings;
    ``@pytest.mark.catalog_settings(http_listen="127.0.0.1:0")`` adds catalog settings.
    """
    catalog_url, scheduler_url = database_urls
    data_dir = tmp_path / "data"
    marker = request.node.get_closest_marker("scheduler_settings")
    overrides = dict(marker.kwargs) if marker else {}
    scheduler_settings = SchedulerSettings(
        **{
            "listen": "127.0.0.1:0",
            "data_dir": data_dir,
            "database_url": scheduler_url,
            "stop_grace_seconds": 1.0,
            "shutdown_grace_seconds": 0.5,
            "class_archives": class_archives,
            **overrides,
        }
    )
    s = Stack(
        data_dir=data_dir,
        catalog_url=catalog_url,
        scheduler_url=scheduler_url,
        scheduler_settings=scheduler_settings,
        catalog_settings=CatalogSettings(),  # replaced below once the scheduler port is known
    )
    await s.start_scheduler()
    assert s.scheduler is not None
    port = s.scheduler.port
    # Pin the scheduler's port so restarts come back on the same address.
    s.scheduler_settings = SchedulerSettings(
        **{**_fields(scheduler_settings), "listen": f"127.0.0.1:{port}"}
    )
    catalog_marker = request.node.get_closest_marker("catalog_settings")
    s.catalog_settings = CatalogSettings(
        **(dict(catalog_marker.kwargs) if catalog_marker else {}),
        listen="127.0.0.1:0",
        data_dir=data_dir,
        database_url=catalog_url,
        scheduler=f"127.0.0.1:{port}",
        reconcile_interval_seconds=1.0,
        scheduler_timeout_seconds=5.0,
        shutdown_grace_seconds=0.5,
    )
    await s.start_catalog()
    try:
        yield s
    finally:
        await _close_watched(s)


# A stack stops in a second or two; pytest's timeout (120 s) ends a test whose teardown hangs
# with the stack of the loop's thread only, which does not say which task is stuck.
STACK_CLOSE_REPORT_SECONDS = 30.0


async def _close_watched(s: Stack) -> None:
    """``s.close()``; if it is still running after STACK_CLOSE_REPORT_SECONDS, print where
    every task waits (to the test's captured stderr) and go on waiting."""
    closing = asyncio.ensure_future(s.close())
    done, _ = await asyncio.wait({closing}, timeout=STACK_CLOSE_REPORT_SECONDS)
    if not done:
        print(
            f"the stack is still stopping after {STACK_CLOSE_REPORT_SECONDS:g} s; its tasks:",
            file=sys.stderr,
        )
        for task in asyncio.all_tasks():
            if "_request_registered_call" in repr(task):
                continue  # a grpc server's idle wait for the next call, one per method
            # Not Task.print_stack: it fails on frames of Cython coroutines (grpc's).
            print(f"- {task!r}", file=sys.stderr)
            for frame in task.get_stack():
                code = frame.f_code
                print(f"    {code.co_filename}:{frame.f_lineno} {code.co_name}", file=sys.stderr)
    await closing


def _fields(settings: SchedulerSettings) -> dict[str, object]:
    return {name: getattr(settings, name) for name in settings.__dataclass_fields__}


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    """The suite's one SparkSession (tests/helpers/spark.py), stopped at the end."""
    session = start_session()
    yield session
    session.stop()
