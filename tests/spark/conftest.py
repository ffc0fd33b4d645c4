"""glueetl runs through the services: SQLite for the services, a boto3 client on the gateway.

Every glueetl run starts a JVM (spark-submit, local mode, loopback only), so these tests are
slow and run the services on SQLite only: the run path they exercise is the one every other run
takes, and the suite runs that on both databases.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from scheduler_service.commands import CommandSettings
from scheduler_service.warm_up import write_archive
from tests.conftest import Stack, run_apart
from tests.gateway.conftest import Aws, glue_client


@pytest.fixture
def backend() -> str:
    """SQLite only (see the module docstring)."""
    return "sqlite"


@pytest.fixture(scope="session")
def class_archives(class_archives: Path) -> Path:
    """The session's class-data archive directory, its archive written before the first test
    here by the scheduler's warm-up at normal priority (a niced one would wait for every other
    test worker): every glueetl run of these tests maps it, as a scheduler's runs do once it is
    written, and no stack starts a warm-up of its own that its stop would kill unfinished."""

    commands = CommandSettings(python=sys.executable, class_archives=class_archives)
    written = run_apart(write_archive(commands, niceness=0))
    assert written, "the class-data archive warm-up wrote no archive"
    return class_archives


@pytest.fixture
async def aws(stack: Stack) -> AsyncIterator[Aws]:
    """A boto3 Glue client on the stack's gateway."""
    assert stack.catalog is not None and stack.catalog.http_port
    client = await asyncio.to_thread(glue_client, stack.catalog.http_port)
    try:
        yield Aws(stack, client)
    finally:
        client.close()
