"""The gateway over HTTPS with a test CA, and its refusal to open an address without keys."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import boto3
import pytest
import trustme
from botocore.config import Config
from botocore.exceptions import SSLError

from catalog_service.gateway.access_keys import AccessKey
from catalog_service.gateway.server import HttpGateway
from catalog_service.job_bookmarks import JobBookmarkCatalog
from catalog_service.job_runs import JobRunCatalog
from catalog_service.jobs import JobCatalog
from catalog_service.scheduler_link import SchedulerLink
from catalog_service.servicer import GlueOperations
from catalog_service.tags import TagCatalog
from catalog_service.triggers import TriggerCatalog
from tests.conftest import Stack
from tests.gateway.conftest import REGION, ROLE
from tests.helpers.scripts import SUCCEED, write_script

ALICE = AccessKey(key_id="AKIDALICE", secret="alice-secret", identity="user/alice")


@asynccontextmanager
async def operations_of(stack: Stack) -> AsyncIterator[GlueOperations]:
    """The catalog's operations on the running stack's database and scheduler.

    Built here, as CatalogApp builds them, because the app builds its gateway from settings
    and has no TLS flags yet.
    """
    app = stack.catalog
    assert app is not None
    link = SchedulerLink(app.settings.scheduler_target, timeout=5.0)
    jobs = JobCatalog(app.db, link)
    try:
        yield GlueOperations(
            jobs,
            JobRunCatalog(app.db, link, jobs),
            JobBookmarkCatalog(link, jobs),
            TriggerCatalog(app.db, link, jobs),
            TagCatalog(app.db),
        )
    finally:
        await jobs.close()
        await link.close()


def https_client(port: int, verify: str | bool) -> Any:
    """A boto3 Glue client for https://127.0.0.1:port signing with alice's key."""
    return boto3.session.Session().client(
        "glue",
        endpoint_url=f"https://127.0.0.1:{port}",
        region_name=REGION,
        aws_access_key_id=ALICE.key_id,
        aws_secret_access_key=ALICE.secret,
        verify=verify,
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )


async def test_boto3_over_https_with_the_test_ca(stack: Stack, tmp_path: Path) -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    script = write_script(tmp_path, "ok.py", SUCCEED)
    command = {"Name": "pythonshell", "ScriptLocation": str(script)}
    async with operations_of(stack) as operations:
        gateway = HttpGateway(
            operations,
            "127.0.0.1:0",
            access_keys={ALICE.key_id: ALICE},
            ssl_context=server_context,
        )
        await gateway.start()
        try:

            def talk() -> tuple[list[str], str]:
                client = https_client(gateway.port, str(ca_file))
                try:
                    client.create_job(Name="tls", Role=ROLE, Command=command)
                    run_id = client.start_job_run(JobName="tls")["JobRunId"]
                    return client.list_jobs()["JobNames"], run_id
                finally:
                    client.close()

            names, run_id = await asyncio.to_thread(talk)
            assert names == ["tls"]
            assert run_id

            def untrusted() -> None:
                client = https_client(gateway.port, True)  # the system CAs, not ours
                try:
                    client.list_jobs()
                finally:
                    client.close()

            with pytest.raises(SSLError):
                await asyncio.to_thread(untrusted)
        finally:
            await gateway.stop()


async def test_open_address_without_keys_needs_insecure(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    async with operations_of(stack) as operations:
        with pytest.raises(ValueError, match="set --access-keys") as refused:
            HttpGateway(operations, "0.0.0.0:0", access_keys=None)
        assert "--insecure" in str(refused.value)
        # Keys make an open address acceptable, and so does --insecure, loudly.
        HttpGateway(operations, "0.0.0.0:0", access_keys={ALICE.key_id: ALICE})
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
        with caplog.at_level(logging.WARNING, logger="catalog_service.gateway.server"):
            HttpGateway(operations, "0.0.0.0:0", access_keys=None, insecure=True)
        (warning,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert "INSECURE" in warning.getMessage()
        assert "0.0.0.0:0" in warning.getMessage()
