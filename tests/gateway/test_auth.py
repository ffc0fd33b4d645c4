"""SigV4 verification by the gateway with an access-keys file, and its start-up rules."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import aiohttp
import boto3
import pytest
from botocore import UNSIGNED
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from catalog_service.app import CatalogApp
from catalog_service.gateway.server import MAX_BODY_BYTES
from catalog_service.settings import CatalogSettings
from catalog_service.tables import job_runs, jobs, triggers
from clients.credentials import Credentials as KeyCredentials
from tests.conftest import Stack
from tests.gateway.conftest import REGION, ROLE, Aws, glue_client
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
    keys.chmod(0o600)
    await stack.stop_catalog()
    stack.catalog_settings = dataclasses.replace(stack.catalog_settings, access_keys=keys)
    stack.credentials = KeyCredentials("AKIDALICE", "alice-secret")
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
    keys.chmod(0o600)
    settings = CatalogSettings(
        listen="127.0.0.1:0", data_dir=tmp_path, http_listen="0.0.0.0:0", access_keys=keys
    )
    with pytest.raises(ValueError, match=str(keys)):
        async with CatalogApp(settings):
            pass


# -- the front door: required signed headers, replays, nothing read before the headers pass ---

JSON_1_1 = "application/x-amz-json-1.1"


@dataclass(frozen=True)
class Signed:
    """One signed HTTP request, sendable as often as a test likes."""

    url: str
    headers: dict[str, str]
    body: bytes

    async def send(self) -> tuple[int, dict[str, Any]]:
        """POST it once; (status, JSON body)."""
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.url, data=self.body, headers=self.headers) as response,
        ):
            return response.status, json.loads(await response.read())


def signed(
    stack: Stack,
    operation: str,
    params: dict[str, Any],
    *,
    key_id: str = "AKIDALICE",
    secret: str = "alice-secret",
    unsigned: tuple[str, ...] = (),
) -> Signed:
    """A request signed by botocore's own SigV4Auth; ``unsigned`` headers are added after."""
    assert stack.catalog is not None
    url = f"http://127.0.0.1:{stack.catalog.http_port}/"
    body = json.dumps(params).encode()
    extra = {"X-Amz-Target": f"AWSGlue.{operation}", "Content-Type": JSON_1_1}
    request = AWSRequest(
        method="POST",
        url=url,
        data=body,
        headers={name: value for name, value in extra.items() if name.lower() not in unsigned},
    )
    SigV4Auth(Credentials(key_id, secret), "glue", REGION).add_auth(request)
    headers = {
        name: value
        for name, value in request.prepare().headers.items()
        if name.lower() != "content-length"  # aiohttp sets it
    }
    headers.update({name: value for name, value in extra.items() if name.lower() in unsigned})
    return Signed(url, headers, body)


async def alices_job(stack: Stack, tmp_path: Path) -> None:
    """Job ``j`` (a script that succeeds, up to 10 runs at once), created by alice."""
    script = write_script(tmp_path, "ok.py", SUCCEED)
    command = {"Name": "pythonshell", "ScriptLocation": str(script)}
    # Room for several runs at once, so only the replay rule can refuse a second one.
    params = {"Name": "j", "Role": ROLE, "Command": command}
    params["ExecutionProperty"] = {"MaxConcurrentRuns": 10}
    status, body = await signed(stack, "CreateJob", params).send()
    assert status == 200, body


@pytest.mark.parametrize(
    ("unsigned", "named"), [("x-amz-target", "'X-Amz-Target'"), ("content-type", "'Content-Type'")]
)
async def test_target_and_content_type_must_be_signed(
    keyed: Stack, tmp_path: Path, unsigned: str, named: str
) -> None:
    # botocore signs both for Glue (SignedHeaders=content-type;host;x-amz-date;x-amz-target).
    script = write_script(tmp_path, "ok.py", SUCCEED)
    params = {
        "Name": "j",
        "Role": ROLE,
        "Command": {"Name": "pythonshell", "ScriptLocation": str(script)},
    }
    request = signed(keyed, "CreateJob", params, unsigned=(unsigned,))
    assert unsigned not in request.headers["Authorization"]
    status, body = await request.send()
    assert (status, body["__type"]) == (400, "InvalidSignatureException")
    assert body["message"] == f"{named} must be a 'SignedHeader' in the AWS Authorization."
    assert await created_by(keyed) == {"jobs": {}, "triggers": {}, "runs": {}}
    # The same request with every header signed goes through.
    assert (await signed(keyed, "CreateJob", params).send())[0] == 200


async def job_run_count(stack: Stack) -> int:
    """How many runs job ``j`` has (GetJobRuns, signed afresh)."""
    status, body = await signed(stack, "GetJobRuns", {"JobName": "j"}).send()
    assert status == 200, body
    return len(body["JobRuns"])


async def test_a_replayed_state_change_is_refused(keyed: Stack, tmp_path: Path) -> None:
    await alices_job(keyed, tmp_path)
    start = signed(keyed, "StartJobRun", {"JobName": "j"})
    status, body = await start.send()
    assert status == 200, body
    run_id = body["JobRunId"]
    status, body = await start.send()
    # Retryable, so botocore's retry (which re-signs) gets through; a replay never does.
    assert (status, body["__type"]) == (400, "ThrottlingException")
    assert "already received" in body["message"]
    assert await job_run_count(keyed) == 1
    # A replayed read is harmless and allowed.
    get_run = signed(keyed, "GetJobRun", {"JobName": "j", "RunId": run_id})
    for _ in range(2):
        status, body = await get_run.send()
        assert (status, body["JobRun"]["Id"]) == (200, run_id)


async def test_a_failed_state_change_uses_its_signature_up(keyed: Stack) -> None:
    start = signed(keyed, "StartJobRun", {"JobName": "nope"})
    status, body = await start.send()
    assert (status, body["__type"]) == (400, "EntityNotFoundException")
    status, body = await start.send()
    assert (status, body["__type"]) == (400, "ThrottlingException")


async def test_a_forged_copy_does_not_use_the_signature_up(keyed: Stack, tmp_path: Path) -> None:
    await alices_job(keyed, tmp_path)
    start = signed(keyed, "StartJobRun", {"JobName": "j"})
    # Someone who captured the signature sends it over another body first: it does not verify,
    # so it must not be recorded, or it would lock the genuine request out.
    forged = dataclasses.replace(start, body=start.body.replace(b"}", b', "Timeout": 1}'))
    status, body = await forged.send()
    assert (status, body["__type"]) == (400, "InvalidSignatureException")
    status, body = await start.send()
    assert status == 200, body
    assert await job_run_count(keyed) == 1


async def test_boto3_retries_a_same_second_duplicate(keyed: Stack, tmp_path: Path) -> None:
    # botocore signs with second precision and does not sign amz-sdk-invocation-id, so two
    # identical calls within one second carry one signature. The signing clock is pinned for
    # both first attempts to make that certain; the refusal is retryable, and the retry,
    # signed anew at the real time, goes through.
    await alices_job(keyed, tmp_path)
    assert keyed.catalog is not None
    port = keyed.catalog.http_port
    pinned = datetime.now(UTC).replace(tzinfo=None) - timedelta(seconds=2)
    first_attempts = iter([pinned, pinned])

    def signing_clock() -> datetime:
        return next(first_attempts, None) or datetime.now(UTC).replace(tzinfo=None)

    def start_twice() -> list[dict[str, Any]]:
        client = boto3.session.Session().client(
            "glue",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name=REGION,
            aws_access_key_id="AKIDALICE",
            aws_secret_access_key="alice-secret",
            config=Config(retries={"max_attempts": 3, "mode": "standard"}),
        )
        try:
            with mock.patch("botocore.auth.get_current_datetime", signing_clock):
                return [client.start_job_run(JobName="j") for _ in range(2)]
        finally:
            client.close()

    first, second = await asyncio.to_thread(start_twice)
    assert first["ResponseMetadata"]["RetryAttempts"] == 0
    assert second["ResponseMetadata"]["RetryAttempts"] == 1
    assert first["JobRunId"] != second["JobRunId"]
    assert await job_run_count(keyed) == 2


async def raw_exchange(stack: Stack, head: str) -> tuple[int, dict[str, Any]]:
    """Send only a request head (no body) and read the answer within 5 s."""
    assert stack.catalog is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", stack.catalog.http_port)
    try:
        writer.write(head.replace("\n", "\r\n").encode() + b"\r\n")
        await writer.drain()
        # The old gateway read the body first: it would wait here for bytes never sent.
        async with asyncio.timeout(5):
            status_line = await reader.readline()
            headers: dict[str, str] = {}
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            payload = await reader.readexactly(int(headers["content-length"]))
        return int(status_line.split()[1]), json.loads(payload)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def head_of(stack: Stack, authorization: str, content_length: int) -> str:
    """A CreateJob request head declaring ``content_length`` bytes of body."""
    assert stack.catalog is not None
    now = datetime.now(UTC)
    return (
        "POST / HTTP/1.1\n"
        f"Host: 127.0.0.1:{stack.catalog.http_port}\n"
        "X-Amz-Target: AWSGlue.CreateJob\n"
        f"Content-Type: {JSON_1_1}\n"
        f"X-Amz-Date: {now:%Y%m%dT%H%M%SZ}\n"
        f"Authorization: {authorization.format(day=f'{now:%Y%m%d}')}\n"
        f"Content-Length: {content_length}\n"
    )


def well_formed(key_id: str) -> str:
    """An Authorization header passing every header check (``{day}`` is filled at send)."""
    return (
        f"AWS4-HMAC-SHA256 Credential={key_id}/{{day}}/{REGION}/glue/aws4_request, "
        f"SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature={'0' * 64}"
    )


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        (well_formed("AKIDNOBODY"), "UnrecognizedClientException"),
        ("AWS4-HMAC-SHA256 Credential=AKIDALICE", "IncompleteSignatureException"),
        ("Basic YWxpY2U6c2VjcmV0", "IncompleteSignatureException"),
    ],
    ids=["unknown-key", "malformed", "other-scheme"],
)
async def test_bad_headers_are_refused_before_the_body(
    keyed: Stack, authorization: str, code: str
) -> None:
    head = head_of(keyed, authorization, MAX_BODY_BYTES)
    status, body = await raw_exchange(keyed, head)
    assert (status, body["__type"]) == (400, code)


async def test_an_oversized_declared_body_is_refused_before_it_is_read(keyed: Stack) -> None:
    # Alice's key id, a well-formed header: only the signature (which needs the body) is wrong.
    authorization = well_formed("AKIDALICE")
    status, body = await raw_exchange(keyed, head_of(keyed, authorization, MAX_BODY_BYTES + 1))
    assert (status, body["__type"]) == (413, "InvalidInputException")
    assert str(MAX_BODY_BYTES) in body["message"]
