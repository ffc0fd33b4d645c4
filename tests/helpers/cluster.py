"""Scheduler replicas on one PostgreSQL database, with a catalog, as real subprocesses.

Replicas share one data directory (one machine) or each have their own (``separate_sites``:
one machine each, as far as run directories go). Shared by the replica test modules.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from sqlalchemy import select

from glue.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc
from glue.v1 import glue_pb2, glue_pb2_grpc
from scheduler_service.tables import runs
from servicekit.db import Database
from tests.helpers.databases import create_postgres_database, drop_postgres_database
from tests.helpers.processes import ServiceProcess, free_port, kill_machine, wait_healthy
from tests.helpers.scripts import write_script

# Short, so that takeovers happen within a few seconds; renewed every LEASE / 3 seconds.
LEASE = 3.0
# A run's lease may have just been renewed when its owner dies; the reaper polls every second.
TAKEOVER_BOUND = LEASE + 3.0
TERMINAL = {"SUCCEEDED", "FAILED", "TIMEOUT", "STOPPED", "ERROR", "EXPIRED"}
IN_FLIGHT = ("STARTING", "RUNNING", "STOPPING")

# Sleeps --seconds, then appends "<run id> <trigger>" to --out: one line per execution.
RECORDING_JOB = """
import sys, time
argv = sys.argv[1:]
opts = dict(zip(argv[::2], argv[1::2]))
print("started", opts["--JOB_RUN_ID"], flush=True)
time.sleep(float(opts.get("--seconds", "0")))
with open(opts["--out"], "a") as out:
    out.write(opts["--JOB_RUN_ID"] + " " + opts.get("--trigger", "-") + "\\n")
print("finished", flush=True)
"""


def scheduler_process(
    replica_id: str,
    port: int,
    data_dir: Path,
    database_url: str,
    *extra: str,
    lease: float = LEASE,
) -> ServiceProcess:
    """A scheduler replica as a subprocess (not started), with leases of ``lease`` seconds."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return ServiceProcess(
        "scheduler_service",
        [
            "--listen",
            f"127.0.0.1:{port}",
            "--data-dir",
            str(data_dir),
            "--database-url",
            database_url,
            "--replica-id",
            replica_id,
            "--lease-seconds",
            str(lease),
            "--stop-grace",
            "1",
            *extra,
        ],
        data_dir / f"{replica_id}.log",
    )


@dataclass
class Cluster:
    """Replicas A and B on one PostgreSQL database and a catalog given both (it uses A while A
    answers). One data directory for all, or with ``separate_sites`` one each, as if each
    replica ran on a machine of its own."""

    tmp_path: Path
    url: str
    separate_sites: bool = False
    lease: float = LEASE
    """Every replica's lease (and so the orphan grace of runs launched on another site)."""
    data_dir: Path = field(init=False)
    a_port: int = field(default_factory=free_port)
    b_port: int = field(default_factory=free_port)
    catalog_port: int = field(default_factory=free_port)

    def __post_init__(self) -> None:
        self.data_dir = self.tmp_path / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.separate_sites:
            self.a_dir, self.b_dir = self.tmp_path / "machine-a", self.tmp_path / "machine-b"
        else:
            self.a_dir = self.b_dir = self.data_dir
        self.a = scheduler_process("replica-a", self.a_port, self.a_dir, self.url, lease=self.lease)
        self.b = scheduler_process("replica-b", self.b_port, self.b_dir, self.url, lease=self.lease)
        self.catalog = ServiceProcess(
            "catalog_service",
            [
                "--listen",
                f"127.0.0.1:{self.catalog_port}",
                "--data-dir",
                str(self.data_dir),
                "--database-url",
                self.url,
                "--scheduler",
                f"127.0.0.1:{self.a_port},127.0.0.1:{self.b_port}",
                "--reconcile-interval",
                "1",
            ],
            self.data_dir / "catalog.log",
        )
        self.db = Database(self.url)
        self.extra: list[ServiceProcess] = []
        self.runs_dirs = sorted({self.data_dir / "runs", self.a_dir / "runs", self.b_dir / "runs"})

    async def start(self) -> None:
        """Start both replicas, then the catalog; open channels."""
        await asyncio.gather(self.a.start(), self.b.start())
        await wait_healthy(f"127.0.0.1:{self.a_port}")
        await wait_healthy(f"127.0.0.1:{self.b_port}")
        await self.catalog.start()
        await wait_healthy(f"127.0.0.1:{self.catalog_port}")
        self._channels = [
            grpc.aio.insecure_channel(f"127.0.0.1:{port}")
            for port in (self.catalog_port, self.a_port, self.b_port)
        ]
        self.glue = glue_pb2_grpc.GlueStub(self._channels[0])
        self.sched_a = scheduler_pb2_grpc.SchedulerStub(self._channels[1])
        self.sched_b = scheduler_pb2_grpc.SchedulerStub(self._channels[2])

    async def close(self) -> None:
        """Kill every service and everything of every data directory (watchers, caretakers,
        jobs), dispose the engine."""
        for channel in getattr(self, "_channels", []):
            await channel.close()
        for service in (self.catalog, self.a, self.b, *self.extra):
            if service.process is not None and service.process.returncode is None:
                service.process.send_signal(signal.SIGSTOP)
        for runs_dir in self.runs_dirs:
            await kill_machine(runs_dir)
        for service in (self.catalog, self.a, self.b, *self.extra):
            if service.process is not None and service.process.returncode is None:
                await service.kill9()
        await self.db.dispose()

    def logs(self) -> str:
        """The tail of every service's log, for failure messages."""
        paths = [self.a.log_path, self.b.log_path, self.catalog.log_path]
        paths += [s.log_path for s in self.extra]
        return "\n".join(
            f"--- {p.name}\n" + p.read_text(errors="replace")[-3000:] for p in paths if p.exists()
        )

    # -- shortcuts ---------------------------------------------------------------------------

    async def create_job(
        self, name: str, script: Path, max_runs: int, *, max_retries: int = 0, **args: str
    ) -> None:
        """CreateJob through the catalog (which registers it on the scheduler)."""
        await self.glue.CreateJob(
            glue_pb2.CreateJobRequest(
                name=name,
                role="arn:aws:iam::123456789012:role/test",
                command=glue_pb2.JobCommand(name="pythonshell", script_location=str(script)),
                default_arguments=args,
                execution_property=glue_pb2.ExecutionProperty(max_concurrent_runs=max_runs),
                max_retries=max_retries,
            )
        )

    async def recording_jobs(
        self, *names: str, max_runs: int = 5, max_retries: int = 0, **args: str
    ) -> Path:
        """Jobs running RECORDING_JOB, registered on the scheduler; returns the file their
        runs append to (one file, so a run executed twice shows there)."""
        script = write_script(self.tmp_path, "record.py", RECORDING_JOB)
        out = self.tmp_path / "executions.txt"
        for name in names:
            await self.create_job(
                name, script, max_runs, max_retries=max_retries, **{"--out": str(out), **args}
            )
        await self.jobs_registered(*names)
        return out

    async def running_on_b(self, job: str, *seconds: str) -> list[str]:
        """Start one run of ``job`` on replica B per duration in ``seconds``; return their ids
        once B runs them all."""
        ids = [await start_on(self.sched_b, job, **{"--seconds": s}) for s in seconds]
        await self.wait_rows(ids, "match", 20, state="RUNNING", owner="replica-b")
        return ids

    async def jobs_registered(self, *names: str) -> None:
        """Wait until the scheduler's registry (shared by both replicas) holds these jobs."""
        for _ in range(400):
            held = await self.sched_b.ListRegistrations(scheduler_pb2.ListRegistrationsRequest())
            if set(names) <= {r.name for r in held.jobs if not r.deleted}:
                return
            await asyncio.sleep(0.025)
        raise AssertionError(f"jobs {names} never reached the scheduler")

    async def run_rows(self, run_ids: list[str] | None = None) -> dict[str, dict[str, object]]:
        """scheduler_runs rows (all, or these), by run id."""
        query = select(
            runs.c.run_id, runs.c.state, runs.c.owner, runs.c.error_message, runs.c.updated_at
        )
        if run_ids is not None:
            query = query.where(runs.c.run_id.in_(run_ids))
        async with self.db.read() as conn:
            return {r.run_id: dict(r._mapping) for r in await conn.execute(query)}

    async def wait_rows(
        self, run_ids: list[str], done: str, timeout: float, **match: object
    ) -> dict[str, dict[str, object]]:
        """Poll until every run's row satisfies ``done`` ("terminal") or matches ``match``."""
        deadline = time.monotonic() + timeout
        while True:
            rows = await self.run_rows(run_ids)

            def ok(row: dict[str, object] | None) -> bool:
                if row is None:
                    return False
                if done == "terminal" and row["state"] not in TERMINAL:
                    return False
                return all(row[k] == v for k, v in match.items())

            if all(ok(rows.get(r)) for r in run_ids):
                return rows
            if time.monotonic() > deadline:
                pending = {r: rows.get(r) for r in run_ids if not ok(rows.get(r))}
                raise AssertionError(f"runs not {done} {match}: {pending}\n{self.logs()}")
            await asyncio.sleep(0.1)


async def catalog_shows(
    glue: glue_pb2_grpc.GlueStub, job: str, run_ids: list[str], states: set[str], timeout: float
) -> None:
    """Wait until GetJobRun shows each run in one of ``states`` (events arrive through A)."""
    deadline = time.monotonic() + timeout
    for run_id in run_ids:
        while True:
            try:
                run = (
                    await glue.GetJobRun(glue_pb2.GetJobRunRequest(job_name=job, run_id=run_id))
                ).job_run
                if run.job_run_state in states:
                    break
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.NOT_FOUND:
                    raise
            assert time.monotonic() < deadline, f"{run_id} not {states} in the catalog"
            await asyncio.sleep(0.05)


async def start_on(stub: scheduler_pb2_grpc.SchedulerStub, job: str, **arguments: str) -> str:
    """StartRun directly on one replica (as a catalog connected to it would); returns the id."""
    run_id = "jr_" + secrets.token_hex(32)
    await stub.StartRun(
        scheduler_pb2.StartRunRequest(
            run_id=run_id,
            request=glue_pb2.StartJobRunRequest(job_name=job, arguments=arguments),
        )
    )
    return run_id


def executions(out: Path) -> list[tuple[str, str]]:
    """(run id, trigger) per line the job scripts wrote."""
    if not out.exists():
        return []
    return [(line.split()[0], line.split()[1]) for line in out.read_text().splitlines() if line]


@contextlib.asynccontextmanager
async def running_cluster(
    tmp_path: Path, *, separate_sites: bool, lease: float = LEASE
) -> AsyncIterator[Cluster]:
    """Two replicas and a catalog on a fresh PostgreSQL database, all killed at the end."""
    url = await create_postgres_database()
    c = Cluster(tmp_path, url, separate_sites=separate_sites, lease=lease)
    try:
        await c.start()
        yield c
    finally:
        await c.close()
        await drop_postgres_database(url)
