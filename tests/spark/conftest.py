"""glueetl runs through the services: SQLite for the services, a boto3 client on the gateway.

Every glueetl run starts a JVM (spark-submit, local mode, loopback only), so these tests are
slow and run the services on SQLite only: the run path they exercise is the one every other run
takes, and the suite runs that on both databases.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.conftest import Stack
from tests.gateway.conftest import Aws, glue_client


@pytest.fixture
def backend() -> str:
    """SQLite only (see the module docstring)."""
    return "sqlite"


@pytest.fixture
async def aws(stack: Stack) -> AsyncIterator[Aws]:
    """A boto3 Glue client on the stack's gateway."""
    assert stack.catalog is not None and stack.catalog.http_port
    client = await asyncio.to_thread(glue_client, stack.catalog.http_port)
    try:
        yield Aws(stack, client)
    finally:
        client.close()
