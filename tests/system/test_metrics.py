"""Prometheus metrics and HTTP health of both services, scraped over their real listeners.

The services run in-process (the ``stack`` fixture) with their HTTP listeners on port 0; each
check compares a scrape after doing something with a scrape before it.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from glue.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc
from glue.v1 import glue_pb2
from scheduler_service.app import SchedulerApp
from scheduler_service.cli import parse_settings, settings_environment
from scheduler_service.settings import SchedulerSettings
from tests.conftest import Stack
from tests.helpers.missed_fires import clear_of_a_minute_boundary, restart_after_missed_fires
from tests.helpers.scripts import FAIL, SLEEP, SUCCEED, write_script

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
GLUE = "/glue.v1.Glue/"
SCHEDULER = "/glue.scheduler.v1.Scheduler/"


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A client session for the services' HTTP listeners."""
    async with aiohttp.ClientSession() as session:
        yield session


async def scrape(http: aiohttp.ClientSession, port: int) -> Samples:
    """Every sample of ``/metrics``, by name and labels."""
    async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; 0 if it is absent (a labelled series not yet observed)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def delta(before: Samples, after: Samples) -> Callable[..., float]:
    """How much a sample moved between two scrapes."""

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    return moved


async def probe(http: aiohttp.ClientSession, port: int, path: str) -> tuple[int, dict[str, str]]:
    """GET a health endpoint: (status, JSON body)."""
    async with http.get(f"http://127.0.0.1:{port}{path}") as response:
        return response.status, json.loads(await response.text())


async def grpc_health(port: int) -> int:
    """The overall gRPC health status of the server on ``port``."""
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        return (await stub.Check(health_pb2.HealthCheckRequest(service=""))).status


async def eventually(check: Callable[[], object], timeout: float = 10.0) -> None:
    """Wait until the awaitable ``check()`` returns true."""
    deadline = time.monotonic() + timeout
    while not await check():  # type: ignore[misc]
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


def ports(stack: Stack) -> tuple[int, int]:
    """(catalog HTTP port, scheduler HTTP port)."""
    assert stack.catalog is not None and stack.scheduler is not None
    return stack.catalog.http_port, stack.scheduler.http_port


@pytest.mark.slow
@pytest.mark.scheduler_settings(http_listen="127.0.0.1:0", max_processes=1)
@pytest.mark.catalog_settings(http_listen="127.0.0.1:0")
async def test_runs_rpcs_and_fires_move_the_numbers(
    stack: Stack, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    catalog_http, scheduler_http = ports(stack)
    assert stack.catalog is not None and stack.scheduler is not None

    async def catalog_ready() -> bool:
        return (await probe(http, catalog_http, "/readyz"))[0] == 200

    # The catalog is SERVING once its event stream connects, just after start-up.
    await eventually(catalog_ready)
    for port, grpc_port in (
        (catalog_http, stack.catalog.port),
        (scheduler_http, stack.scheduler.port),
    ):
        assert await probe(http, port, "/healthz") == (200, {"status": "ok"})
        assert await probe(http, port, "/readyz") == (200, {"status": "SERVING"})
        assert await grpc_health(grpc_port) == health_pb2.HealthCheckResponse.SERVING
    catalog_before = await scrape(http, catalog_http)
    scheduler_before = await scrape(http, scheduler_http)
    assert value(scheduler_before, "glue_scheduler_process_slots") == 1
    assert value(catalog_before, "glue_catalog_event_stream_connected") == 1

    await stack.create_job("sleepy", write_script(tmp_path, "sleep.py", SLEEP))
    await stack.create_job("ok", write_script(tmp_path, "ok.py", SUCCEED))
    await stack.create_job("bad", write_script(tmp_path, "bad.py", FAIL))
    sleepy = await stack.start_run("sleepy", arguments={"--seconds": "1.5"})
    await stack.wait_run("sleepy", sleepy, {"RUNNING"})
    # The one process slot is taken: these two wait.
    ok, bad = await stack.start_run("ok"), await stack.start_run("bad")
    busy = await scrape(http, scheduler_http)
    assert value(busy, "glue_scheduler_process_slots_in_use") == 1
    assert value(busy, "glue_scheduler_runs", state="RUNNING") == 1
    assert value(busy, "glue_scheduler_runs", state="WAITING") == 2

    assert (await stack.wait_run("sleepy", sleepy)).job_run_state == "SUCCEEDED"
    assert (await stack.wait_run("ok", ok)).job_run_state == "SUCCEEDED"
    assert (await stack.wait_run("bad", bad)).job_run_state == "FAILED"
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stack.get_run("ok", "jr_" + "0" * 64)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.scheduler.port}") as channel:
        scheduler = scheduler_pb2_grpc.SchedulerStub(channel)
        log = scheduler.ReadRunLog(scheduler_pb2.ReadRunLogRequest(run_id=ok))
        assert b"ok" in b"".join([chunk.data async for chunk in log])

    catalog_after = await scrape(http, catalog_http)
    scheduler_after = await scrape(http, scheduler_http)
    moved = delta(scheduler_before, scheduler_after)
    # The run that starts at once is created STARTING (its launch recorded with it), as in
    # Glue; each of the three moves to RUNNING once its process runs.
    assert moved("glue_scheduler_runs_created_total", state="STARTING") == 1
    assert moved("glue_scheduler_runs_created_total", state="RUNNING") == 0
    assert moved("glue_scheduler_runs_created_total", state="WAITING") == 2
    assert moved("glue_scheduler_runs_started_total") == 3
    assert moved("glue_scheduler_runs_ended_total", state="SUCCEEDED") == 2
    assert moved("glue_scheduler_runs_ended_total", state="FAILED") == 1
    assert moved("glue_scheduler_run_duration_seconds_count", state="SUCCEEDED") == 2
    assert moved("glue_scheduler_run_duration_seconds_count", state="FAILED") == 1
    assert moved("glue_scheduler_run_duration_seconds_sum", state="SUCCEEDED") >= 1.5
    assert value(scheduler_after, "glue_scheduler_process_slots_in_use") == 0
    for state in ("WAITING", "STARTING", "RUNNING", "STOPPING"):
        assert value(scheduler_after, "glue_scheduler_runs", state=state) == 0
    handled = "glue_rpc_server_handling_seconds_count"
    # StartJobRun admits through StartRuns (batched; these three went one at a time).
    assert moved(handled, method=SCHEDULER + "StartRuns", code="OK") == 3
    assert moved(handled, method=SCHEDULER + "ReadRunLog", code="OK") == 1

    moved = delta(catalog_before, catalog_after)
    assert moved(handled, method=GLUE + "CreateJob", code="OK") == 3
    assert moved(handled, method=GLUE + "StartJobRun", code="OK") == 3
    assert moved(handled, method=GLUE + "GetJobRun", code="NOT_FOUND") == 1
    assert moved("glue_rpc_server_handling_seconds_sum", method=GLUE + "CreateJob", code="OK") > 0
    # Per run: created (STARTING at once), RUNNING and ended; the two that waited also
    # promoted (STARTING, in the transaction that ended the run before them).
    assert moved("glue_catalog_events_applied_total") == 11
    assert moved("glue_catalog_event_applied_sequence") == 11
    applied = value(catalog_after, "glue_catalog_event_applied_sequence")
    assert value(catalog_after, "glue_catalog_event_head_sequence") == applied
    assert value(catalog_after, "glue_catalog_event_stream_lag_events") == 0

    # An on-demand trigger's fire.
    await stack.glue.CreateTrigger(
        glue_pb2.CreateTriggerRequest(
            name="now", type="ON_DEMAND", actions=[glue_pb2.Action(job_name="ok")]
        )
    )
    await stack.glue.StartTrigger(glue_pb2.StartTriggerRequest(name="now"))
    fired = await scrape(http, scheduler_http)
    assert (
        delta(scheduler_after, fired)(
            "glue_scheduler_trigger_fires_total", type="ON_DEMAND", outcome="FIRED"
        )
        == 1
    )

    # A difference the reconciler repairs: the scheduler holds a newer version of a job than
    # the catalog ever gave out.
    repairs = value(catalog_after, "glue_catalog_reconcile_repairs_total")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.scheduler.port}") as channel:
        scheduler = scheduler_pb2_grpc.SchedulerStub(channel)
        await scheduler.DeleteJob(scheduler_pb2.DeleteJobRequest(job_name="bad", version=10**12))

    async def repaired() -> bool:
        now = await scrape(http, catalog_http)
        return value(now, "glue_catalog_reconcile_repairs_total") > repairs

    await eventually(repaired)

    # A server stream is recorded when it ends: the catalog leaving ends its event stream.
    watch = {"method": SCHEDULER + "WatchRunEvents", "code": "CANCELLED"}
    watches = value(await scrape(http, scheduler_http), handled, **watch)
    await stack.stop_catalog()

    async def stream_recorded() -> bool:
        return value(await scrape(http, scheduler_http), handled, **watch) == watches + 1

    await eventually(stream_recorded)


@pytest.mark.slow
@pytest.mark.scheduler_settings(http_listen="127.0.0.1:0")
@pytest.mark.catalog_settings(http_listen="127.0.0.1:0")
async def test_stream_state_readiness_and_late_fires(
    stack: Stack, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    catalog_http, _ = ports(stack)
    assert stack.catalog is not None
    await stack.create_job("ok", write_script(tmp_path, "ok.py", SUCCEED))
    # Far enough from a minute boundary that the schedule cannot fire before the scheduler
    # is stopped (that fire would then not be the restarted scheduler's).
    await clear_of_a_minute_boundary(20)
    await stack.glue.CreateTrigger(
        glue_pb2.CreateTriggerRequest(
            name="minutely",
            type="SCHEDULED",
            schedule="cron(* * * * ? *)",
            actions=[glue_pb2.Action(job_name="ok")],
            start_on_creation=True,
        )
    )
    before = await scrape(http, catalog_http)
    await stack.stop_scheduler()

    async def disconnected() -> bool:
        return value(await scrape(http, catalog_http), "glue_catalog_event_stream_connected") == 0

    await eventually(disconnected)
    status, body = await probe(http, catalog_http, "/readyz")
    assert status == 503
    assert body["status"] == "NOT_SERVING"
    assert "event stream" in body["reason"]
    assert await grpc_health(stack.catalog.port) == health_pb2.HealthCheckResponse.NOT_SERVING
    assert await probe(http, catalog_http, "/healthz") == (200, {"status": "ok"})

    # As if the scheduler had been down for the last four due times; a wide misfire grace
    # makes the latest one fire (late) and folds the three before it into one COALESCED row.
    last_due = await restart_after_missed_fires(stack, "minutely", grace=600.0)
    assert stack.scheduler is not None
    scheduler_http = stack.scheduler.http_port

    async def connected() -> bool:
        return value(await scrape(http, catalog_http), "glue_catalog_event_stream_connected") == 1

    await eventually(connected)
    assert await probe(http, catalog_http, "/readyz") == (200, {"status": "SERVING"})
    assert await grpc_health(stack.catalog.port) == health_pb2.HealthCheckResponse.SERVING
    after = await scrape(http, catalog_http)
    assert delta(before, after)("glue_catalog_event_stream_connects_total") == 1

    async def fired() -> bool:
        samples = await scrape(http, scheduler_http)
        return value(samples, "glue_scheduler_fire_lateness_seconds_count") == 1

    await eventually(fired)
    samples = await scrape(http, scheduler_http)
    fires = "glue_scheduler_trigger_fires_total"
    assert value(samples, fires, type="SCHEDULED", outcome="FIRED") == 1
    assert value(samples, fires, type="SCHEDULED", outcome="COALESCED") == 1
    assert value(samples, fires, type="SCHEDULED", outcome="SKIPPED") == 0
    lateness = value(samples, "glue_scheduler_fire_lateness_seconds_sum")
    # Fired at restart, late by however far into the minute we are.
    assert 0 <= lateness <= time.time() - last_due
    assert value(samples, "glue_scheduler_fire_lateness_seconds_bucket", le="+Inf") == 1


async def test_scheduler_refuses_an_open_http_listener(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = SchedulerSettings(listen="127.0.0.1:0", data_dir=tmp_path, http_listen="0.0.0.0:0")
    with pytest.raises(ValueError, match="--http-public"):
        async with SchedulerApp(settings):
            pass
    if os.geteuid() == 0:
        # As root the scheduler needs a run identity (the root policy); not the point here.
        monkeypatch.setenv("SCHEDULER_RUN_AS", "root")
        monkeypatch.setenv("SCHEDULER_SCRIPT_ROOTS", "/")
    monkeypatch.setenv("SCHEDULER_HTTP_LISTEN", "0.0.0.0:9")
    with pytest.raises(SystemExit):
        parse_settings(["--data-dir", str(tmp_path)])
    parsed, level = parse_settings(["--data-dir", str(tmp_path), "--http-public"])
    assert (parsed.http_listen, parsed.http_public) == ("0.0.0.0:9", True)
    # The caretaker reads the settings back from its environment, and must accept them too.
    for name, env_value in settings_environment(parsed, level).items():
        monkeypatch.setenv(name, env_value)
    again, _ = parse_settings([])
    assert (again.http_listen, again.http_public) == ("0.0.0.0:9", True)
