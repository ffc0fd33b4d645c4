"""A pytest plugin for ``make test-moto``: moto's own Glue tests, run against this service.

moto's tests in server mode (``TEST_SERVER_MODE``) send every boto3 call to one endpoint. This
plugin points that endpoint at our HTTP gateway and, before each test, starts a fresh catalog
and scheduler (SQLite in the test's temporary directory) on it, stopping them after: each test
sees an empty service, as each sees a reset moto. The services run on their own event loop in a
thread, since moto's tests are synchronous. moto's reset call is switched off: there is nothing
to reset in a service started for one test.

Loaded with ``-p moto_glue_server`` from moto's unpacked sources (where ``tests`` is moto's
package, hence no import from ours).
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from catalog_service.app import CatalogApp
from catalog_service.settings import CatalogSettings
from scheduler_service.app import SchedulerApp
from scheduler_service.settings import SchedulerSettings


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# moto reads these when its modules are imported, which is after this plugin loads.
PORT = _free_port()
os.environ.update(
    TEST_SERVER_MODE="true",
    TEST_SERVER_MODE_ENDPOINT=f"http://127.0.0.1:{PORT}",
    MOTO_CALL_RESET_API="false",
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_DEFAULT_REGION="us-east-1",
)


class Services:
    """The catalog and scheduler on a loop of their own, the gateway on ``PORT``."""

    def __init__(self, data_dir: Path) -> None:
        self._data_dir = data_dir
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._scheduler: SchedulerApp | None = None
        self._catalog: CatalogApp | None = None

    def __enter__(self) -> Services:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=60)
        return self

    def __exit__(self, *_: object) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=60)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()

    async def _start(self) -> None:
        url = f"sqlite+aiosqlite:///{self._data_dir}"
        self._scheduler = SchedulerApp(
            SchedulerSettings(
                listen="127.0.0.1:0",
                data_dir=self._data_dir,
                database_url=f"{url}/scheduler.db",
                stop_grace_seconds=1.0,
                shutdown_grace_seconds=0.5,
            )
        )
        await self._scheduler.__aenter__()
        self._catalog = CatalogApp(
            CatalogSettings(
                listen="127.0.0.1:0",
                http_listen=f"127.0.0.1:{PORT}",
                data_dir=self._data_dir,
                database_url=f"{url}/catalog.db",
                scheduler=f"127.0.0.1:{self._scheduler.port}",
                shutdown_grace_seconds=0.5,
            )
        )
        await self._catalog.__aenter__()

    async def _stop(self) -> None:
        if self._catalog is not None:
            await self._catalog.__aexit__(None, None, None)
        if self._scheduler is not None:
            await self._scheduler.__aexit__(None, None, None)


@pytest.fixture(autouse=True)
def fresh_glue_service(tmp_path: Path) -> Iterator[None]:
    """A new, empty service behind moto's endpoint for each test."""
    data_dir = tmp_path / "glue-service"
    data_dir.mkdir()
    with Services(data_dir):
        yield
