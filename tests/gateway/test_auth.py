"""SigV4 verification by the gateway with an access-keys file, and its start-up rules."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from catalog_service.app import CatalogApp
from catalog_service.settings import CatalogSettings
from catalog_service.tables import job_runs, jobs, triggers
from clients.credentials import Credentials
from tests.conftest import Stack
from tests.gateway.conftest import ROLE, Aws, glue_client
from tests.helpers.scripts import SUCCEED, write_script

pytestmark = pytest.mark.catalog_settings(http_listen="127.0.0.1:0")

ALICE = "arn:aws:iam::123456789012:user/alice"


@pytest.fixture
async def keyed(stack: Stack, tmp_path: Path) -> Stack:
    """The stack's catalog restarted with an access-keys file holding alice's key."""
    keys = tmp_path / "keys.json"
    keys.write_text(
        json.dumps(
            {
                "keys": [
                    {
                        "access_key_id": "AKIDALICE",
                        "secret_access_key": "alice-secret",
                        "identity": ALICE,
                    }
                ]
            }
        )
    )
    await stack.stop_catalog()
    stack.catalog_settings = dataclasses.replace(stack.catalog_settings, access_keys=keys)
    stack.credentials = Credentials("AKIDALICE", "alice-secret")
    await stack.start_catalog()
    return stack


async def client_for(stack: Stack, key_id: str, secret: str) -> Aws:
    assert stack.catalog is not None
    client = await asyncio.to_thread(glue_client, stack.catalog.http_port, key_id, secret)
    return Aws(stack, client)


def unsigned_client(port: int) -> Any:
    """A boto3 Glue client that sends no signature at all."""
    return boto3.session.Session().client(
        "glue",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="eu-west-1",
        config=Config(signature_version=UNSIGNED, retries={"total_max_attempts": 1}),
    )


async def created_by(stack: Stack) -> dict[str, Any]:
    """Who created what, read from the catalog's tables."""
    engine = create_async_engine(stack.catalog_url)
    try:
        async with engine.connect() as conn:
            return {
                "jobs": dict((await conn.execute(select(jobs.c.name, jobs.c.created_by))).all()),
                "triggers": dict(
                    (await conn.execute(select(triggers.c.name, triggers.c.created_by))).all()
                ),
                "runs": dict(
                    (await conn.execute(select(job_runs.c.run_id, job_runs.c.started_by))).all()
                ),
            }
    finally:
        await engine.dispose()


async def test_verified_caller_is_recorded(keyed: Stack, tmp_path: Path) -> None:
    script = write_script(tmp_path, "ok.py", SUCCEED)
    alice = await client_for(keyed, "AKIDALICE", "alice-secret")
    command = {"Name": "pythonshell", "ScriptLocation": str(script)}
    await alice("create_job", Name="j", Role=ROLE, Command=command)
    await alice("create_trigger", Name="t", Type="ON_DEMAND", Actions=[{"JobName": "j"}])
    run_id = (await alice("start_job_run", JobName="j"))["JobRunId"]
    # gRPC callers authenticate with the same key, so they are recorded alike.
    await keyed.create_job("by-grpc", script)
    assert await created_by(keyed) == {
        "jobs": {"j": ALICE, "by-grpc": ALICE},
        "triggers": {"t": ALICE},
        "runs": {run_id: ALICE},
    }
    alice.client.close()


async def test_bad_credentials_change_nothing(keyed: Stack, tmp_path: Path) -> None:
    script = write_script(tmp_path, "ok.py", SUCCEED)
    command = {"Name": "pythonshell", "ScriptLocation": str(script)}
    stranger = await client_for(keyed, "AKIDNOBODY", "whatever")
    code, message, status = await stranger.error(
        "create_job", Name="j1", Role=ROLE, Command=command
    )
    assert (code, status) == ("UnrecognizedClientException", 400)
    assert "security token" in message
    forger = await client_for(keyed, "AKIDALICE", "not-alices-secret")
    code, message, status = await forger.error("create_job", Name="j2", Role=ROLE, Command=command)
    assert (code, status) == ("InvalidSignatureException", 400)
    assert "signature" in message
    assert keyed.catalog is not None
    anonymous = Aws(keyed, await asyncio.to_thread(unsigned_client, keyed.catalog.http_port))
    code, _, status = await anonymous.error("create_job", Name="j3", Role=ROLE, Command=command)
    assert (code, status) == ("MissingAuthenticationTokenException", 403)
    assert await created_by(keyed) == {"jobs": {}, "triggers": {}, "runs": {}}
    for aws in (stranger, forger, anonymous):
        aws.client.close()


async def test_without_keys_any_signature_is_accepted(aws: Aws, tmp_path: Path) -> None:
    script = write_script(tmp_path, "ok.py", SUCCEED)
    command = {"Name": "pythonshell", "ScriptLocation": str(script)}
    other = await client_for(aws.stack, "AKIDANYONE", "anything")
    await other("create_job", Name="j", Role=ROLE, Command=command)
    assert (await aws("list_jobs"))["JobNames"] == ["j"]
    assert (await created_by(aws.stack))["jobs"] == {"j": None}
    other.client.close()


async def test_open_address_without_keys_refuses_to_start(tmp_path: Path) -> None:
    settings = CatalogSettings(listen="127.0.0.1:0", data_dir=tmp_path, http_listen="0.0.0.0:0")
    with pytest.raises(ValueError, match="set --access-keys"):
        async with CatalogApp(settings):
            pass


async def test_a_bad_keys_file_refuses_to_start(tmp_path: Path) -> None:
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({"keys": [{"access_key_id": "AKID"}]}))
    settings = CatalogSettings(
        listen="127.0.0.1:0", data_dir=tmp_path, http_listen="0.0.0.0:0", access_keys=keys
    )
    with pytest.raises(ValueError, match=str(keys)):
        async with CatalogApp(settings):
            pass
