"""A replica's death never loses or falsifies the outcome of its runs (replicas on two machines).

Replicas A and B share one PostgreSQL database but not a data directory, as on two machines: B
can neither see A's run directories nor signal A's supervisors. What must hold
(scheduler_service.leases, .caretaker):

- kill -9 of A's whole process group just after a burst's due time: every run's recorded state is
  what its script did, and no script runs twice, with MaxRetries 0 and 2 alike; A's supervisors
  report through A's caretaker, never through B guessing;
- kill -9 of A's scheduler process alone while its supervisors run on: the true outcomes (a
  success, a failure with its message) reach the database and the catalog, and the caretaker
  hands the runs to A when A is back;
- a run a replica admitted but never launched is launched once by a replica elsewhere; one whose
  launch was recorded on a machine that is gone with everything on it ends FAILED after the
  orphan grace, naming the lost replica, and is not retried.

The burst test waits for one real minute boundary.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from glue.scheduler.v1 import scheduler_pb2
from glue.v1 import glue_pb2
from scheduler_service.leases import Replica
from scheduler_service.outbox import EventFeed
from scheduler_service.run_admission import Admission, Admitted
from scheduler_service.runs import RunStore
from scheduler_service.tables import runs
from servicekit.db import Database
from tests.helpers.cluster import (
    TERMINAL,
    Cluster,
    catalog_shows,
    executions,
    running_cluster,
    start_on,
)
from tests.helpers.processes import wait_healthy
from tests.helpers.scripts import write_script

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

# Sleeps --seconds, appends "<run id> -" to --out, then fails with a message on stderr.
FAILING_JOB = """
import sys, time
argv = sys.argv[1:]
opts = dict(zip(argv[::2], argv[1::2]))
time.sleep(float(opts.get("--seconds", "0")))
with open(opts["--out"], "a") as out:
    out.write(opts["--JOB_RUN_ID"] + " -\\n")
print("boom: the input file is missing", file=sys.stderr)
sys.exit(3)
"""

# Runs until the file --release names exists (at most 300 s), then appends "<run id> -" to
# --out: a run that is still going for as long as a test needs, however slow the machine.
HELD_JOB = """
import os, sys, time
argv = sys.argv[1:]
opts = dict(zip(argv[::2], argv[1::2]))
for _ in range(3000):
    if os.path.exists(opts["--release"]):
        break
    time.sleep(0.1)
with open(opts["--out"], "a") as out:
    out.write(opts["--JOB_RUN_ID"] + " -\\n")
"""

# The replicas' (and so the caretakers') lease. Longer than the 3 s the other replica tests use:
# a run launched on A's machine may be settled from B once its lease has been expired for a
# further lease period, and A's caretaker - a new interpreter the watcher starts when A dies -
# must have taken the run before that even on a loaded machine, where it can take seconds to
# start. How soon a caretaker starts is not what these tests check; that B does not settle
# what A's machine can report is.
SITE_LEASE = 8.0


@pytest.fixture
async def machines(tmp_path: Path) -> AsyncIterator[Cluster]:
    """Replicas A and B on separate data directories, and a catalog given both."""
    async with running_cluster(tmp_path, separate_sites=True, lease=SITE_LEASE) as c:
        yield c


async def attempts(cluster: Cluster) -> dict[str, tuple[str, int, str | None, str | None]]:
    """Every run: (state, attempt, owner, error message), by run id."""
    async with cluster.db.read() as conn:
        rows = await conn.execute(
            select(runs.c.run_id, runs.c.state, runs.c.attempt, runs.c.owner, runs.c.error_message)
        )
        return {r.run_id: (r.state, r.attempt, r.owner, r.error_message) for r in rows}


async def caretaker_left(runs_dir: Path, timeout: float = 20) -> str:
    """Wait until the site's caretaker logged its departure; its log."""
    log = runs_dir / ".caretaker.log"
    deadline = time.monotonic() + timeout
    while True:
        text = log.read_text(errors="replace") if log.exists() else ""
        if "caretaker leaving" in text:
            return text
        assert time.monotonic() < deadline, text
        await asyncio.sleep(0.1)


# -- the burst -------------------------------------------------------------------------------

JOBS = 20
TRIGGERS = 300


# Waits 30-90 s for its minute boundary before its own 120 s wait for the outcomes.
@pytest.mark.timeout(300)
async def test_a_burst_survives_kill_9_of_a_replicas_process_group_with_true_outcomes(
    machines: Cluster,
) -> None:
    cluster = machines
    plain = [f"plain-{i:02d}" for i in range(JOBS // 2)]
    retried = [f"retried-{i:02d}" for i in range(JOBS // 2)]
    out = await cluster.recording_jobs(*plain, max_runs=50, **{"--seconds": "0.5"})
    await cluster.recording_jobs(*retried, max_runs=50, max_retries=2, **{"--seconds": "0.5"})
    jobs = [*plain, *retried]
    names = [f"tick-{i:03d}" for i in range(TRIGGERS)]
    limit = asyncio.Semaphore(8)

    # One due time, so that nothing fires again however long the checks take: the minute
    # boundary after the triggers exist, named exactly (Glue cron, UTC).
    boundary = math.ceil((time.time() + 30) / 60) * 60
    due = datetime.fromtimestamp(boundary, UTC)
    schedule = f"cron({due.minute} {due.hour} {due.day} {due.month} ? {due.year})"

    async def create(i: int, name: str) -> None:
        async with limit:
            await cluster.glue.CreateTrigger(
                glue_pb2.CreateTriggerRequest(
                    name=name,
                    type="SCHEDULED",
                    schedule=schedule,
                    actions=[
                        glue_pb2.Action(job_name=jobs[i % JOBS], arguments={"--trigger": name})
                    ],
                    start_on_creation=True,
                )
            )

    await asyncio.gather(*(create(i, name) for i, name in enumerate(names)))
    assert time.time() < boundary - 5, "creating the triggers took too long"
    assert cluster.b.process is not None and cluster.a.process is not None
    # B sleeps through the boundary so that A fires the burst and holds its first runs.
    await asyncio.sleep(max(0.0, boundary - 0.05 - time.time()))
    cluster.b.process.send_signal(signal.SIGSTOP)
    await asyncio.sleep(boundary + 0.3 - time.time())
    await cluster.a.kill9_group()
    killed_at = time.time()
    cluster.b.process.send_signal(signal.SIGCONT)
    at_kill = await attempts(cluster)
    held_by_a = sorted(r for r, row in at_kill.items() if row[2] == "replica-a")

    deadline = time.monotonic() + 120
    while True:
        rows = await attempts(cluster)
        if len(rows) >= TRIGGERS and all(row[0] in TERMINAL for row in rows.values()):
            break
        assert time.monotonic() < deadline, (Counter(r[0] for r in rows.values()), cluster.logs())
        await asyncio.sleep(0.2)
    states = Counter(row[0] for row in rows.values())
    assert states == {"SUCCEEDED": TRIGGERS}, {
        r: row for r, row in rows.items() if row[0] != "SUCCEEDED"
    }
    # No retry was made: nothing failed, falsely or not.
    assert {row[1] for row in rows.values()} == {0}
    counted = Counter(run_id for run_id, _ in executions(out))
    assert set(counted) == set(rows), "a run was recorded that did not run, or the reverse"
    assert [r for r, n in counted.items() if n > 1] == []
    assert {trigger for _, trigger in executions(out)} == set(names)
    # A's caretaker recorded what A's supervisors saw.
    reported = sorted(r for r in held_by_a if rows[r][2] == "replica-a/caretaker")
    caretaker_log = await caretaker_left(cluster.a_dir / "runs")
    for job in jobs:
        deadline = time.monotonic() + 30
        while True:
            shown = (
                await cluster.glue.GetJobRuns(glue_pb2.GetJobRunsRequest(job_name=job))
            ).job_runs
            if len(shown) == TRIGGERS // JOBS and {r.job_run_state for r in shown} == {"SUCCEEDED"}:
                break
            assert time.monotonic() < deadline, (job, [r.job_run_state for r in shown])
            await asyncio.sleep(0.2)
    print(  # the figures the note reports
        f"\nburst of {TRIGGERS} on two machines, A's process group killed 0.3 s after the due "
        f"time: A held {len(held_by_a)} runs; its caretaker recorded {len(reported)} of them "
        f"({caretaker_log.count('taking over a run')} taken over); every run SUCCEEDED "
        f"{max(time.time() - killed_at, 0):.1f} s after the kill, each script ran once"
    )


# -- the scheduler process alone -------------------------------------------------------------


async def test_supervisors_report_through_the_caretaker_when_the_scheduler_process_dies(
    machines: Cluster,
) -> None:
    cluster = machines
    out = await cluster.recording_jobs("work")
    failing = write_script(cluster.tmp_path, "fail.py", FAILING_JOB)
    await cluster.create_job("broken", failing, 2, max_retries=1, **{"--out": str(out)})
    # The long run goes on until released: it must outlast the caretaker's part, however long.
    held = write_script(cluster.tmp_path, "held.py", HELD_JOB)
    release = cluster.tmp_path / "release-long"
    await cluster.create_job("held", held, 1, **{"--out": str(out), "--release": str(release)})
    await cluster.jobs_registered("broken", "held")
    short = await start_on(cluster.sched_a, "work", **{"--seconds": "2"})
    long = await start_on(cluster.sched_a, "held")
    broken = await start_on(cluster.sched_a, "broken", **{"--seconds": "2"})
    await cluster.wait_rows([short, long, broken], "match", 20, state="RUNNING", owner="replica-a")
    await cluster.a.kill9()  # the scheduler process alone: its watcher and supervisors live on
    killed_at = time.time()
    rows = await cluster.wait_rows([short], "terminal", 15)
    assert rows[short]["state"] == "SUCCEEDED", cluster.logs()
    assert rows[short]["owner"] == "replica-a/caretaker"
    rows = await cluster.wait_rows([broken], "terminal", 15)
    assert rows[broken]["state"] == "FAILED" and rows[broken]["owner"] == "replica-a/caretaker"
    assert "boom: the input file is missing" in str(rows[broken]["error_message"])
    # A true failure is retried as usual (MaxRetries 1): the retry waits for a replica, B.
    retry = f"{broken}_attempt_1"
    rows = await cluster.wait_rows([retry], "terminal", 20)
    assert rows[retry]["state"] == "FAILED" and rows[retry]["owner"] == "replica-b"
    # The long run is still going under the caretaker when A comes back: A takes it over, and
    # records its end once it is released.
    rows = await cluster.run_rows([long])
    assert rows[long]["state"] == "RUNNING" and rows[long]["owner"] == "replica-a/caretaker"
    await cluster.a.start()
    await wait_healthy(f"127.0.0.1:{cluster.a_port}")
    await cluster.wait_rows([long], "match", 20, state="RUNNING", owner="replica-a")
    caretaker_log = await caretaker_left(cluster.a_dir / "runs")
    assert "handing the runs over to a live replica" in caretaker_log
    release.touch()
    rows = await cluster.wait_rows([long], "terminal", 20)
    assert rows[long]["state"] == "SUCCEEDED" and rows[long]["owner"] == "replica-a", rows
    await catalog_shows(cluster.glue, "work", [short], {"SUCCEEDED"}, 10)
    await catalog_shows(cluster.glue, "held", [long], {"SUCCEEDED"}, 10)
    ran = Counter(run_id for run_id, _ in executions(out))
    assert ran == {short: 1, long: 1, broken: 1, retry: 1}
    print(
        "\nscheduler process killed alone: its caretaker recorded two outcomes; the long run "
        f"ended under the restarted replica {time.time() - killed_at:.1f} s after the kill"
    )


# -- admitted, never launched / launched on a machine that is gone ----------------------------


async def test_an_unlaunched_run_runs_once_elsewhere_and_a_lost_launch_is_not_retried(
    machines: Cluster,
) -> None:
    """Replica X (this test process, on a third "machine") admits two runs and dies: one that
    waits for a process slot (never launched, owned by no one), one after recording its launch
    (as an admission into a free slot records it) but before any supervisor started."""
    cluster = machines
    out = await cluster.recording_jobs("orphans")
    await cluster.recording_jobs("orphans-retried", max_retries=2)
    db = Database(cluster.url)
    try:
        x = RunStore(
            db,
            EventFeed(db),
            cluster.tmp_path / "machine-x" / "runs",
            replica=Replica(replica_id="replica-x", lease_seconds=cluster.lease, site="machine-x"),
        )
        never, lost = "jr_" + secrets.token_hex(32), "jr_" + secrets.token_hex(32)
        admitted = await x.admit_many(
            [
                Admission(
                    registration=scheduler_pb2.JobRegistration(),
                    run_id=run_id,
                    request={"JobName": job},
                    process_slot_reserved=slot,
                )
                for run_id, job, slot in (
                    (never, "orphans", False),
                    (lost, "orphans-retried", True),
                )
            ]
        )
        assert all(not isinstance(a, Exception) for a in admitted), admitted
        launched_at = time.time()
        # Admitted into its slot, its launch is recorded on X's site with the admission.
        states = {
            a.run.run_id: (a.run.state, a.run.site) for a in admitted if isinstance(a, Admitted)
        }
        assert states == {never: ("WAITING", None), lost: ("STARTING", "machine-x")}, states
    finally:
        await db.dispose()
    rows = await cluster.wait_rows([never], "terminal", cluster.lease + 15)
    assert rows[never]["state"] == "SUCCEEDED", cluster.logs()
    assert rows[never]["owner"] in ("replica-a", "replica-b")
    rows = await cluster.wait_rows([lost], "terminal", 2 * cluster.lease + 15)
    assert rows[lost]["state"] == "FAILED"
    message = str(rows[lost]["error_message"])
    assert "replica-x" in message and "machine-x" in message and "unknown" in message, message
    assert "not retried automatically" in message
    # Its lease ran out a lease after the launch, then the orphan grace: a lease more.
    assert float(rows[lost]["updated_at"]) - launched_at >= 2 * cluster.lease - 0.5  # type: ignore[arg-type]
    await asyncio.sleep(cluster.lease)  # a retry would have been admitted with the settlement
    everything = await attempts(cluster)
    assert {r: row[1] for r, row in everything.items()} == {never: 0, lost: 0}, everything
    assert executions(out) == [(never, "-")]
    await catalog_shows(cluster.glue, "orphans-retried", [lost], {"FAILED"}, 10)
