"""Who may call the catalog over gRPC, and what each access key's IAM policy lets it do - on
the gRPC door and on the HTTP gateway alike."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any

import boto3
import grpc
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from catalog_service.app import CatalogApp
from catalog_service.cli import parse_settings
from catalog_service.settings import CatalogSettings
from catalog_service.tables import job_runs, jobs
from clients.credentials import Credentials, channel_credentials
from clients.glue_client import GlueClient, resource_arn
from glue.v1 import glue_pb2
from servicekit.errors import (
    AccessDeniedException,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
    error_reason,
)
from tests.conftest import Stack
from tests.gateway.conftest import ROLE, Aws, glue_client
from tests.helpers.access_keys import (
    ADMIN,
    OPERATOR,
    OPERATOR_IDENTITY,
    TEAM_A,
    TEAM_A_IDENTITY,
    restart_with_keys,
    write_keys,
)
from tests.helpers.scripts import SUCCEED, write_script

pytestmark = pytest.mark.catalog_settings(http_listen="127.0.0.1:0")


@pytest.fixture
async def keyed(stack: Stack, tmp_path: Path) -> Stack:
    """The stack's catalog restarted with three keys; ``stack.glue`` calls as the admin."""
    return await restart_with_keys(stack, tmp_path / "keys.json")


@pytest.fixture
async def jobs_of_two_teams(keyed: Stack, tmp_path: Path) -> Stack:
    script = write_script(tmp_path, "ok.py", SUCCEED)
    for name in ("team-a-load", "team-a-report", "team-b-load"):
        await keyed.create_job(name, script)
    return keyed


def as_(stack: Stack, credentials: Credentials | None) -> Any:
    """A GlueClient for ``credentials`` as an async context manager."""
    return _Client(stack, credentials)


@dataclasses.dataclass
class _Client:
    stack: Stack
    credentials: Credentials | None

    async def __aenter__(self) -> GlueClient:
        assert self.stack.catalog is not None
        self._client = GlueClient(
            f"127.0.0.1:{self.stack.catalog.port}",
            credentials=self.credentials,
            retry_delays=(),
        )
        return await self._client.__aenter__()

    async def __aexit__(self, *exc: object) -> None:
        await self._client.close()


async def count(stack: Stack, table: Any) -> int:
    engine = create_async_engine(stack.catalog_url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())
    finally:
        await engine.dispose()


# -- authentication -----------------------------------------------------------------------------


async def test_grpc_calls_without_credentials_are_refused(keyed: Stack, tmp_path: Path) -> None:
    script = write_script(tmp_path, "ok.py", SUCCEED)
    async with as_(keyed, None) as anonymous:
        with pytest.raises(MissingAuthenticationTokenException, match="Missing Authentication"):
            await anonymous.create_job(
                Name="sneaky",
                Role=ROLE,
                Command={"Name": "pythonshell", "ScriptLocation": str(script)},
            )
        with pytest.raises(MissingAuthenticationTokenException):
            await anonymous.list_jobs()
    assert await count(keyed, jobs) == 0


@pytest.mark.parametrize(
    "credentials",
    [
        Credentials(ADMIN.access_key_id, "wrong-secret"),
        Credentials("AKIDUNKNOWN", ADMIN.secret_access_key),
        Credentials(ADMIN.access_key_id, ADMIN.secret_access_key + "x"),
    ],
    ids=["wrong-secret", "unknown-key", "longer-secret"],
)
async def test_wrong_credentials_are_refused(
    keyed: Stack, tmp_path: Path, credentials: Credentials
) -> None:
    script = write_script(tmp_path, "ok.py", SUCCEED)
    async with as_(keyed, credentials) as stranger:
        with pytest.raises(UnrecognizedClientException, match="security token"):
            await stranger.create_job(
                Name="sneaky",
                Role=ROLE,
                Command={"Name": "pythonshell", "ScriptLocation": str(script)},
            )
    assert await count(keyed, jobs) == 0


@pytest.mark.parametrize(
    "header", ["Basic QUtJRDpzZWNyZXQ=", "Bearer AKIDADMIN", "Bearer", "AKIDADMIN:admin-secret"]
)
async def test_malformed_authorization_is_unauthenticated(keyed: Stack, header: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await keyed.glue.ListJobs(glue_pb2.ListJobsRequest(), metadata=(("authorization", header),))
    # The channel's own (valid) key is sent too: two authorization headers are refused as well.
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_reason(raised.value) == "UnrecognizedClientException"


async def test_health_and_reflection_stay_open(keyed: Stack) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    assert keyed.catalog is not None
    async with grpc.aio.insecure_channel(f"127.0.0.1:{keyed.catalog.port}") as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    assert reply.status in (
        health_pb2.HealthCheckResponse.SERVING,
        health_pb2.HealthCheckResponse.NOT_SERVING,
    )


# -- authorization over gRPC --------------------------------------------------------------------


async def test_a_team_cannot_run_another_teams_job(jobs_of_two_teams: Stack) -> None:
    stack = jobs_of_two_teams
    async with as_(stack, TEAM_A) as team_a:
        run_id = (await team_a.start_job_run("team-a-load")).job_run_id
        with pytest.raises(AccessDeniedException) as refused:
            await team_a.start_job_run("team-b-load")
        assert str(refused.value) == (
            f"User: {TEAM_A_IDENTITY} is not authorized to perform: glue:StartJobRun on "
            "resource: arn:aws:glue:us-east-1:000000000000:job/team-b-load because no "
            "identity-based policy allows the glue:StartJobRun action"
        )
        for forbidden in (
            team_a.get_job("team-b-load"),
            team_a.delete_job("team-b-load"),
            team_a.get_job_runs("team-b-load"),
            team_a.tag_resource(resource_arn("job", "team-b-load"), {"owner": "a"}),
        ):
            with pytest.raises(AccessDeniedException):
                await forbidden
    assert await count(stack, job_runs) == 1
    assert (await stack.glue.GetJob(glue_pb2.GetJobRequest(job_name="team-b-load"))).job.name
    tags = await stack.glue.GetTags(
        glue_pb2.GetTagsRequest(resource_arn=resource_arn("job", "team-b-load"))
    )
    assert dict(tags.tags) == {}
    await stack.wait_run("team-a-load", run_id)


async def test_lists_show_only_what_the_caller_may_see(jobs_of_two_teams: Stack) -> None:
    stack = jobs_of_two_teams
    async with as_(stack, TEAM_A) as team_a:
        assert sorted((await team_a.list_jobs()).job_names) == ["team-a-load", "team-a-report"]
        assert sorted(j.name for j in (await team_a.get_jobs()).jobs) == [
            "team-a-load",
            "team-a-report",
        ]
        batch = await team_a.batch_get_jobs(["team-a-load", "team-b-load", "absent"])
        assert [j.name for j in batch.jobs] == ["team-a-load"]
        assert sorted(batch.jobs_not_found) == ["absent", "team-b-load"]
    async with as_(stack, ADMIN) as admin:
        assert len((await admin.list_jobs()).job_names) == 3


async def test_recent_runs_show_only_the_callers_jobs(jobs_of_two_teams: Stack) -> None:
    stack = jobs_of_two_teams
    for name in ("team-a-load", "team-b-load"):
        await stack.wait_run(name, await stack.start_run(name))
    async with as_(stack, TEAM_A) as team_a:
        seen = await team_a._stub.GetRecentJobRuns(glue_pb2.GetRecentJobRunsRequest())
        assert [run.job_name for run in seen.job_runs] == ["team-a-load"]
    async with as_(stack, ADMIN) as admin:
        seen = await admin._stub.GetRecentJobRuns(glue_pb2.GetRecentJobRunsRequest())
        assert [run.job_name for run in seen.job_runs] == ["team-b-load", "team-a-load"]


async def test_a_trigger_cannot_start_another_teams_job(jobs_of_two_teams: Stack) -> None:
    stack = jobs_of_two_teams
    async with as_(stack, TEAM_A) as team_a:
        with pytest.raises(AccessDeniedException, match=r"glue:StartJobRun on resource: .*team-b"):
            await team_a.create_trigger(
                Name="team-a-chain", Type="ON_DEMAND", Actions=[{"JobName": "team-b-load"}]
            )
        await team_a.create_trigger(
            Name="team-a-chain", Type="ON_DEMAND", Actions=[{"JobName": "team-a-load"}]
        )
        with pytest.raises(AccessDeniedException):
            await team_a.update_trigger("team-a-chain", {"Actions": [{"JobName": "team-b-load"}]})
        with pytest.raises(AccessDeniedException, match="trigger/other"):
            await team_a.create_trigger(
                Name="other", Type="ON_DEMAND", Actions=[{"JobName": "team-a-load"}]
            )
        trigger = (await team_a.get_trigger("team-a-chain")).trigger
        assert [a.job_name for a in trigger.actions] == ["team-a-load"]
        assert (await team_a.list_triggers()).trigger_names == ["team-a-chain"]


async def test_a_read_only_operator(jobs_of_two_teams: Stack, tmp_path: Path) -> None:
    stack = jobs_of_two_teams
    run_id = await stack.start_run("team-b-load")
    await stack.wait_run("team-b-load", run_id)
    async with as_(stack, OPERATOR) as operator:
        assert len((await operator.list_jobs()).job_names) == 3
        run = (await operator.get_job_run("team-b-load", run_id)).job_run
        assert run.job_run_state == "SUCCEEDED"
        with pytest.raises(AccessDeniedException, match="explicit deny"):
            async for _ in operator.get_job_run_log("team-b-load", run_id):
                pass
        with pytest.raises(AccessDeniedException):
            await operator.start_job_run("team-b-load")
        with pytest.raises(AccessDeniedException):
            await operator.batch_stop_job_run("team-b-load", [run_id])
        with pytest.raises(AccessDeniedException):
            await operator.create_job(
                Name="ops-job", Role=ROLE, Command={"Name": "pythonshell", "ScriptLocation": "/x"}
            )
    assert await count(stack, job_runs) == 1
    assert await count(stack, jobs) == 3


# -- the same policies on the HTTP gateway ------------------------------------------------------


async def test_the_gateway_applies_the_same_policy(jobs_of_two_teams: Stack) -> None:
    stack = jobs_of_two_teams
    assert stack.catalog is not None
    boto = await asyncio.to_thread(
        glue_client, stack.catalog.http_port, TEAM_A.access_key_id, TEAM_A.secret_access_key
    )
    team_a = Aws(stack, boto)
    code, message, status = await team_a.error("start_job_run", JobName="team-b-load")
    assert (code, status) == ("AccessDeniedException", 400)
    assert message.startswith(f"User: {TEAM_A_IDENTITY} is not authorized to perform: ")
    assert sorted((await team_a("list_jobs"))["JobNames"]) == ["team-a-load", "team-a-report"]
    assert await count(stack, job_runs) == 0


# -- exposure and TLS ---------------------------------------------------------------------------


def test_open_grpc_address_needs_keys_and_tls(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = str(write_keys(tmp_path / "keys.json"))
    with pytest.raises(SystemExit):
        parse_settings(["--listen", "0.0.0.0:50051"])
    assert "--access-keys" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_settings(["--listen", "0.0.0.0:50051", "--access-keys", keys])
    assert "--tls-cert" in capsys.readouterr().err
    settings, _ = parse_settings(["--listen", "0.0.0.0:50051", "--insecure"])
    assert settings.insecure
    with pytest.raises(SystemExit):
        parse_settings(["--tls-cert", keys])
    assert "go together" in capsys.readouterr().err


async def test_catalog_app_refuses_an_open_address_without_keys(tmp_path: Path) -> None:
    settings = CatalogSettings(listen="0.0.0.0:0", data_dir=tmp_path)
    with pytest.raises(ValueError, match="--access-keys"):
        async with CatalogApp(settings):
            pass


async def test_grpc_over_tls(keyed: Stack, tmp_path: Path) -> None:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_cert = ca.issue_cert("localhost", "127.0.0.1")
    cert, key, ca_file = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    server_cert.private_key_and_cert_chain_pem.write_to_path(str(cert))
    server_cert.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_file))
    await keyed.stop_catalog()
    keyed.catalog_settings = dataclasses.replace(keyed.catalog_settings, tls_cert=cert, tls_key=key)
    keyed.catalog = CatalogApp(keyed.catalog_settings)
    await keyed.catalog.__aenter__()
    port = keyed.catalog.port
    async with GlueClient(
        f"localhost:{port}", credentials=ADMIN, tls=channel_credentials(ca_file), retry_delays=()
    ) as glue:
        assert list((await glue.list_jobs()).job_names) == []
    # The same certificate serves the HTTP gateway.
    boto = await asyncio.to_thread(
        lambda: boto3.session.Session().client(
            "glue",
            endpoint_url=f"https://localhost:{keyed.catalog.http_port}",
            region_name="us-east-1",
            aws_access_key_id=ADMIN.access_key_id,
            aws_secret_access_key=ADMIN.secret_access_key,
            verify=str(ca_file),
        )
    )
    assert (await Aws(keyed, boto)("list_jobs"))["JobNames"] == []
    async with GlueClient(
        f"127.0.0.1:{port}", credentials=ADMIN, retry_delays=(), timeout=2
    ) as plain:
        with pytest.raises(Exception, match=r"unreachable|timeout|no answer"):
            await plain.list_jobs()


# -- gluectl and grpcurl with credentials -------------------------------------------------------


async def test_gluectl_finds_keys_as_the_aws_cli_does(
    jobs_of_two_teams: Stack,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from clients.gluectl.__main__ import main

    stack = jobs_of_two_teams
    assert stack.catalog is not None
    endpoint = ["--endpoint", f"127.0.0.1:{stack.catalog.port}", "-o", "json"]
    credentials_file = tmp_path / "credentials"
    credentials_file.write_text(
        f"[default]\naws_access_key_id = {ADMIN.access_key_id}\n"
        f"aws_secret_access_key = {ADMIN.secret_access_key}\n"
        f"[team-a]\naws_access_key_id = {TEAM_A.access_key_id}\n"
        f"aws_secret_access_key = {TEAM_A.secret_access_key}\n"
    )
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials_file))

    async def gluectl(*argv: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = await asyncio.to_thread(main, [*endpoint, *argv])
        out, err = capsys.readouterr()
        assert "Traceback" not in err
        return code, out, err

    def names(out: str) -> list[str]:
        return sorted(json.loads(out)["JobNames"])

    code, out, _ = await gluectl("jobs", "list")  # the default profile: the admin
    assert code == 0 and len(names(out)) == 3
    code, out, _ = await gluectl("--profile", "team-a", "jobs", "list")
    assert code == 0 and names(out) == ["team-a-load", "team-a-report"]
    monkeypatch.setenv("AWS_PROFILE", "team-a")
    code, out, _ = await gluectl("jobs", "list")
    assert code == 0 and names(out) == ["team-a-load", "team-a-report"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", OPERATOR.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", OPERATOR.secret_access_key)
    code, _, err = await gluectl("runs", "start", "team-a-load")  # the environment wins
    assert code == 1 and "AccessDeniedException: User: " + OPERATOR_IDENTITY in err
    code, _, err = await gluectl(
        "--access-key-id", TEAM_A.access_key_id, "--secret-access-key", "wrong", "jobs", "list"
    )
    assert code == 1 and "UnrecognizedClientException" in err
    code, _, err = await gluectl("--profile", "nobody", "jobs", "list")
    assert code == 2 and "profile 'nobody'" in err
    assert await count(stack, job_runs) == 0


async def test_grpcurl_with_a_bearer_header(jobs_of_two_teams: Stack) -> None:
    from tests.catalog.test_grpcurl import grpcurl

    stack = jobs_of_two_teams
    assert stack.catalog is not None
    address = f"127.0.0.1:{stack.catalog.port}"
    bearer = f"authorization: Bearer {TEAM_A.access_key_id}:{TEAM_A.secret_access_key}"
    code, out, err = await grpcurl(address, "-H", bearer, "glue.v1.Glue/ListJobs")
    assert code == 0, err
    assert sorted(json.loads(out)["job_names"]) == ["team-a-load", "team-a-report"]
    code, _, err = await grpcurl(address, "glue.v1.Glue/ListJobs")
    assert code != 0 and "Unauthenticated" in err and "Missing Authentication Token" in err


# -- who created and started what ---------------------------------------------------------------


async def test_the_creating_identity_is_shown_on_grpc_not_on_the_gateway(
    keyed: Stack, tmp_path: Path
) -> None:
    script = write_script(tmp_path, "ok.py", SUCCEED)
    command = {"Name": "pythonshell", "ScriptLocation": str(script)}
    async with as_(keyed, TEAM_A) as team_a:
        await team_a.create_job(Name="team-a-load", Role=ROLE, Command=command)
        await team_a.update_job("team-a-load", {"Role": ROLE, "Command": command, "MaxRetries": 1})
        await team_a.create_trigger(
            Name="team-a-t", Type="ON_DEMAND", Actions=[{"JobName": "team-a-load"}]
        )
        await team_a.update_trigger("team-a-t", {"Description": "changed"})
        run_id = (await team_a.start_job_run("team-a-load")).job_run_id
        await keyed.wait_run("team-a-load", run_id)
        assert (await team_a.get_job("team-a-load")).job.created_by == TEAM_A_IDENTITY
        assert (await team_a.get_trigger("team-a-t")).trigger.created_by == TEAM_A_IDENTITY
        run = (await team_a.get_job_run("team-a-load", run_id)).job_run
        assert (run.job_run_state, run.started_by) == ("SUCCEEDED", TEAM_A_IDENTITY)
        (listed,) = (await team_a.get_job_runs("team-a-load")).job_runs
        assert listed.started_by == TEAM_A_IDENTITY
    # The gateway speaks Glue's shapes only: the raw bodies carry no CreatedBy / StartedBy.
    assert keyed.catalog is not None
    boto = await asyncio.to_thread(
        glue_client, keyed.catalog.http_port, ADMIN.access_key_id, ADMIN.secret_access_key
    )
    bodies: list[bytes] = []
    boto.meta.events.register(
        "after-call.glue.*", lambda http_response, **_: bodies.append(http_response.content)
    )
    admin = Aws(keyed, boto)
    await admin("get_job", JobName="team-a-load")
    await admin("get_job_run", JobName="team-a-load", RunId=run_id)
    await admin("get_job_runs", JobName="team-a-load")
    await admin("get_trigger", Name="team-a-t")
    assert len(bodies) == 4
    assert all(b"CreatedBy" not in body and b"StartedBy" not in body for body in bodies)
    assert all(b"team-a-load" in body or b"team-a-t" in body for body in bodies)
