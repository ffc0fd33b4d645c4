"""Both services sharing an internal secret, and direct calls to the scheduler's API."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import grpc

from catalog_service.settings import CatalogSettings
from glue.scheduler.v1 import scheduler_pb2_grpc
from scheduler_service.settings import SchedulerSettings
from servicekit.internal_auth import INTERNAL_SECRET_HEADER
from tests.conftest import Stack


def write_secret(path: Path, mode: int = 0o600, text: str | None = None) -> Path:
    """A secret file with ``mode``; a fresh random secret unless ``text``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(secrets.token_hex(32) + "\n" if text is None else text)
    os.chmod(path, mode)
    return path


async def start_secured_stack(
    database_urls: tuple[str, str], tmp_path: Path, **scheduler: object
) -> tuple[Stack, str]:
    """Scheduler and catalog sharing a secret file; (the stack, the secret)."""
    catalog_url, scheduler_url = database_urls
    data_dir = tmp_path / "data"
    secret_path = write_secret(tmp_path / "internal-secret")
    settings = SchedulerSettings(
        **{
            "listen": "127.0.0.1:0",
            "data_dir": data_dir,
            "database_url": scheduler_url,
            "stop_grace_seconds": 1.0,
            "shutdown_grace_seconds": 0.5,
            "internal_secret": secret_path,
            **scheduler,
        }  # type: ignore[arg-type]
    )
    stack = Stack(
        data_dir=data_dir,
        catalog_url=catalog_url,
        scheduler_url=scheduler_url,
        scheduler_settings=settings,
        catalog_settings=CatalogSettings(),
    )
    await stack.start_scheduler()
    assert stack.scheduler is not None
    port = stack.scheduler.port
    fields = {name: getattr(settings, name) for name in settings.__dataclass_fields__}
    stack.scheduler_settings = SchedulerSettings(**{**fields, "listen": f"127.0.0.1:{port}"})
    stack.catalog_settings = CatalogSettings(
        listen="127.0.0.1:0",
        data_dir=data_dir,
        database_url=catalog_url,
        scheduler=f"127.0.0.1:{port}",
        reconcile_interval_seconds=1.0,
        scheduler_timeout_seconds=5.0,
        shutdown_grace_seconds=0.5,
        internal_secret=secret_path,
    )
    await stack.start_catalog()
    return stack, secret_path.read_text().strip()


def secret_call(secret: str) -> tuple[tuple[str, str], ...]:
    """Metadata that carries ``secret``."""
    return ((INTERNAL_SECRET_HEADER, secret),)


@asynccontextmanager
async def scheduler_stub(stack: Stack) -> AsyncIterator[scheduler_pb2_grpc.SchedulerStub]:
    """A stub on the stack's scheduler, as any caller on the network would have."""
    assert stack.scheduler is not None
    async with grpc.aio.insecure_channel(
        f"127.0.0.1:{stack.scheduler.port}",
        options=[("grpc.max_send_message_length", 64 * 1024 * 1024)],
    ) as channel:
        yield scheduler_pb2_grpc.SchedulerStub(channel)
