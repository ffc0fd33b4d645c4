"""Restarts and kill -9 of each service while runs execute: nothing is lost or left RUNNING."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from glue.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc
from glue.v1 import glue_pb2, glue_pb2_grpc
from tests.conftest import TERMINAL, Stack
from tests.helpers.processes import ServicePair
from tests.helpers.scripts import write_script

pytestmark = pytest.mark.slow

# Sleeps for --seconds, then appends its run id to <script>.out: one line per execution.
MARKED_SLEEP = """
import sys, time
from awsglue.utils import getResolvedOptions
args = getResolvedOptions(sys.argv, ["seconds"])
print("started", flush=True)
time.sleep(float(args["seconds"]))
with open(sys.argv[0] + ".out", "a") as out:
    out.write(args["JOB_RUN_ID"] + "\\n")
print("finished", flush=True)
"""


@pytest.fixture
async def pair(database_urls: tuple[str, str], tmp_path: Path) -> AsyncIterator[ServicePair]:
    """Both services as subprocesses on fresh databases."""
    catalog_url, scheduler_url = database_urls
    services = ServicePair(tmp_path / "data", catalog_url, scheduler_url)
    await services.start_scheduler()
    await services.start_catalog()
    try:
        yield services
    finally:
        await services.close()


async def _create_job(
    glue: glue_pb2_grpc.GlueStub, name: str, script: Path, seconds: float
) -> None:
    await glue.CreateJob(
        glue_pb2.CreateJobRequest(
            name=name,
            role="r",
            command=glue_pb2.JobCommand(name="pythonshell", script_location=str(script)),
            default_arguments={"--seconds": str(seconds)},
            execution_property=glue_pb2.ExecutionProperty(max_concurrent_runs=10),
        )
    )


async def _job_claim(path: Path, timeout: float = 10) -> dict[str, int]:
    """The run's claim once its supervisor has recorded the job's pid."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        try:
            claim: dict[str, int] = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            claim = {}
        if claim.get("job_pid"):
            return claim
        await asyncio.sleep(0.01)
    raise AssertionError(f"{path} never named the job")


async def _wait(
    glue: glue_pb2_grpc.GlueStub, job: str, run_id: str, states: set[str], timeout: float = 30
) -> glue_pb2.JobRun:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            run = (
                await glue.GetJobRun(glue_pb2.GetJobRunRequest(job_name=job, run_id=run_id))
            ).job_run
            if run.job_run_state in states:
                return run
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.UNAVAILABLE:
                raise
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"run {run_id} did not reach {states}")
        await asyncio.sleep(0.05)


def _executions(script: Path) -> list[str]:
    out = Path(f"{script}.out")
    return out.read_text().split() if out.exists() else []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["graceful", "kill9"])
async def test_catalog_restart_catches_up(pair: ServicePair, tmp_path: Path, sig: int) -> None:
    script = write_script(tmp_path, "job.py", MARKED_SLEEP)
    async with grpc.aio.insecure_channel(pair.catalog_address) as channel:
        glue = glue_pb2_grpc.GlueStub(channel)
        await _create_job(glue, "catchup", script, 1.0)
        ids = [
            (await glue.StartJobRun(glue_pb2.StartJobRunRequest(job_name="catchup"))).job_run_id
            for _ in range(3)
        ]
        await _wait(glue, "catchup", ids[0], {"RUNNING"})
    await pair.catalog.stop(sig)
    # The runs finish while the catalog is down.
    for _ in range(100):
        if len(_executions(script)) == 3:
            break
        await asyncio.sleep(0.1)
    await pair.start_catalog()
    async with grpc.aio.insecure_channel(pair.catalog_address) as channel:
        glue = glue_pb2_grpc.GlueStub(channel)
        for run_id in ids:
            run = await _wait(glue, "catchup", run_id, TERMINAL)
            assert run.job_run_state == "SUCCEEDED", pair.logs()
    assert sorted(_executions(script)) == sorted(ids)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["graceful", "kill9"])
async def test_scheduler_restart_does_not_kill_running_jobs(
    pair: ServicePair, tmp_path: Path, sig: int
) -> None:
    script = write_script(tmp_path, "job.py", MARKED_SLEEP)
    async with grpc.aio.insecure_channel(pair.catalog_address) as channel:
        glue = glue_pb2_grpc.GlueStub(channel)
        await _create_job(glue, "survivor", script, 2.0)
        finishes = (
            await glue.StartJobRun(glue_pb2.StartJobRunRequest(job_name="survivor"))
        ).job_run_id
        stopped = (
            await glue.StartJobRun(
                glue_pb2.StartJobRunRequest(job_name="survivor", arguments={"--seconds": "120"})
            )
        ).job_run_id
        await _wait(glue, "survivor", finishes, {"RUNNING"})
        await _wait(glue, "survivor", stopped, {"RUNNING"})
        await pair.scheduler.stop(sig)
        # The first job completes while no scheduler runs at all.
        for _ in range(100):
            if _executions(script):
                break
            await asyncio.sleep(0.1)
        assert _executions(script) == [finishes]
        await pair.start_scheduler()
        run = await _wait(glue, "survivor", finishes, TERMINAL)
        assert run.job_run_state == "SUCCEEDED", pair.logs()
        # The re-adopted long run can still be stopped.
        response = await glue.BatchStopJobRun(
            glue_pb2.BatchStopJobRunRequest(job_name="survivor", job_run_ids=[stopped])
        )
        assert not response.errors, response.errors
        run = await _wait(glue, "survivor", stopped, TERMINAL)
        assert run.job_run_state == "STOPPED"
    assert _executions(script) == [finishes]


async def test_lost_supervisor_settles_the_run_honestly(pair: ServicePair, tmp_path: Path) -> None:
    script = write_script(tmp_path, "job.py", MARKED_SLEEP)
    async with grpc.aio.insecure_channel(pair.catalog_address) as channel:
        glue = glue_pb2_grpc.GlueStub(channel)
        await _create_job(glue, "lost", script, 120)
        run_id = (await glue.StartJobRun(glue_pb2.StartJobRunRequest(job_name="lost"))).job_run_id
        await _wait(glue, "lost", run_id, {"RUNNING"})
        # RUNNING is recorded once the supervisor reported the job started; the claim names it.
        claim = await _job_claim(pair.data_dir / "runs" / run_id / "supervisor.json")
        await pair.scheduler.kill9()
        # Everything the run had dies too: its supervisor and the job's process group.
        os.kill(claim["pid"], signal.SIGKILL)
        os.killpg(claim["job_pid"], signal.SIGKILL)
        await pair.start_scheduler()
        run = await _wait(glue, "lost", run_id, TERMINAL)
        assert run.job_run_state == "FAILED"
        assert "supervisor" in run.error_message.lower() or "unknown" in run.error_message.lower()


async def test_reconciler_converges_after_scheduler_outage(stack: Stack, tmp_path: Path) -> None:
    script = write_script(tmp_path, "s.py", "print('ok')\n")
    await stack.create_job("kept", script)
    await stack.create_job("dropped", script)
    await stack.stop_scheduler()
    # Both changes commit in the catalog while the scheduler cannot hear about them.
    await stack.create_job("added-while-down", script)
    await stack.glue.DeleteJob(glue_pb2.DeleteJobRequest(job_name="dropped"))
    await stack.start_scheduler()
    assert stack.scheduler is not None and stack.catalog is not None
    async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.scheduler.port}") as channel:
        scheduler = scheduler_pb2_grpc.SchedulerStub(channel)
        for _ in range(200):
            held = await scheduler.ListRegistrations(scheduler_pb2.ListRegistrationsRequest())
            live = {r.name for r in held.jobs if not r.deleted}
            if live == {"kept", "added-while-down"}:
                break
            await asyncio.sleep(0.05)
        assert live == {"kept", "added-while-down"}
    run_id = await stack.start_run("added-while-down")
    assert (await stack.wait_run("added-while-down", run_id)).job_run_state == "SUCCEEDED"


async def test_timeout_ends_the_run(stack: Stack, tmp_path: Path) -> None:
    """Timeout is in minutes (Glue's unit), so this waits one real minute."""
    script = write_script(
        tmp_path, "s.py", "import time\nprint('sleeping', flush=True)\ntime.sleep(600)\n"
    )
    await stack.create_job("slowpoke", script, timeout=1)
    run_id = await stack.start_run("slowpoke")
    run = await stack.wait_run("slowpoke", run_id, timeout=90)
    assert run.job_run_state == "TIMEOUT"
    assert run.execution_time >= 59
    assert run.error_message
