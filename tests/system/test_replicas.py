"""Two scheduler replicas on one PostgreSQL database; SQLite's refusal of a second process.

The replicas are real subprocesses (``replica-a``, ``replica-b``) sharing the database and the
data directory, as replicas on one machine do; the catalog is given both addresses and talks
to replica A while it answers. What they must show (scheduler_service.leases):

- a burst of due times fires exactly once each, even when replica B is SIGKILLed mid-burst,
  and every run those fires created ends, executed exactly once;
- replica A takes over B's runs within the lease (plus the reaper's poll) and settles them
  with their real outcome, because their supervisors outlive B; stops reach them through A;
- a replica paused past its lease loses its runs and, resumed, writes nothing over them;
- when a whole machine is gone (replica, watcher, supervisors and jobs), a replica on another
  data directory settles its run FAILED as unknown, honestly, and only after the orphan grace,
  without a retry; and a stop sent to another machine's replica still arrives;
- when replica A dies, the catalog fails over to B: calls keep working and events keep coming.

The two-replica tests wait for at most one real minute boundary (the burst test) in all.
"""

from __future__ import annotations

import asyncio
import json
import math
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from sqlalchemy import select

from glue.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc
from glue.v1 import glue_pb2
from scheduler_service import registry
from scheduler_service.tables import outbox, trigger_fires
from tests.helpers.cluster import (
    IN_FLIGHT,
    LEASE,
    TAKEOVER_BOUND,
    TERMINAL,
    Cluster,
    catalog_shows,
    executions,
    kill_machine,
    running_cluster,
    scheduler_process,
    start_on,
)
from tests.helpers.processes import free_port, wait_healthy

pytestmark = pytest.mark.slow


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    """Two replicas sharing one data directory, and a catalog."""
    async with running_cluster(tmp_path, separate_sites=False) as c:
        yield c


# -- the burst -------------------------------------------------------------------------------

JOBS = 30
TRIGGERS = 150


@pytest.mark.postgres
@pytest.mark.timeout(300)  # up to a minute to its boundary, then its own waits of over a minute
async def test_burst_fires_once_and_every_run_ends_when_a_replica_dies_mid_burst(
    cluster: Cluster,
) -> None:
    """Real cron timing: waits for one minute boundary; replica B fires it and is killed
    200 ms after the boundary."""
    jobs = [f"burst-{i:02d}" for i in range(JOBS)]
    out = await cluster.recording_jobs(*jobs, "held-by-b", max_runs=20, **{"--seconds": "1"})
    names = [f"tick-{i:03d}" for i in range(TRIGGERS)]
    for i, name in enumerate(names):
        await cluster.glue.CreateTrigger(
            glue_pb2.CreateTriggerRequest(
                name=name,
                type="SCHEDULED",
                schedule="cron(* * * * ? *)",
                actions=[glue_pb2.Action(job_name=jobs[i % JOBS], arguments={"--trigger": name})],
                start_on_creation=True,
            )
        )
    # The first boundary at which every trigger is certainly active, at least 3 s ahead: B's
    # held runs start 2 s before it (on a loaded machine creating the triggers may end late in
    # a minute).
    boundary = math.floor((time.time() + 3) / 60) * 60 + 60
    # Runs replica B certainly owns when it dies.
    await asyncio.sleep(max(0.0, boundary - 2.0 - time.time()))
    held = [await start_on(cluster.sched_b, "held-by-b", **{"--seconds": "4"}) for _ in range(4)]
    # Replica A sleeps through the boundary (150 ms, far less than a lease), so that B wins
    # the burst and dies in it: during its fire transaction or while launching its runs.
    assert cluster.a.process is not None
    await asyncio.sleep(boundary - 0.05 - time.time())
    cluster.a.process.send_signal(signal.SIGSTOP)
    await asyncio.sleep(boundary + 0.15 - time.time())
    cluster.a.process.send_signal(signal.SIGCONT)
    await asyncio.sleep(boundary + 0.2 - time.time())
    await cluster.b.kill9()
    killed_at = time.time()
    at_kill = await cluster.run_rows()
    owned_by_b = sorted(r for r, row in at_kill.items() if row["owner"] == "replica-b")
    in_flight_b = [r for r in owned_by_b if at_kill[r]["state"] in IN_FLIGHT]

    async def taken_over() -> float:
        """When no in-flight run is B's any more (B, dead, can gain none)."""
        while True:
            rows = await cluster.run_rows(in_flight_b)
            if not any(
                r["owner"] == "replica-b" and r["state"] in IN_FLIGHT for r in rows.values()
            ):
                return time.time()
            await asyncio.sleep(0.05)

    takeover = asyncio.create_task(taken_over())

    # The ledger: exactly one FIRED entry per trigger for this boundary, nothing else for it.
    fire_key = registry.fire_key_for_instant(boundary)
    deadline = time.monotonic() + 20
    while True:
        async with cluster.db.read() as conn:
            ledger = (
                await conn.execute(
                    select(trigger_fires).where(trigger_fires.c.scheduled_at == boundary)
                )
            ).all()
        if len(ledger) >= TRIGGERS or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    fired_by_trigger = Counter(row.trigger_name for row in ledger)
    assert set(fired_by_trigger) == set(names), cluster.logs()
    assert set(fired_by_trigger.values()) == {1}
    assert {row.outcome for row in ledger} == {"FIRED"}
    assert {row.fire_key for row in ledger} == {fire_key}
    # No second fire before the next boundary: deactivate now (the checks below take a while).
    limit = asyncio.Semaphore(8)

    async def stop_trigger(name: str) -> None:
        async with limit:
            await cluster.glue.StopTrigger(glue_pb2.StopTriggerRequest(name=name))

    await asyncio.gather(*(stop_trigger(name) for name in names))

    run_trigger = {run_id: row.trigger_name for row in ledger for run_id in json.loads(row.run_ids)}
    assert len(run_trigger) == TRIGGERS

    # Replica A takes over what B owned, and every run ends.
    all_runs = [*run_trigger, *held]
    deadline = time.monotonic() + TAKEOVER_BOUND + 45
    while True:
        rows = await cluster.run_rows(all_runs)
        if all(row["state"] in TERMINAL for row in rows.values()) and len(rows) == len(all_runs):
            break
        assert time.monotonic() < deadline, (
            f"{Counter(str(r['state']) for r in rows.values())}\n{cluster.logs()}"
        )
        await asyncio.sleep(0.1)
    taken_over_at = await asyncio.wait_for(takeover, 5)
    assert taken_over_at - killed_at <= TAKEOVER_BOUND
    ended_at = max(float(row["updated_at"]) for row in rows.values())  # type: ignore[arg-type]
    assert {row["state"] for row in rows.values()} == {"SUCCEEDED"}, {
        r: row for r, row in rows.items() if row["state"] != "SUCCEEDED"
    }
    assert {row["owner"] for r, row in rows.items() if r in owned_by_b} <= {"replica-a"}

    # Every run executed exactly once, by what the job scripts wrote. On a slow machine a
    # minute's boundary can pass while the triggers are created or before every one is
    # stopped: runs of such other fires may have executed too, and must be in the ledger
    # under their own due time.
    lines = executions(out)
    counted = Counter(run_id for run_id, _ in lines)
    assert [r for r, n in counted.items() if n > 1] == []
    async with cluster.db.read() as conn:
        other_fires = (
            await conn.execute(
                select(trigger_fires.c.run_ids).where(trigger_fires.c.scheduled_at != boundary)
            )
        ).all()
    other_runs = {run_id for row in other_fires for run_id in json.loads(row.run_ids)}
    assert set(all_runs) <= set(counted)
    assert set(counted) - set(all_runs) <= other_runs, set(counted) - set(all_runs)
    assert {run_id: trigger for run_id, trigger in lines if run_id in run_trigger} == run_trigger

    # The catalog shows every run ended (it follows the shared outbox through replica A).
    deadline = time.monotonic() + 20
    for job in [*jobs, "held-by-b"]:
        while True:
            shown = (
                await cluster.glue.GetJobRuns(glue_pb2.GetJobRunsRequest(job_name=job))
            ).job_runs
            states = {r.id: r.job_run_state for r in shown if r.id in set(all_runs)}
            if len(states) == (len(held) if job == "held-by-b" else TRIGGERS // JOBS) and set(
                states.values()
            ) == {"SUCCEEDED"}:
                break
            assert time.monotonic() < deadline, (job, states)
            await asyncio.sleep(0.1)
    committed = [r for r in run_trigger if r in at_kill]
    print(  # the figures the note reports
        f"\nburst: {TRIGGERS} fires, {len(committed)} of their runs committed at the kill "
        f"({sum(at_kill[r]['owner'] == 'replica-b' for r in committed)} owned by B); "
        f"the last fire recorded {max(r.recorded_at for r in ledger) - boundary:.2f} s after "
        f"the boundary; B owned {len(owned_by_b)} runs ({len(in_flight_b)} in flight); "
        "A owned all of them "
        f"{taken_over_at - killed_at:.1f} s after the kill; every run ended "
        f"{ended_at - boundary:.1f} s after the boundary"
    )


# -- takeover --------------------------------------------------------------------------------


@pytest.mark.postgres
async def test_survivor_adopts_a_killed_replicas_runs_and_stops_them_on_request(
    cluster: Cluster,
) -> None:
    out = await cluster.recording_jobs("long")
    ids = await cluster.running_on_b("long", "6", "120", "120")
    finishes, stopped_early, stopped_late = ids
    await catalog_shows(cluster.glue, "long", ids, {"RUNNING"}, 10)
    await cluster.b.kill9()
    killed_at = time.time()
    # Stopped through the catalog (and so replica A) while its owner is dead and its lease
    # still holds: A signals the supervisor it can see in the shared data directory.
    response = await cluster.glue.BatchStopJobRun(
        glue_pb2.BatchStopJobRunRequest(job_name="long", job_run_ids=[stopped_early])
    )
    assert not response.errors, response.errors
    await cluster.wait_rows(ids, "match", TAKEOVER_BOUND, owner="replica-a")
    takeover = time.time() - killed_at
    assert takeover <= TAKEOVER_BOUND
    response = await cluster.glue.BatchStopJobRun(
        glue_pb2.BatchStopJobRunRequest(job_name="long", job_run_ids=[stopped_late])
    )
    assert not response.errors, response.errors
    rows = await cluster.wait_rows(ids, "terminal", 20)
    assert rows[finishes]["state"] == "SUCCEEDED", cluster.logs()
    assert rows[stopped_early]["state"] == "STOPPED"
    assert rows[stopped_late]["state"] == "STOPPED"
    assert executions(out) == [(finishes, "-")]
    await catalog_shows(cluster.glue, "long", [finishes], {"SUCCEEDED"}, 10)
    await catalog_shows(cluster.glue, "long", [stopped_early, stopped_late], {"STOPPED"}, 10)
    assert "taking over a run" in cluster.a.log_path.read_text()
    print(f"\ntakeover: replica A owned B's 3 runs {takeover:.1f} s after B was killed")


@pytest.mark.postgres
async def test_runs_a_killed_replica_committed_but_had_not_launched_run_once(
    cluster: Cluster,
) -> None:
    """B starts a fire's runs and dies at once: they are STARTING, mostly without a process."""
    out = await cluster.recording_jobs("fanout", max_runs=40)
    actions = [
        glue_pb2.Action(job_name="fanout", arguments={"--trigger": f"a{i}"}) for i in range(24)
    ]
    await cluster.glue.CreateTrigger(
        glue_pb2.CreateTriggerRequest(name="fan", type="ON_DEMAND", actions=actions)
    )
    fired = (
        await cluster.sched_b.FireTrigger(
            scheduler_pb2.FireTriggerRequest(
                registration=scheduler_pb2.TriggerRegistration(
                    trigger=glue_pb2.Trigger(name="fan")
                ),
                fire_id="die-after-this",
                reason="manual fire",
            )
        )
    ).fire
    ids = list(fired.run_ids)
    # A manual fire queues its runs WAITING; B promotes them at once. Kill it as soon as it has.
    while True:
        if any(row["owner"] == "replica-b" for row in (await cluster.run_rows(ids)).values()):
            break
        await asyncio.sleep(0.005)
    await cluster.b.kill9()
    killed_at = time.time()
    at_kill = await cluster.run_rows(ids)
    started_by_b = [r for r, row in at_kill.items() if row["owner"] == "replica-b"]
    without_process = [
        r for r in started_by_b if not (cluster.data_dir / "runs" / r / "supervisor.json").exists()
    ]
    await cluster.wait_rows(started_by_b, "match", TAKEOVER_BOUND + 2, owner="replica-a")
    takeover = time.time() - killed_at
    rows = await cluster.wait_rows(ids, "terminal", 40)
    assert {row["state"] for row in rows.values()} == {"SUCCEEDED"}, cluster.logs()
    lines = executions(out)
    assert sorted(run_id for run_id, _ in lines) == sorted(ids)
    assert sorted(trigger for _, trigger in lines) == sorted(f"a{i}" for i in range(24))
    print(
        f"\nkilled after firing: B had started {len(started_by_b)} runs, {len(without_process)} "
        f"without a supervisor yet; A owned them {takeover:.1f} s after the kill"
    )


@pytest.mark.postgres
async def test_a_replica_stopped_gracefully_hands_its_runs_over_at_once(cluster: Cluster) -> None:
    out = await cluster.recording_jobs("handover")
    [run_id] = await cluster.running_on_b("handover", "4")
    assert await cluster.b.stop() == 0  # SIGTERM: B expires its leases as it leaves
    stopped_at = time.time()
    # Well within the lease: the reaper's next poll takes it.
    await cluster.wait_rows([run_id], "match", 1.5, owner="replica-a")
    handover = time.time() - stopped_at
    rows = await cluster.wait_rows([run_id], "terminal", 20)
    assert rows[run_id]["state"] == "SUCCEEDED"
    assert executions(out) == [(run_id, "-")]
    print(f"\ngraceful stop: replica A owned B's run {handover:.2f} s after B exited")


@pytest.mark.postgres
async def test_a_paused_replica_loses_its_run_and_writes_nothing_over_it(cluster: Cluster) -> None:
    out = await cluster.recording_jobs("paused")
    [run_id] = await cluster.running_on_b("paused", "9")
    assert cluster.b.process is not None
    cluster.b.process.send_signal(signal.SIGSTOP)
    try:
        await cluster.wait_rows([run_id], "match", TAKEOVER_BOUND, owner="replica-a")
    finally:
        cluster.b.process.send_signal(signal.SIGCONT)
    # Resumed while the run still runs: B's heartbeat finds the run taken and drops it.
    deadline = time.monotonic() + LEASE + 2
    while "another replica took over this run" not in cluster.b.log_path.read_text():
        assert time.monotonic() < deadline, cluster.logs()
        await asyncio.sleep(0.1)
    rows = await cluster.wait_rows([run_id], "terminal", 20)
    assert rows[run_id]["state"] == "SUCCEEDED" and rows[run_id]["owner"] == "replica-a"
    assert executions(out) == [(run_id, "-")]
    async with cluster.db.read() as conn:
        payloads = (
            await conn.execute(select(outbox.c.payload).where(outbox.c.run_id == run_id))
        ).scalars()
        states = [glue_pb2.JobRun.FromString(p).job_run_state for p in payloads]
    # One end, recorded by the new owner; B's late view of the process wrote nothing.
    assert [s for s in states if s in TERMINAL] == ["SUCCEEDED"], states
    # B still works after losing the run.
    again = await start_on(cluster.sched_b, "paused", **{"--seconds": "0"})
    rows = await cluster.wait_rows([again], "terminal", 20)
    assert rows[again]["state"] == "SUCCEEDED" and rows[again]["owner"] == "replica-b"


@pytest.mark.postgres
async def test_runs_on_another_machine_are_stopped_by_its_heartbeat_and_settled_when_it_dies(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Replica C has its own data directory, as a replica on another machine would."""
    port = free_port()
    c_dir = tmp_path / "elsewhere"
    replica_c = scheduler_process("replica-c", port, c_dir, cluster.url)
    cluster.extra.append(replica_c)
    cluster.runs_dirs.append(c_dir / "runs")
    await replica_c.start()
    await wait_healthy(f"127.0.0.1:{port}")
    out = await cluster.recording_jobs("remote")
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        sched_c = scheduler_pb2_grpc.SchedulerStub(channel)
        stopped = await start_on(sched_c, "remote", **{"--seconds": "120"})
        lost = await start_on(sched_c, "remote", **{"--seconds": "120"})
    await cluster.wait_rows([stopped, lost], "match", 20, state="RUNNING", owner="replica-c")
    await catalog_shows(cluster.glue, "remote", [stopped], {"RUNNING"}, 10)
    # Replica A cannot signal C's supervisor (not in its data directory); C's heartbeat does.
    sent = time.time()
    response = await cluster.glue.BatchStopJobRun(
        glue_pb2.BatchStopJobRunRequest(job_name="remote", job_run_ids=[stopped])
    )
    assert not response.errors, response.errors
    rows = await cluster.wait_rows([stopped], "terminal", LEASE + 5)
    assert rows[stopped]["state"] == "STOPPED", cluster.logs()
    stop_latency = time.time() - sent
    # The machine goes, with everything on it: nothing there can report on the run.
    await kill_machine(c_dir / "runs", replica_c)
    gone_at = time.time()
    rows = await cluster.wait_rows([lost], "terminal", 2 * LEASE + 4)
    assert rows[lost]["state"] == "FAILED"
    message = str(rows[lost]["error_message"])
    assert "replica-c" in message and "outcome is unknown" in message, message
    assert "not retried automatically" in message, message
    # Not before its lease expired and the orphan grace after it passed.
    assert float(rows[lost]["updated_at"]) - gone_at > LEASE, rows[lost]  # type: ignore[arg-type]
    assert rows[lost]["owner"] in ("replica-a", "replica-b")
    assert executions(out) == []
    print(f"\ncross-machine stop reached the job {stop_latency:.1f} s after BatchStopJobRun")


@pytest.mark.postgres
async def test_the_catalog_fails_over_to_the_next_replica(cluster: Cluster) -> None:
    out = await cluster.recording_jobs("failover")
    in_flight = (
        await cluster.glue.StartJobRun(
            glue_pb2.StartJobRunRequest(job_name="failover", arguments={"--seconds": "4"})
        )
    ).job_run_id
    rows = await cluster.wait_rows([in_flight], "match", 20, state="RUNNING")
    assert rows[in_flight]["owner"] == "replica-a"  # the catalog's first address
    await cluster.a.kill9()
    killed_at = time.monotonic()
    while True:  # the catalog's next calls reach B once its channel has moved over
        try:
            after = await cluster.glue.StartJobRun(
                glue_pb2.StartJobRunRequest(job_name="failover", arguments={"--seconds": "0"})
            )
            break
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.UNAVAILABLE, exc
            assert time.monotonic() - killed_at < 10, cluster.logs()
            await asyncio.sleep(0.2)
    failover = time.monotonic() - killed_at
    rows = await cluster.wait_rows([in_flight, after.job_run_id], "terminal", TAKEOVER_BOUND + 10)
    assert {r["state"] for r in rows.values()} == {"SUCCEEDED"}, cluster.logs()
    assert {r["owner"] for r in rows.values()} == {"replica-b"}
    # Both ends reached the catalog through B's event stream.
    await catalog_shows(cluster.glue, "failover", [in_flight, after.job_run_id], {"SUCCEEDED"}, 10)
    assert sorted(executions(out)) == sorted([(in_flight, "-"), (after.job_run_id, "-")])
    print(f"\nfailover: the catalog's StartJobRun reached replica B {failover:.1f} s after A died")


# -- SQLite ----------------------------------------------------------------------------------


async def test_a_second_scheduler_on_one_sqlite_file_refuses_to_start(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    first = scheduler_process(
        "first", free_port(), data_dir, f"sqlite+aiosqlite:///{data_dir}/s.db"
    )
    second = scheduler_process(
        "second", free_port(), data_dir, f"sqlite+aiosqlite:///{data_dir}/s.db"
    )
    await first.start()
    try:
        await wait_healthy(first.args[1])
        await second.start()
        assert second.process is not None
        code = await asyncio.wait_for(second.process.wait(), 30)
        assert code != 0
        output = second.log_path.read_text().strip().splitlines()
        assert len(output) == 1, output
        assert output[0].startswith("scheduler-service: another scheduler-service is already")
        assert "SQLite mode runs one process per database file" in output[0]
        # The first one is unaffected.
        await wait_healthy(first.args[1], timeout=5)
    finally:
        if first.process is not None:
            assert await first.stop() == 0
