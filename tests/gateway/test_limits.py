"""Quotas per identity through the HTTP gateway, with two verified identities (alice, bob)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from catalog_service.limits import Limits
from clients.credentials import Credentials
from tests.conftest import Stack
from tests.gateway.conftest import ROLE, Aws, glue_client
from tests.helpers.scripts import SLEEP, SUCCEED, write_script

pytestmark = pytest.mark.catalog_settings(http_listen="127.0.0.1:0")

RNLE = "ResourceNumberLimitExceededException"
QUOTAS = Limits(
    max_jobs_per_identity=2, max_triggers_per_identity=1, max_waiting_runs_per_identity=1
)


@dataclasses.dataclass
class Pair:
    """Boto3 clients signed as alice and as bob."""

    alice: Aws
    bob: Aws


@pytest.fixture
async def pair(stack: Stack, tmp_path: Path) -> AsyncIterator[Pair]:
    """The catalog restarted with alice's and bob's keys and small quotas."""
    keys = tmp_path / "keys.json"
    keys.write_text(
        json.dumps(
            {
                "keys": [
                    {
                        "access_key_id": f"AKID{who.upper()}",
                        "secret_access_key": f"{who}-secret",
                        "identity": f"arn:aws:iam::123456789012:user/{who}",
                    }
                    for who in ("alice", "bob")
                ]
            }
        )
    )
    keys.chmod(0o600)
    await stack.stop_catalog()
    stack.catalog_settings = dataclasses.replace(
        stack.catalog_settings, access_keys=keys, limits=QUOTAS
    )
    # The gRPC door wants a key too (the stack's own calls, e.g. wait_run).
    stack.credentials = Credentials("AKIDALICE", "alice-secret")
    await stack.start_catalog()
    assert stack.catalog is not None
    port = stack.catalog.http_port
    alice = await asyncio.to_thread(glue_client, port, "AKIDALICE", "alice-secret")
    bob = await asyncio.to_thread(glue_client, port, "AKIDBOB", "bob-secret")
    try:
        yield Pair(Aws(stack, alice), Aws(stack, bob))
    finally:
        alice.close()
        bob.close()


def job(name: str, script: Path, **extra: object) -> dict[str, object]:
    return {
        "Name": name,
        "Role": ROLE,
        "Command": {"Name": "pythonshell", "ScriptLocation": str(script)},
        **extra,
    }


async def names(aws: Aws, what: str) -> list[str]:
    if what == "jobs":
        return sorted((await aws("list_jobs"))["JobNames"])
    return sorted((await aws("list_triggers"))["TriggerNames"])


async def test_jobs_quota_per_identity(pair: Pair, tmp_path: Path) -> None:
    script = write_script(tmp_path, "j.py", SUCCEED)
    # Concurrent creates by one identity take turns on the quota: exactly two get through.
    results = await asyncio.gather(
        *(pair.alice("create_job", **job(f"a{i}", script)) for i in range(5)),
        return_exceptions=True,
    )
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(refused) == 3
    for error in refused:
        assert error.response["Error"]["Code"] == RNLE  # type: ignore[attr-defined]
    assert len(await names(pair.alice, "jobs")) == 2

    code, message, status = await pair.alice.error("create_job", **job("a9", script))
    assert (code, status) == (RNLE, 400)
    assert "user/alice already has 2 jobs" in message and "--max-jobs-per-identity 2" in message
    # bob has his own quota.
    await pair.bob("create_job", **job("b1", script))
    await pair.bob("create_job", **job("b2", script))
    assert (await pair.bob.error("create_job", **job("b3", script)))[0] == RNLE
    assert len(await names(pair.alice, "jobs")) == 4
    # Deleting frees quota. (Another name than the refused b3: the very same signed request
    # within a second would be a replay.)
    await pair.bob("delete_job", JobName="b1")
    await pair.bob("create_job", **job("b4", script))


async def test_triggers_quota_per_identity(pair: Pair, tmp_path: Path) -> None:
    script = write_script(tmp_path, "j.py", SUCCEED)
    await pair.alice("create_job", **job("j", script))
    action = {"Type": "ON_DEMAND", "Actions": [{"JobName": "j"}]}
    await pair.alice("create_trigger", Name="a1", **action)
    code, message, _ = await pair.alice.error("create_trigger", Name="a2", **action)
    assert code == RNLE and "user/alice already has 1 triggers" in message
    assert await names(pair.alice, "triggers") == ["a1"]
    await pair.bob("create_trigger", Name="b1", **action)
    assert await names(pair.alice, "triggers") == ["a1", "b1"]


@pytest.mark.scheduler_settings(max_processes=1)
async def test_waiting_runs_quota_per_identity(pair: Pair, tmp_path: Path) -> None:
    sleepy = write_script(tmp_path, "s.py", SLEEP)
    quick = write_script(tmp_path, "q.py", SUCCEED)
    await pair.bob("create_job", **job("hold", sleepy))
    await pair.alice("create_job", **job("q", quick, ExecutionProperty={"MaxConcurrentRuns": 10}))
    # bob's run takes the only process slot, so later runs wait.
    held = (await pair.bob("start_job_run", JobName="hold"))["JobRunId"]
    await pair.bob.stack.wait_run("hold", held, {"RUNNING"})

    first = (await pair.alice("start_job_run", JobName="q"))["JobRunId"]
    state = (await pair.alice("get_job_run", JobName="q", RunId=first))["JobRun"]["JobRunState"]
    assert state in ("WAITING", "STARTING")
    # Distinct arguments: the very same signed request within a second would be a replay.
    code, message, _ = await pair.alice.error("start_job_run", JobName="q", Arguments={"--n": "2"})
    assert code == RNLE and "--max-waiting-runs-per-identity 1" in message
    runs = (await pair.alice("get_job_runs", JobName="q"))["JobRuns"]
    assert [r["Id"] for r in runs] == [first]
    # bob has no run waiting (his one runs): he may still start one.
    await pair.bob("start_job_run", JobName="q")

    # Once the slot frees and alice's run has started, she may start another.
    await pair.bob("batch_stop_job_run", JobName="hold", JobRunIds=[held])
    await pair.alice.stack.wait_run("q", first)
    await pair.alice("start_job_run", JobName="q", Arguments={"--n": "3"})
