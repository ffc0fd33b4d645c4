"""The trigger figures: a 10,000-trigger burst, 100,000 triggers at rest and across a restart.

Everything here runs against the scheduler service ALONE (``python -m scheduler_service`` as a
subprocess, no catalog): jobs and triggers are registered straight on its internal API
(AddJob / AddTrigger, as the catalog would push them), and the figures are read from its own
tables afterwards (``scheduler_trigger_fires`` is the fire ledger, ``scheduler_runs.created_at``
a run's StartedOn, ``scheduler_triggers.next_fire_at`` the due-time index). So the catalog's
event consumer (WatchRunEvents -> catalog tables) is NOT part of the load.

burst
    ``burst_jobs`` jobs (MaxConcurrentRuns 1000, script ``pass``) and ``burst_triggers``
    ACTIVATED SCHEDULED triggers, each with one action, all with the schedule
    ``cron(M H * * ? *)`` of one minute boundary D chosen far enough ahead that registration
    ends at least ``min_lead`` seconds before it. Registered by concurrent AddTrigger calls.
    After D the ledger is polled until every trigger has a FIRED row for D, or ``miss_after``
    seconds passed: a trigger without one is a missed fire. Lateness of a fire = the StartedOn
    (``created_at``) of its run minus D. The runs execute meanwhile, at most ``max_processes``
    at a time; the backlog is abandoned with the database.

scale
    ``scale_triggers`` ACTIVATED SCHEDULED triggers with daily schedules spread over the day
    (none due within the next 15 minutes). Registered either in bulk straight into the
    scheduler's table (``db``: the row ``registry.upsert_trigger`` would write, computed with
    the scheduler's own code - AddTrigger at the burst's measured rate would take minutes) or
    by concurrent AddTrigger calls (``rpc``). Then: the scheduler's RSS at rest; SIGTERM;
    FAULT INJECTION: ``restart_due`` triggers get ``next_fire_at`` = the instant the new
    process is spawned (plus ``restart_due_after``), written directly into the table while no
    scheduler runs, as if the process had been down over their due time; start it again and
    measure the time from spawn to SERVING and to the first FIRED ledger row for those due
    times; then its RSS at rest.

apscheduler
    The same numbers for plain APScheduler 3.11 (``bench.apscheduler_baseline``, each in its
    own subprocess). The burst waits for a minute boundary; the baselines run in that wait
    when they fit, so the machine is otherwise idle while they are measured.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bench.glue_figures import _supervisors_busy
from bench.load import percentile
from bench.procs import (
    CpuMeter,
    Service,
    create_database,
    drop_database,
    free_port,
    sqlalchemy_url,
    wait_serving,
)
from glue.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc
from glue.v1 import glue_pb2
from glue_vocabulary.shapes import to_glue
from scheduler_service import registry
from scheduler_service.tables import runs, trigger_fires, triggers

if TYPE_CHECKING:
    from glue.scheduler.v1.scheduler_pb2_grpc import SchedulerAsyncStub

ROLE = "arn:aws:iam::123456789012:role/glue-bench"
CALL_TIMEOUT = 60.0
ASSUMED_REGISTER_RATE = 400.0
"""AddTrigger/s assumed when choosing the burst's minute (conservative: ~600/s measured)."""
SETTLE_SECONDS = 3.0
"""Idle time before an RSS 'at rest' is read."""
MB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class TriggerConfig:
    """What the trigger figures measure and how hard."""

    backends: tuple[str, ...] = ("postgres",)
    burst_triggers: int = 10_000
    burst_jobs: int = 100
    scale_triggers: int = 100_000
    scale_register: str = "db"
    """``db`` (bulk rows) or ``rpc`` (AddTrigger calls) for the scale figure's triggers."""
    restart_due: int = 100
    restart_due_after: float = 0.0
    miss_after: float = 30.0
    min_lead: float = 20.0
    register_concurrency: int = 64
    max_processes: int = 8
    log_level: str = "INFO"
    apscheduler: bool = True
    burst: bool = True
    scale: bool = True


@dataclass
class TriggerFigure:
    """One line of the trigger table."""

    group: str
    """``postgres``, ``sqlite`` or ``apscheduler``."""
    key: str
    name: str
    n: int | None = None
    missed: int | None = None
    p50_s: float = math.nan
    p99_s: float = math.nan
    max_s: float = math.nan
    value: float = math.nan
    unit: str = ""
    cpu: dict[str, float] = field(default_factory=dict)
    note: str = ""
    error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """For the JSON file."""
        return {
            "group": self.group,
            "key": self.key,
            "name": self.name,
            "n": self.n,
            "missed": self.missed,
            "p50_s": self.p50_s,
            "p99_s": self.p99_s,
            "max_s": self.max_s,
            "value": self.value,
            "unit": self.unit,
            "cpu_cores": self.cpu,
            "note": self.note,
            "error": self.error,
            "extra": self.extra,
        }


Progress = Callable[[str], None]


def rss_bytes(pid: int | None) -> int | None:
    """VmRSS of a process (None if it is gone)."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%H:%M:%S")


# -- a scheduler alone ------------------------------------------------------------------------


@dataclass
class SchedulerAlone:
    """The scheduler service as a subprocess on its own database, a stub, and a DB engine."""

    backend: str
    root: Path
    service: Service
    address: str
    engine: AsyncEngine
    stub: SchedulerAsyncStub
    channel: grpc.aio.Channel

    @property
    def pid(self) -> int | None:
        """The scheduler's pid while it runs."""
        return self.service.pid

    def meter(self) -> CpuMeter:
        """CPU of the scheduler (and PostgreSQL)."""
        return CpuMeter({"scheduler": self.service.pid}, postgres=self.backend == "postgres")

    async def start(self) -> float:
        """Spawn the scheduler; returns the wall-clock instant just before the spawn."""
        spawned = time.time()
        await self.service.start()
        return spawned

    async def add_jobs(self, names: list[str], script: Path, max_concurrent_runs: int) -> None:
        """AddJob for each name (pythonshell, ``script``), version 1."""
        for name in names:
            job = glue_pb2.Job(
                name=name,
                role=ROLE,
                command=glue_pb2.JobCommand(name="pythonshell", script_location=str(script)),
                execution_property=glue_pb2.ExecutionProperty(
                    max_concurrent_runs=max_concurrent_runs
                ),
            )
            registration = scheduler_pb2.JobRegistration(
                job=job, version=1, incarnation=f"bench-{name}"
            )
            await self.stub.AddJob(
                scheduler_pb2.AddJobRequest(registration=registration), timeout=CALL_TIMEOUT
            )


@asynccontextmanager
async def scheduler_alone(
    backend: str, root: Path, config: TriggerConfig, *, extra_args: list[str] | None = None
) -> AsyncIterator[SchedulerAlone]:
    """A scheduler (no catalog) on a fresh database, SERVING; all removed on the way out."""
    _make_dirs(root)
    data_dir = root / "data"
    async with AsyncExitStack() as exits:
        if backend == "postgres":
            db_name = await create_database("glue_bench_trig")
            exits.push_async_callback(drop_database, db_name)
            url = sqlalchemy_url(db_name)
        else:
            _make_dirs(data_dir)
            url = f"sqlite+aiosqlite:///{data_dir / 'scheduler.db'}"
        address = f"127.0.0.1:{free_port()}"
        service = Service(
            "scheduler_service",
            "scheduler_service",
            [
                "--listen",
                address,
                "--data-dir",
                str(data_dir),
                "--database-url",
                url,
                "--max-processes",
                str(config.max_processes),
                "--stop-grace",
                "1",
                "--log-level",
                config.log_level,
                *(extra_args or []),
            ],
            root / "scheduler.log",
        )
        engine = create_async_engine(url)
        exits.push_async_callback(engine.dispose)
        exits.push_async_callback(_wait_supervisors, data_dir / "runs")
        exits.push_async_callback(service.stop)
        channel = grpc.aio.insecure_channel(address)
        exits.push_async_callback(channel.close)
        alone = SchedulerAlone(
            backend,
            root,
            service,
            address,
            engine,
            scheduler_pb2_grpc.SchedulerStub(channel),
            channel,
        )
        await alone.start()
        await wait_serving(address, service)
        _write_script(root / "scripts" / "trivial.py", "pass\n")
        yield alone


async def _wait_supervisors(runs_dir: Path, timeout: float = 15.0) -> None:
    """Let runs already started finish writing before their directory is removed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _supervisors_busy(runs_dir):
            return
        await asyncio.sleep(0.1)


def _make_dirs(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)


def _write_script(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


async def wait_serving_promptly(address: str, service: Service, timeout: float = 60.0) -> None:
    """``procs.wait_serving`` without gRPC's reconnect backoff (1 s after a refused connect,
    which would inflate a measured time to SERVING): a fresh channel per 20 ms attempt."""
    deadline = time.monotonic() + timeout
    while True:
        if service.process is None or service.process.returncode is not None:
            raise RuntimeError(f"{service.name} exited; its output:\n{service.log_tail()}")
        async with grpc.aio.insecure_channel(address) as channel:
            try:
                response = await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=0.5
                )
                if response.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{service.name} did not serve within {timeout:.0f} s")
        await asyncio.sleep(0.02)


def trigger_message(name: str, schedule: str, job: str) -> glue_pb2.Trigger:
    """An ACTIVATED SCHEDULED trigger with one action."""
    return glue_pb2.Trigger(
        name=name,
        type="SCHEDULED",
        state="ACTIVATED",
        schedule=schedule,
        actions=[glue_pb2.Action(job_name=job)],
    )


@dataclass
class Registration:
    """How a batch of AddTrigger calls went."""

    ok: int = 0
    seconds: float = math.nan
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    first_error: str = ""
    cpu: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        """AddTrigger calls answered per second."""
        return self.ok / self.seconds if self.ok and self.seconds else math.nan


async def add_triggers(
    alone: SchedulerAlone, messages: list[glue_pb2.Trigger], concurrency: int
) -> Registration:
    """AddTrigger (version 1) for every message, ``concurrency`` calls in flight."""
    result = Registration()
    pending = iter(messages)
    meter = alone.meter()

    async def worker() -> None:
        for message in pending:
            request = scheduler_pb2.AddTriggerRequest(
                registration=scheduler_pb2.TriggerRegistration(trigger=message, version=1)
            )
            t0 = time.perf_counter()
            try:
                await alone.stub.AddTrigger(request, timeout=CALL_TIMEOUT)
            except grpc.aio.AioRpcError as exc:
                result.errors[exc.code().name] += 1
                result.first_error = result.first_error or f"{exc.code().name}: {exc.details()}"
                continue
            result.latencies.append(time.perf_counter() - t0)
            result.ok += 1

    before = meter.snapshot()
    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    result.seconds = time.perf_counter() - t0
    result.cpu = meter.cores(before, meter.snapshot())
    return result


async def seed_triggers(alone: SchedulerAlone, messages: list[glue_pb2.Trigger]) -> float:
    """Write the rows AddTrigger would write, in bulk, straight into the due-time index.

    The values are computed as ``registry.upsert_trigger`` computes them (the Glue-form JSON
    definition, ``next_fire_at`` from ``registry.next_fire_time``). Returns the seconds taken.
    """
    t0 = time.perf_counter()
    now = time.time()
    rows = [
        {
            "name": message.name,
            "version": 1,
            "deleted": False,
            "definition": json.dumps(to_glue(message), default=str),
            "updated_at": now,
            "type": message.type,
            "state": message.state,
            "next_fire_at": registry.next_fire_time(message.schedule, now),
            "activated_at": now,
        }
        for message in messages
    ]
    dialect = postgresql if alone.backend == "postgres" else sqlite
    async with alone.engine.begin() as conn:
        for start in range(0, len(rows), 5000):
            await conn.execute(dialect.insert(triggers), rows[start : start + 5000])
    return time.perf_counter() - t0


async def count_scheduled(alone: SchedulerAlone) -> int:
    """ACTIVATED triggers with a due time in the index."""
    async with alone.engine.connect() as conn:
        value = await conn.scalar(
            select(func.count())
            .select_from(triggers)
            .where(triggers.c.state == "ACTIVATED")
            .where(triggers.c.next_fire_at.is_not(None))
        )
    return int(value or 0)


async def count_fired(alone: SchedulerAlone, fire_key: str) -> int:
    """FIRED ledger rows with this fire key."""
    async with alone.engine.connect() as conn:
        value = await conn.scalar(
            select(func.count())
            .select_from(trigger_fires)
            .where(trigger_fires.c.fire_key == fire_key)
            .where(trigger_fires.c.outcome == "FIRED")
        )
    return int(value or 0)


# -- burst --------------------------------------------------------------------------------------


@dataclass
class GapFiller:
    """Work to run while waiting for a minute boundary, if it fits (the APScheduler runs)."""

    jobs: list[tuple[float, Callable[[], Awaitable[None]]]] = field(default_factory=list)

    async def fill(self, until: float, margin: float = 6.0) -> None:
        """Run queued jobs, each only if it should end ``margin`` s before ``until`` (epoch)."""
        remaining = []
        for expected, job in self.jobs:
            if time.time() + expected + margin < until:
                await job()
            else:
                remaining.append((expected, job))
        self.jobs = remaining

    async def drain(self) -> None:
        """Run whatever did not fit."""
        for _, job in self.jobs:
            await job()
        self.jobs = []


async def burst(
    backend: str,
    work_dir: Path,
    config: TriggerConfig,
    out: list[TriggerFigure],
    gap: GapFiller,
    progress: Progress,
) -> None:
    """The burst figures (see the module docstring)."""
    n = config.burst_triggers
    async with scheduler_alone(backend, work_dir / f"burst-{backend}", config) as alone:
        jobs = [f"bench-trig-job-{k:03d}" for k in range(config.burst_jobs)]
        await alone.add_jobs(jobs, alone.root / "scripts" / "trivial.py", 1000)
        rss_idle = rss_bytes(alone.pid)

        lead = config.min_lead + n / ASSUMED_REGISTER_RATE
        due = float(math.ceil((time.time() + lead) / 60) * 60)
        when = datetime.fromtimestamp(due, UTC)
        schedule = f"cron({when.minute} {when.hour} * * ? *)"
        progress(
            f"  burst on {backend}: registering {n:,} triggers {schedule} "
            f"(due {_iso(due)}Z, in {due - time.time():.0f} s)"
        )
        messages = [
            trigger_message(f"burst-{i:05d}", schedule, jobs[i % len(jobs)]) for i in range(n)
        ]
        reg = await add_triggers(alone, messages, config.register_concurrency)
        registered_at = time.time()
        key = registry.fire_key_for_instant(due)
        async with alone.engine.connect() as conn:
            on_time = int(
                await conn.scalar(
                    select(func.count())
                    .select_from(triggers)
                    .where(triggers.c.next_fire_at == due)
                    .where(triggers.c.state == "ACTIVATED")
                )
                or 0
            )
        out.append(
            TriggerFigure(
                backend,
                "add_trigger",
                f"AddTrigger/s registering {n:,} ({config.register_concurrency} in flight)",
                n=reg.ok,
                p50_s=percentile(reg.latencies, 50),
                p99_s=percentile(reg.latencies, 99),
                max_s=max(reg.latencies) if reg.latencies else math.nan,
                value=reg.rate,
                unit="/s",
                cpu=reg.cpu,
                error=(
                    f"errors {dict(reg.errors)}; first: {reg.first_error}" if reg.errors else ""
                ),
                note=f"{reg.ok:,} registered in {reg.seconds:.1f} s",
            )
        )
        if registered_at > due - 2:
            progress(f"  registration ended {registered_at - due:+.1f} s from the due time")
        # Idle until the burst: settle, read the RSS, run the baselines if they fit.
        await asyncio.sleep(min(SETTLE_SECONDS, max(due - time.time() - 2, 0)))
        rss_rest = rss_bytes(alone.pid)
        await gap.fill(due)
        progress(f"  burst on {backend}: waiting {max(due - time.time(), 0):.0f} s for {key}")
        await asyncio.sleep(max(due - time.time() - 1.0, 0))
        meter = alone.meter()
        before = meter.snapshot()
        # Poll the ledger: when the fires became visible (committed).
        first_seen = all_seen = math.nan
        seen = 0
        deadline = due + config.miss_after
        while time.time() < deadline:
            seen = await count_fired(alone, key)
            if seen and math.isnan(first_seen):
                first_seen = time.time() - due
            if seen >= on_time:
                all_seen = time.time() - due
                break
            await asyncio.sleep(0.2)
        cpu = meter.cores(before, meter.snapshot())
        progress(f"  burst on {backend}: {seen:,} of {on_time:,} fired; reading the ledger")
        figure = await _burst_figure(alone, n, on_time, due, key, config)
        figure.cpu = cpu
        figure.extra.update(
            {
                "first fire committed after s": first_seen,
                "last fire committed after s": all_seen,
                "rss_idle_bytes": rss_idle,
                "rss_after_registration_bytes": rss_rest,
                "schedule": schedule,
            }
        )
        figure.note = (
            f"{schedule}, {n:,} triggers over {len(jobs)} jobs, scheduler alone "
            f"(no catalog), --max-processes {config.max_processes}; "
            + figure.note
            + (
                f"; all fires committed (seen by a 0.2 s ledger poll) {all_seen:.1f} s after "
                "the due time"
                if not math.isnan(all_seen)
                else f"; not all fired within {config.miss_after:g} s"
            )
            + (
                f"; scheduler RSS {rss_idle / MB:.0f} MB idle, {rss_rest / MB:.0f} MB after "
                f"{reg.ok:,} AddTrigger"
                if rss_idle and rss_rest
                else ""
            )
        )
        out.append(figure)


async def _burst_figure(
    alone: SchedulerAlone, n: int, on_time: int, due: float, key: str, config: TriggerConfig
) -> TriggerFigure:
    """Missed fires and lateness, from the ledger and the runs table."""
    async with alone.engine.connect() as conn:
        ledger = (
            await conn.execute(
                select(
                    trigger_fires.c.trigger_name,
                    trigger_fires.c.fire_key,
                    trigger_fires.c.outcome,
                    trigger_fires.c.recorded_at,
                    trigger_fires.c.run_ids,
                ).where(trigger_fires.c.scheduled_at == due)
            )
        ).all()
        run_rows = (
            await conn.execute(select(runs.c.run_id, runs.c.created_at, runs.c.state))
        ).all()
    created = {r.run_id: r.created_at for r in run_rows}
    states = Counter(r.state for r in run_rows)
    outcomes = Counter(r.outcome for r in ledger if r.fire_key.endswith(key))
    fired = {r.trigger_name: r for r in ledger if r.fire_key == key and r.outcome == "FIRED"}
    lateness: list[float] = []
    recorded: list[float] = []
    for row in fired.values():
        ids = json.loads(row.run_ids)
        starts = [created[i] for i in ids if i in created]
        if starts:
            lateness.append(min(starts) - due)
        recorded.append(row.recorded_at - due)
    missed = on_time - len(fired)
    figure = TriggerFigure(
        alone.backend,
        "burst",
        f"burst: {n:,} triggers due at one instant: lateness; value = fires/s",
        n=len(fired),
        missed=missed,
        p50_s=percentile(lateness, 50),
        p99_s=percentile(lateness, 99),
        max_s=max(lateness) if lateness else math.nan,
        value=len(lateness) / max(lateness) if lateness and max(lateness) > 0 else math.nan,
        unit="/s",
    )
    figure.extra = {
        "ledger outcomes": dict(outcomes),
        "run states at the end": dict(states),
        "ledger recorded_at - due p99 s": percentile(recorded, 99),
        "triggers due at the instant": on_time,
    }
    figure.note = (
        "lateness = run StartedOn (scheduler_runs.created_at) - due time"
        + (f" (first fire {min(lateness):.2f} s late)" if lateness else "")
        + "; missed = triggers "
        f"with no FIRED ledger row {config.miss_after:g} s after it; ledger "
        + ", ".join(f"{count:,} {o}" for o, count in sorted(outcomes.items()))
        + "; runs "
        + ", ".join(f"{count:,} {s}" for s, count in sorted(states.items()))
    )
    if on_time < n:
        figure.error = (
            f"only {on_time:,} of {n:,} triggers were registered before the due time; the "
            "others are not counted (registration overran the chosen minute)"
        )
    return figure


# -- scale --------------------------------------------------------------------------------------


def spread_schedules(count: int, now: float) -> list[str]:
    """Daily schedules over the day, none within the next 15 minutes (nor the last 15)."""
    base = int(now // 60) + 15
    slots = 24 * 60 - 30
    result = []
    for i in range(count):
        minute_of_day = (base + i % slots) % (24 * 60)
        result.append(f"cron({minute_of_day % 60} {minute_of_day // 60} * * ? *)")
    return result


async def scale(
    backend: str,
    work_dir: Path,
    config: TriggerConfig,
    out: list[TriggerFigure],
    progress: Progress,
) -> None:
    """The scale figures (see the module docstring)."""
    n = config.scale_triggers
    async with scheduler_alone(backend, work_dir / f"scale-{backend}", config) as alone:
        jobs = [f"bench-scale-job-{k}" for k in range(10)]
        await alone.add_jobs(jobs, alone.root / "scripts" / "trivial.py", 1000)
        await asyncio.sleep(1.0)
        rss_idle = rss_bytes(alone.pid)
        schedules = spread_schedules(n, time.time())
        messages = [
            trigger_message(f"scale-{i:06d}", schedules[i], jobs[i % len(jobs)]) for i in range(n)
        ]
        progress(f"  scale on {backend}: registering {n:,} triggers ({config.scale_register})")
        if config.scale_register == "rpc":
            reg = await add_triggers(alone, messages, config.register_concurrency)
            how = f"{reg.ok:,} AddTrigger calls in {reg.seconds:.1f} s ({reg.rate:,.0f}/s)"
            if reg.errors:
                how += f", errors {dict(reg.errors)}: {reg.first_error}"
        else:
            seconds = await seed_triggers(alone, messages)
            how = (
                f"rows written in bulk straight into scheduler_triggers in {seconds:.1f} s "
                "(as AddTrigger would write them; not through the running process)"
            )
        held = await count_scheduled(alone)
        await asyncio.sleep(SETTLE_SECONDS)
        rss_rest = rss_bytes(alone.pid)

        # Restart, with some triggers due the instant the new process starts (fault injection).
        t_stop = time.perf_counter()
        await alone.service.stop()
        stop_seconds = time.perf_counter() - t_stop
        names = [m.name for m in messages[: config.restart_due]]
        spawn_at = time.time()
        due = round(spawn_at + config.restart_due_after, 3)
        async with alone.engine.begin() as conn:
            await conn.execute(
                update(triggers).where(triggers.c.name.in_(names)).values(next_fire_at=due)
            )
        key = registry.fire_key_for_instant(due)
        spawned = await alone.start()
        serving_task = asyncio.create_task(wait_serving_promptly(alone.address, alone.service))
        serving = first = all_fired = math.nan
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if math.isnan(serving) and serving_task.done():
                serving_task.result()
                serving = time.time() - spawned
            fired = await count_fired(alone, key)
            if fired and math.isnan(first):
                first = time.time() - spawned
            if fired >= len(names):
                all_fired = time.time() - spawned
                if not math.isnan(serving):
                    break
            await asyncio.sleep(0.02)
        if not serving_task.done():
            serving_task.cancel()
        async with alone.engine.connect() as conn:
            recorded = (
                await conn.execute(
                    select(trigger_fires.c.recorded_at)
                    .where(trigger_fires.c.fire_key == key)
                    .where(trigger_fires.c.outcome == "FIRED")
                )
            ).scalars()
            recorded_list = sorted(float(r) for r in recorded)
        first_recorded = recorded_list[0] - spawned if recorded_list else math.nan
        await asyncio.sleep(SETTLE_SECONDS)
        rss_restarted = rss_bytes(alone.pid)
        peak = max(r for r in (rss_rest, rss_restarted) if r is not None) if rss_rest else None

        out.append(
            TriggerFigure(
                backend,
                "scale_rss",
                f"{n:,} triggers: scheduler RSS at rest (max of before/after restart)",
                n=held,
                value=(peak or math.nan) / MB,
                unit="MB",
                note=(
                    f"{held:,} ACTIVATED triggers in the due-time index, {how}; RSS "
                    f"{(rss_idle or 0) / MB:.0f} MB idle with none, "
                    f"{(rss_rest or 0) / MB:.0f} MB at rest after registration, "
                    f"{(rss_restarted or 0) / MB:.0f} MB at rest after the restart and its "
                    "first fires"
                ),
                extra={
                    "rss_idle_bytes": rss_idle,
                    "rss_after_registration_bytes": rss_rest,
                    "rss_after_restart_bytes": rss_restarted,
                    "register": config.scale_register,
                },
            )
        )
        out.append(
            TriggerFigure(
                backend,
                "restart_serving",
                f"{n:,} triggers: restart -> SERVING",
                value=serving,
                unit="s",
                note=f"from spawning the new process; the old one took {stop_seconds:.1f} s "
                "to exit on SIGTERM",
            )
        )
        fired_total = len(recorded_list)
        out.append(
            TriggerFigure(
                backend,
                "restart_first_fire",
                f"{n:,} triggers: restart -> first fire",
                n=fired_total,
                missed=len(names) - fired_total,
                value=first_recorded,
                unit="s",
                p50_s=percentile([r - spawned for r in recorded_list], 50),
                max_s=(recorded_list[-1] - spawned) if recorded_list else math.nan,
                note=(
                    f"FAULT INJECTION: {len(names)} triggers' next_fire_at set in the database "
                    f"to spawn {config.restart_due_after:+g} s while no scheduler ran; value = "
                    "first FIRED ledger row's recorded_at - spawn (p50/max over the "
                    f"{len(names)}); first seen committed by a 20 ms poll after {first:.2f} s, "
                    f"all after {all_fired:.2f} s"
                ),
                extra={"first_seen_s": first, "all_seen_s": all_fired},
            )
        )


# -- APScheduler --------------------------------------------------------------------------------


async def apscheduler_run(work_dir: Path, args: list[str], label: str) -> dict[str, Any]:
    """One ``bench.apscheduler_baseline`` subprocess; its JSON result."""
    _make_dirs(work_dir)
    out_path = work_dir / f"apscheduler-{label}.json"
    service = Service(
        f"apscheduler-{label}",
        "bench.apscheduler_baseline",
        [*args, "--out", str(out_path)],
        work_dir / f"apscheduler-{label}.log",
    )
    await service.start()
    try:
        assert service.process is not None
        await asyncio.wait_for(service.process.wait(), 180)
    finally:
        await service.stop()
    text = _read_text(out_path)
    if text is None:
        raise RuntimeError(f"APScheduler baseline {label} failed:\n{service.log_tail()}")
    result: dict[str, Any] = json.loads(text)
    return result


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text()
    except FileNotFoundError:
        return None


def apscheduler_jobs(
    work_dir: Path, config: TriggerConfig, out: list[TriggerFigure], notes: list[str]
) -> list[tuple[float, Callable[[], Awaitable[None]]]]:
    """The baseline measurements, as (expected seconds, coroutine function) for a GapFiller."""
    n = config.burst_triggers

    def burst_job(kind: str, grace: str) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            label = f"burst-{kind}-{grace}"
            try:
                r = await apscheduler_run(
                    work_dir,
                    ["burst", "--jobs", str(n), "--grace", grace, "--job-kind", kind],
                    label,
                )
            except (RuntimeError, TimeoutError, OSError) as exc:
                notes.append(f"APScheduler {label} FAILED: {exc}"[:500])
                return
            what = "async job" if kind == "coroutine" else "thread-pool job"
            grace_text = "grace 1 s (default)" if grace == "default" else "grace None"
            out.append(
                TriggerFigure(
                    "apscheduler",
                    f"burst_{kind}_{grace}",
                    f"burst: {n:,} cron jobs in one second, {what}, {grace_text}",
                    n=r["executed"],
                    missed=r["missed"] + r["unaccounted"],
                    p50_s=r["lateness_p50_s"],
                    p99_s=r["lateness_p99_s"],
                    max_s=r["lateness_max_s"],
                    note=(
                        f"AsyncIOScheduler, misfire_grace_time "
                        f"{'1 s (the default)' if grace == 'default' else 'None'}, "
                        f"{'async def' if kind == 'coroutine' else 'def'} job: "
                        f"{r['missed']:,} EVENT_JOB_MISSED, {r['executed']:,} executed"
                        + (f", {r['unaccounted']:,} neither" if r["unaccounted"] else "")
                        + f"; lateness = job start - scheduled second; {n:,} added in "
                        f"{r['add_seconds']:.1f} s"
                        + ("" if r["added_before_due"] else " (ADDING OVERRAN THE DUE SECOND)")
                    ),
                    extra=r,
                )
            )

        return run

    async def scale_job() -> None:
        try:
            r = await apscheduler_run(
                work_dir, ["scale", "--jobs", str(config.scale_triggers)], "scale"
            )
        except (RuntimeError, TimeoutError, OSError) as exc:
            notes.append(f"APScheduler scale FAILED: {exc}"[:500])
            return
        growth = (r["rss_after"] - r["rss_before"]) / MB
        out.append(
            TriggerFigure(
                "apscheduler",
                "scale_rss",
                f"{r['jobs']:,} cron jobs: RSS, in-memory job store",
                n=r["held"],
                value=r["rss_after"] / MB,
                unit="MB",
                note=(
                    f"RSS {r['rss_before'] / MB:.0f} MB -> {r['rss_after'] / MB:.0f} MB "
                    f"(+{growth:.0f} MB, {growth * MB / max(r['jobs'], 1) / 1024:.1f} KB a job)"
                ),
                extra=r,
            )
        )
        out.append(
            TriggerFigure(
                "apscheduler",
                "scale_add",
                f"{r['jobs']:,} cron jobs: time to add (= restart -> firing)",
                n=r["held"],
                value=r["add_seconds"],
                unit="s",
                note=(
                    f"{r['add_seconds'] * 1000 / max(r['jobs'], 1):.2f} ms a job; the memory "
                    "store keeps nothing, so a restarted APScheduler fires again only once "
                    "every job was added again"
                ),
                extra=r,
            )
        )

    burst_seconds = 5.0 + n / 4000 + 4.0
    jobs: list[tuple[float, Callable[[], Awaitable[None]]]] = [
        (burst_seconds, burst_job(kind, grace))
        for kind in ("coroutine", "function")
        for grace in ("default", "none")
    ]
    jobs.append((3.0 + config.scale_triggers / 3500, scale_job))
    return jobs


# -- everything ---------------------------------------------------------------------------------


async def measure(
    work_dir: Path,
    config: TriggerConfig,
    out: list[TriggerFigure],
    notes: list[str],
    progress: Progress,
) -> int:
    """Every trigger figure; returns how many parts failed (each failure is in ``notes``)."""
    failures = 0
    gap = GapFiller()
    if config.apscheduler:
        gap.jobs = apscheduler_jobs(work_dir / "apscheduler", config, out, notes)

    async def guarded(label: str, coro: Awaitable[None]) -> None:
        nonlocal failures
        progress(label)
        try:
            await coro
        except (grpc.aio.AioRpcError, RuntimeError, TimeoutError, OSError, ValueError) as exc:
            failures += 1
            notes.append(f"{label} FAILED: {type(exc).__name__}: {str(exc)[:500]}")

    for backend in config.backends:
        if config.burst:
            await guarded(
                f"triggers: burst on {backend}",
                burst(backend, work_dir, config, out, gap, progress),
            )
        if config.scale:
            await guarded(
                f"triggers: scale on {backend}", scale(backend, work_dir, config, out, progress)
            )
    if gap.jobs:
        progress("triggers: APScheduler baselines")
        await gap.drain()
    return failures
