"""The figures measured against the catalog and scheduler services, on one database backend.

The two services run as subprocesses (``python -m scheduler_service`` / ``python -m
catalog_service``) on a fresh database: a new PostgreSQL database shared by both, or two
SQLite files in a temporary data directory. Each backend uses two such stacks, so that no
figure inherits another's backlog:

stack A
    1. StartJobRun-to-SUCCEEDED latency, one run at a time, GetJobRun polled every 5 ms;
    2. GetJobRun/s of one finished run;
    3. trivial runs completed/s: N runs started at once, first start to last SUCCEEDED as the
       catalog shows it (GetJobRuns polling);
    4. StartJobRun/s on jobs with MaxConcurrentRuns=1000 and a ``pass`` script; the runs
       execute (and queue as WAITING) while the figure is measured. The services are then
       stopped: the queue is abandoned with the database.

stack B
    5. CreateJob/s with unique names;
    6. StartJobRun/s with every process slot held by a parked run, so that every accepted run
       waits: the cost of admission alone, with no interpreter starts competing for the CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import grpc

from bench.load import Figure, closed_loop, percentile
from bench.procs import (
    CpuMeter,
    Service,
    create_database,
    drop_database,
    free_port,
    sqlalchemy_url,
    wait_serving,
)
from glue.v1 import glue_pb2, glue_pb2_grpc

if TYPE_CHECKING:
    from glue.v1.glue_pb2_grpc import GlueAsyncStub

TERMINAL = {"SUCCEEDED", "FAILED", "TIMEOUT", "STOPPED", "ERROR", "EXPIRED"}
ROLE = "arn:aws:iam::123456789012:role/glue-bench"
CALL_TIMEOUT = 30.0
RUN_TIMEOUT = 30.0
"""Seconds a trivial run may take before the benchmark calls it stuck."""

HOLD_SCRIPT = """\
import os, time
deadline = time.monotonic() + 300
while not os.path.exists({release!r}) and time.monotonic() < deadline:
    time.sleep(0.05)
"""


@dataclass(frozen=True, slots=True)
class BenchConfig:
    """What to measure and how hard."""

    concurrency: int = 64
    """Calls in flight in the closed-loop figures."""
    channels: int = 1
    """grpc.aio channels the calls are spread over."""
    duration: float = 5.0
    """Seconds each closed-loop figure is measured for."""
    warmup: float = 0.5
    """Seconds of the same load before each closed-loop figure, not counted."""
    trivial_runs: int = 200
    """Runs started at once for the runs-completed/s figure."""
    sequential_runs: int = 20
    """Runs measured one at a time for the StartJobRun-to-SUCCEEDED latency."""
    max_processes: int = 8
    """The scheduler's --max-processes."""
    start_jobs: int = 16
    """Jobs the StartJobRun figures spread their runs over (each MaxConcurrentRuns=1000)."""
    log_level: str = "INFO"
    """The services' --log-level."""


# The services' per-identity quotas in the bench (see running_stack).
BENCH_QUOTA = 10_000_000
# The jobs' program for the run path's own figure (measure_backend): no interpreter to start.
RUN_PATH_ALONE_JOB = "/bin/true"


@dataclass
class Stack:
    """Both services running as subprocesses, and client stubs to the catalog."""

    backend: str
    root: Path
    scheduler: Service
    catalog: Service
    address: str
    stubs: list[GlueAsyncStub]
    http_port: int | None = None
    """The catalog's ``--http-listen`` gateway port (127.0.0.1), if it was started with one."""

    def stub(self, i: int = 0) -> GlueAsyncStub:
        """The stub of call ``i`` (calls are spread over the channels)."""
        return self.stubs[i % len(self.stubs)]

    def meter(self) -> CpuMeter:
        """A CPU meter of this stack's processes."""
        return CpuMeter(
            {"catalog": self.catalog.pid, "scheduler": self.scheduler.pid},
            postgres=self.backend == "postgres",
        )

    @property
    def scripts(self) -> Path:
        """Where the job scripts are."""
        return self.root / "scripts"

    @property
    def release_file(self) -> Path:
        """Created to let parked (HOLD_SCRIPT) runs end."""
        return self.root / "release-holders"

    # -- Glue calls ----------------------------------------------------------------------------

    async def create_job(
        self, name: str, script: Path, max_concurrent_runs: int, i: int = 0
    ) -> None:
        """CreateJob: a pythonshell job running ``script``."""
        await self.stub(i).CreateJob(
            glue_pb2.CreateJobRequest(
                name=name,
                role=ROLE,
                command=glue_pb2.JobCommand(name="pythonshell", script_location=str(script)),
                execution_property=glue_pb2.ExecutionProperty(
                    max_concurrent_runs=max_concurrent_runs
                ),
            ),
            timeout=CALL_TIMEOUT,
        )

    async def start_run(self, job: str, i: int = 0) -> str:
        """StartJobRun; the run id."""
        response = await self.stub(i).StartJobRun(
            glue_pb2.StartJobRunRequest(job_name=job), timeout=CALL_TIMEOUT
        )
        return response.job_run_id

    async def get_run(self, job: str, run_id: str, i: int = 0) -> glue_pb2.JobRun:
        """GetJobRun."""
        response = await self.stub(i).GetJobRun(
            glue_pb2.GetJobRunRequest(job_name=job, run_id=run_id), timeout=CALL_TIMEOUT
        )
        return response.job_run

    async def list_runs(self, job: str) -> list[glue_pb2.JobRun]:
        """Every run of ``job`` (GetJobRuns, all pages)."""
        runs: list[glue_pb2.JobRun] = []
        token: str | None = None
        while True:
            request = glue_pb2.GetJobRunsRequest(job_name=job, max_results=200)
            if token:
                request.next_token = token
            response = await self.stub().GetJobRuns(request, timeout=CALL_TIMEOUT)
            runs.extend(response.job_runs)
            if not response.HasField("next_token") or not response.next_token:
                return runs
            token = response.next_token

    async def wait_state(
        self, job: str, run_id: str, states: set[str], timeout: float = 60.0
    ) -> glue_pb2.JobRun:
        """Poll GetJobRun (every 20 ms) until the run is in one of ``states``."""
        deadline = time.monotonic() + timeout
        while True:
            run = await self.get_run(job, run_id)
            if run.job_run_state in states:
                return run
            if time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} of {job} stuck in {run.job_run_state}")
            await asyncio.sleep(0.02)


@asynccontextmanager
async def running_stack(
    backend: str,
    root: Path,
    config: BenchConfig,
    *,
    http_gateway: bool = False,
    job_python: str | None = None,
) -> AsyncIterator[Stack]:
    """Both services on a fresh database; everything is stopped and dropped on the way out.

    With ``http_gateway`` the catalog also serves its AWS JSON HTTP gateway (``--http-listen``
    on a free loopback port, ``Stack.http_port``), waited for like its gRPC port.
    ``job_python`` is the scheduler's ``--python`` (the program pythonshell jobs run under).
    """
    _make_dir(root)
    data_dir = root / "data"
    async with AsyncExitStack() as exits:
        if backend == "postgres":
            db_name = await create_database("glue_bench")
            exits.push_async_callback(drop_database, db_name)
            catalog_url = scheduler_url = sqlalchemy_url(db_name)
        else:
            catalog_url = f"sqlite+aiosqlite:///{data_dir / 'catalog.db'}"
            scheduler_url = f"sqlite+aiosqlite:///{data_dir / 'scheduler.db'}"
        scheduler_address = f"127.0.0.1:{free_port()}"
        catalog_address = f"127.0.0.1:{free_port()}"
        http_port = free_port() if http_gateway else None
        http_args = ["--http-listen", f"127.0.0.1:{http_port}"] if http_port is not None else []
        python_args = ["--python", job_python] if job_python is not None else []
        scheduler = Service(
            "scheduler_service",
            "scheduler_service",
            [
                "--listen",
                scheduler_address,
                "--data-dir",
                str(data_dir),
                "--database-url",
                scheduler_url,
                "--max-processes",
                str(config.max_processes),
                "--stop-grace",
                "1",
                "--log-level",
                config.log_level,
                *python_args,
            ],
            root / "scheduler.log",
        )
        catalog = Service(
            "catalog_service",
            "catalog_service",
            [
                "--listen",
                catalog_address,
                *http_args,
                "--data-dir",
                str(data_dir),
                "--database-url",
                catalog_url,
                "--scheduler",
                scheduler_address,
                # On a fast machine the CreateJob and admission-only figures pass the default
                # quotas (10,000 jobs, 10,000 waiting runs per identity) and would then measure
                # refusals; quotas this high are still counted as the defaults are.
                "--max-jobs-per-identity",
                str(BENCH_QUOTA),
                "--max-waiting-runs-per-identity",
                str(BENCH_QUOTA),
                "--log-level",
                config.log_level,
            ],
            root / "catalog.log",
        )
        stack = Stack(backend, root, scheduler, catalog, catalog_address, [], http_port)
        # Exit order (last pushed runs first): channels, catalog, scheduler, parked runs.
        exits.push_async_callback(_finish_runs, stack, data_dir / "runs")
        exits.push_async_callback(scheduler.stop)
        await scheduler.start()
        await wait_serving(scheduler_address, scheduler)
        exits.push_async_callback(catalog.stop)
        await catalog.start()
        await wait_serving(catalog_address, catalog)
        if http_port is not None:
            await wait_listening(http_port, catalog)
        for _ in range(config.channels):
            channel = grpc.aio.insecure_channel(catalog_address)
            exits.push_async_callback(channel.close)
            stack.stubs.append(glue_pb2_grpc.GlueStub(channel))
        stack.scripts.mkdir()
        (stack.scripts / "trivial.py").write_text("pass\n")
        (stack.scripts / "hold.py").write_text(HOLD_SCRIPT.format(release=str(stack.release_file)))
        yield stack


async def _finish_runs(stack: Stack, runs_dir: Path, timeout: float = 15.0) -> None:
    """Let parked runs end and wait until every started run's supervisor has recorded its exit.

    Supervisors outlive the scheduler by design; waiting for them keeps them from writing into
    a directory that is about to be removed.
    """
    stack.release_file.touch()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _supervisors_busy(runs_dir):
            return
        await asyncio.sleep(0.1)


async def wait_listening(port: int, service: Service, timeout: float = 60.0) -> None:
    """Wait until something accepts TCP connections on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout
    while True:
        if service.process is None or service.process.returncode is not None:
            raise RuntimeError(
                f"{service.name} exited before listening on {port}; its output:\n"
                + service.log_tail()
            )
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{service.name} did not listen on {port} within {timeout:.0f}s; its "
                    f"output:\n{service.log_tail()}"
                ) from None
            await asyncio.sleep(0.05)
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return


def _make_dir(path: Path) -> None:
    path.mkdir(parents=True)


def _supervisors_busy(runs_dir: Path) -> bool:
    """True while some run's supervisor has claimed its directory but not recorded an exit."""
    if not runs_dir.is_dir():
        return False
    return any(
        (d / "supervisor.json").exists() and not (d / "exit.json").exists()
        for d in runs_dir.iterdir()
    )


# -- figures -------------------------------------------------------------------------------------


async def sequential_latency(stack: Stack, config: BenchConfig) -> tuple[Figure, tuple[str, str]]:
    """StartJobRun-to-SUCCEEDED, one trivial run at a time; returns the figure and a run.

    A run that is not terminal after ``RUN_TIMEOUT`` seconds ends the figure (a stuck run
    means the next ones would be stuck too).
    """
    figure = Figure(
        stack.backend, "start_to_succeeded", "StartJobRun -> SUCCEEDED, one at a time", "runs"
    )
    job = "bench-seq"
    await stack.create_job(job, stack.scripts / "trivial.py", 1)
    acks: list[float] = []
    ended: list[float] = []
    last: tuple[str, str] = (job, "")
    warm = 2
    start = time.perf_counter()
    for n in range(warm + config.sequential_runs):
        if n == warm:
            start = time.perf_counter()
        wall0 = time.time()
        t0 = time.perf_counter()
        try:
            run_id = await stack.start_run(job)
            last = (job, run_id)
            t_ack = time.perf_counter()
            while True:
                run = await stack.get_run(job, run_id)
                if run.job_run_state in TERMINAL:
                    break
                if time.perf_counter() - t0 > RUN_TIMEOUT:
                    raise TimeoutError(
                        f"run {run_id} still {run.job_run_state} after {RUN_TIMEOUT:.0f} s"
                    )
                await asyncio.sleep(0.005)
        except grpc.aio.AioRpcError as exc:
            figure.record_error(exc)
            continue
        except TimeoutError as exc:
            figure.record_error(exc)
            break
        t_seen = time.perf_counter()
        if run.job_run_state != "SUCCEEDED":
            figure.record_error(RuntimeError(f"{run.job_run_state}: {run.error_message}"))
            continue
        if n < warm:
            continue
        figure.ok += 1
        figure.latencies.append(t_seen - t0)
        acks.append(t_ack - t0)
        if run.HasField("completed_on"):
            ended.append(run.completed_on.ToNanoseconds() / 1e9 - wall0)
    figure.elapsed = time.perf_counter() - start
    figure.extra = {
        "StartJobRun answered p50 ms": percentile(acks, 50) * 1000,
        "CompletedOn (server clock) p50 ms": percentile(ended, 50) * 1000,
    }
    figure.note = (
        "latency = StartJobRun sent -> GetJobRun shows SUCCEEDED (polled every 5 ms); "
        f"StartJobRun answered after p50 {figure.extra['StartJobRun answered p50 ms']:.1f} ms, "
        f"CompletedOn p50 {figure.extra['CompletedOn (server clock) p50 ms']:.1f} ms after send"
    )
    return figure, last


async def get_job_run(stack: Stack, config: BenchConfig, job: str, run_id: str) -> Figure:
    """GetJobRun/s of one finished run."""
    figure = Figure(stack.backend, "get_job_run", "GetJobRun/s (one finished run)", "calls")

    async def call(i: int) -> object:
        return await stack.get_run(job, run_id, i)

    return await closed_loop(
        figure,
        call,
        concurrency=config.concurrency,
        duration=config.duration,
        warmup=config.warmup,
        meter=stack.meter(),
    )


async def create_job(stack: Stack, config: BenchConfig) -> Figure:
    """CreateJob/s with unique names."""
    figure = Figure(stack.backend, "create_job", "CreateJob/s (unique names)", "calls")
    script = stack.scripts / "trivial.py"

    async def call(i: int) -> object:
        await stack.create_job(f"bench-create-{i:07d}", script, 1, i)
        return None

    return await closed_loop(
        figure,
        call,
        concurrency=config.concurrency,
        duration=config.duration,
        warmup=config.warmup,
        meter=stack.meter(),
    )


async def start_job_run(stack: Stack, config: BenchConfig, *, slots_held: bool) -> Figure:
    """StartJobRun/s spread over ``start_jobs`` jobs with MaxConcurrentRuns=1000."""
    if slots_held:
        key, name = "start_job_run_held", "StartJobRun/s, all slots held (admission only)"
    else:
        key, name = "start_job_run", "StartJobRun/s (runs execute meanwhile)"
    figure = Figure(stack.backend, key, name, "calls")
    jobs = [f"bench-start-{k:02d}" for k in range(config.start_jobs)]
    await asyncio.gather(
        *(stack.create_job(job, stack.scripts / "trivial.py", 1000) for job in jobs)
    )
    if slots_held:
        await _hold_slots(stack, config.max_processes)
    accepted: list[tuple[str, str]] = []

    async def call(i: int) -> object:
        job = jobs[i % len(jobs)]
        accepted.append((job, await stack.start_run(job, i)))
        return None

    await closed_loop(
        figure,
        call,
        concurrency=config.concurrency,
        duration=config.duration,
        warmup=config.warmup,
        meter=stack.meter(),
    )
    states: dict[str, int] = {}
    if accepted:
        # The state of the newest accepted runs: how far execution lagged behind admission.
        sample = accepted[-20:]
        runs = await asyncio.gather(*(stack.get_run(job, rid) for job, rid in sample))
        for run in runs:
            states[run.job_run_state] = states.get(run.job_run_state, 0) + 1
    figure.extra = {"runs accepted (incl. warm-up)": float(len(accepted))}
    figure.note = (
        f"{len(accepted)} runs accepted over {len(jobs)} jobs; newest 20 are "
        + ", ".join(f"{count} {state}" for state, count in sorted(states.items()))
    )
    if slots_held:
        figure.note += f"; {config.max_processes} parked runs hold every process slot"
    else:
        figure.note += "; the backlog is abandoned when the services stop"
    return figure


async def _hold_slots(stack: Stack, slots: int) -> None:
    """Start ``slots`` parked runs and wait until all of them are RUNNING."""
    job = "bench-hold"
    await stack.create_job(job, stack.scripts / "hold.py", slots)
    run_ids = [await stack.start_run(job) for _ in range(slots)]
    await asyncio.gather(
        *(stack.wait_state(job, rid, {"RUNNING"}, timeout=RUN_TIMEOUT) for rid in run_ids)
    )


async def trivial_runs_completed(
    stack: Stack, config: BenchConfig, *, key: str = "trivial_runs", name: str = ""
) -> Figure:
    """N trivial runs started at once: first StartJobRun sent to last SUCCEEDED seen."""
    n = config.trivial_runs
    name = name or f"trivial runs completed/s ({n} started at once)"
    figure = Figure(stack.backend, key, name, "runs")
    jobs = [f"bench-trivial-{k}" for k in range(4)]
    await asyncio.gather(
        *(stack.create_job(job, stack.scripts / "trivial.py", 1000) for job in jobs)
    )
    meter = stack.meter()
    before = meter.snapshot()
    numbers = itertools.count()
    started: dict[str, str] = {}  # run id -> job

    async def starter() -> None:
        while (i := next(numbers)) < n:
            job = jobs[i % len(jobs)]
            try:
                started[await stack.start_run(job, i)] = job
            except grpc.aio.AioRpcError as exc:
                figure.record_error(exc)

    t0 = time.perf_counter()
    await asyncio.gather(*(starter() for _ in range(min(config.concurrency, n))))
    t_started = time.perf_counter()
    pending = set(started)
    first_start = last_end = None
    deadline = time.monotonic() + RUN_TIMEOUT + n / 10
    while pending and time.monotonic() < deadline:
        for runs in await asyncio.gather(*(stack.list_runs(job) for job in jobs)):
            for run in runs:
                if run.id not in pending or run.job_run_state not in TERMINAL:
                    continue
                pending.discard(run.id)
                if run.job_run_state == "SUCCEEDED":
                    figure.ok += 1
                    started_on = run.started_on.ToNanoseconds() / 1e9
                    ended_on = run.completed_on.ToNanoseconds() / 1e9
                    first_start = min(first_start or started_on, started_on)
                    last_end = max(last_end or ended_on, ended_on)
                else:
                    figure.record_error(RuntimeError(f"{run.job_run_state}: {run.error_message}"))
        if pending:
            await asyncio.sleep(0.05)
    t_done = time.perf_counter()
    figure.elapsed = t_done - t0
    figure.cpu = meter.cores(before, meter.snapshot())
    if pending:
        figure.errors["not terminal in time"] += len(pending)
        figure.first_error = figure.first_error or f"{len(pending)} runs never ended"
    figure.extra = {"all StartJobRun answered after s": t_started - t0}
    if first_start is not None and last_end is not None:
        figure.extra["server span StartedOn->CompletedOn s"] = last_end - first_start
    figure.note = (
        f"first StartJobRun sent -> last SUCCEEDED seen (GetJobRuns every 50 ms): "
        f"{figure.elapsed:.2f} s; all {n} StartJobRun answered after {t_started - t0:.2f} s"
    )
    return figure


async def measure_backend(
    backend: str, work_dir: Path, config: BenchConfig, out: list[Figure]
) -> None:
    """Every service figure on one backend, appended to ``out`` as each is measured.

    A figure that fails is recorded as a failed line; the others are still measured.
    """

    async def guarded(key: str, name: str, coro: Awaitable[Figure]) -> None:
        try:
            out.append(await coro)
        except (grpc.aio.AioRpcError, TimeoutError, RuntimeError) as exc:
            failed = Figure(backend, key, name + " - FAILED", "calls")
            failed.record_error(exc)
            out.append(failed)

    async with running_stack(backend, work_dir / f"{backend}-a", config) as stack:
        try:
            seq, (job, run_id) = await sequential_latency(stack, config)
            out.append(seq)
        except (grpc.aio.AioRpcError, TimeoutError, RuntimeError) as exc:
            failed = Figure(
                backend, "start_to_succeeded", "StartJobRun -> SUCCEEDED - FAILED", "runs"
            )
            failed.record_error(exc)
            out.append(failed)
            job, run_id = "bench-seq", ""
        await guarded("get_job_run", "GetJobRun/s", get_job_run(stack, config, job, run_id))
        await guarded(
            "trivial_runs", "trivial runs completed/s", trivial_runs_completed(stack, config)
        )
        await guarded(
            "start_job_run", "StartJobRun/s", start_job_run(stack, config, slots_held=False)
        )
    # The same trivial runs with every job's program /bin/true instead of an interpreter: what
    # the run path costs by itself, against the spawn it would otherwise contain.
    alone = f"trivial runs completed/s, job {RUN_PATH_ALONE_JOB}"
    async with running_stack(
        backend, work_dir / f"{backend}-c", config, job_python=RUN_PATH_ALONE_JOB
    ) as stack:
        await guarded(
            "trivial_runs_alone",
            alone,
            trivial_runs_completed(stack, config, key="trivial_runs_alone", name=alone),
        )
    async with running_stack(backend, work_dir / f"{backend}-b", config) as stack:
        await guarded("create_job", "CreateJob/s", create_job(stack, config))
        await guarded(
            "start_job_run_held",
            "StartJobRun/s, all slots held",
            start_job_run(stack, config, slots_held=True),
        )
