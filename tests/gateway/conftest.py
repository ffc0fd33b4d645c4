"""The gateway fixtures: the stack with its HTTP gateway on, and a real boto3 Glue client.

boto3 is synchronous and the services run on the test's event loop, so every call goes
through ``asyncio.to_thread`` (``Aws.__call__``); a direct call would block the loop that
must answer it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.conftest import Stack

REGION = "eu-west-1"
ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/glue"


def glue_client(port: int, key_id: str = "AKIDTEST", secret: str = "secret") -> Any:
    """A boto3 Glue client for the gateway on ``port`` (no retries: tests see first answers)."""
    return aws_client("glue", port, key_id, secret)


def aws_client(service: str, port: int, key_id: str = "AKIDTEST", secret: str = "secret") -> Any:
    """A boto3 client of ``service`` (glue, logs) for the gateway on ``port``, no retries."""
    return boto3.session.Session().client(
        service,
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name=REGION,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )


@dataclass
class Aws:
    """The stack and a boto3 client for its gateway."""

    stack: Stack
    client: Any

    async def __call__(self, operation: str, **params: Any) -> Any:
        """Call a boto3 client method (snake_case operation name) off the event loop."""
        return await asyncio.to_thread(getattr(self.client, operation), **params)

    async def error(self, operation: str, **params: Any) -> tuple[str, str, int]:
        """Call, expecting a ClientError: (code, message, HTTP status)."""
        try:
            await self(operation, **params)
        except self.client.exceptions.ClientError as exc:
            response = exc.response
            return (
                response["Error"]["Code"],
                response["Error"]["Message"],
                response["ResponseMetadata"]["HTTPStatusCode"],
            )
        raise AssertionError(f"{operation} succeeded; an error was expected")

    def arn(self, kind: str, name: str) -> str:
        """The Glue ARN of a job or trigger."""
        return f"arn:aws:glue:{REGION}:{ACCOUNT}:{kind}/{name}"


@pytest.fixture
async def aws(stack: Stack) -> AsyncIterator[Aws]:
    """A boto3 Glue client on the running stack's gateway (needs the catalog_settings mark)."""
    assert stack.catalog is not None
    assert stack.catalog.http_port, "mark the test with catalog_settings(http_listen=...)"
    client = await asyncio.to_thread(glue_client, stack.catalog.http_port)
    try:
        yield Aws(stack, client)
    finally:
        client.close()
