"""The catalog's AWS JSON 1.1 HTTP gateway driven by boto3, and moto's server mode doing the same.

The gateway figures answer "what does a boto3 user get": every call goes through botocore
(serialisation, SigV4 signing, HTTP/1.1 keep-alive, response parsing) to the catalog's
``--http-listen`` gateway (no ``--access-keys``: any signature is accepted on loopback), which
calls the same servicer a gRPC client reaches. Both services run as subprocesses on a fresh
database, started by ``bench.glue_figures.running_stack``. The same workload, with the same
client, is run against moto's server mode (``python -m moto.server``, a subprocess) in the
same run, and each of our figures is printed as a ratio to moto's.

Load: ``threads`` client threads in this process, one boto3 client each, closed loop (each
thread issues its next call as soon as its previous one answered) for ``duration`` seconds
after ``warmup`` seconds of the same load. Retries are off (``total_max_attempts=1``), so a
failed call is counted as an error, by its AWS error code (or exception type), never retried.

Per endpoint, in this order:

1. CreateJob/s with unique names (pythonshell, script ``pass``, MaxConcurrentRuns 1);
2. GetJobRun/s of one finished run (started before the figure; waited for until terminal);
3. StartJobRun/s as in 4., but with every process slot of ours held by a parked run, so that
   nothing executes meanwhile: admission only, like-for-like with moto, which runs nothing
   (compared with moto's figure 4.; moto has no figure of its own here). The parked runs are
   released afterwards, and the backlog executes during figure 4.
4. StartJobRun/s spread over ``start_jobs`` jobs with MaxConcurrentRuns 1000 (the model has
   no bound; ours refuses more than 1000) and the ``pass`` script. Our runs execute, at most
   ``--max-processes`` at a time, the rest WAITING, while the figure is measured; moto runs
   nothing (its runs are SUCCEEDED as soon as they are read). The backlog is abandoned with
   the database when the services stop.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import math
import os
import threading
import time
import traceback
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
from botocore.config import Config
from botocore.exceptions import ClientError

from bench.glue_figures import BenchConfig, running_stack, wait_listening
from bench.load import Figure
from bench.procs import CpuMeter, Service, free_port
from bench.report import FigureColumns, cpu_cores, figure_rows, num

ROLE = "arn:aws:iam::123456789012:role/glue-bench"
REGION = "us-east-1"
CALL_TIMEOUT = 30.0
"""botocore's read timeout of one call, seconds."""
RUN_TIMEOUT = 60.0
"""Seconds the GetJobRun figure's run may take to end."""
TERMINAL = {"SUCCEEDED", "FAILED", "TIMEOUT", "STOPPED", "ERROR", "EXPIRED"}
ORDER = ["create_job", "get_job_run", "start_job_run_held", "start_job_run"]
MOTO_BASELINE = {"start_job_run_held": "start_job_run"}
"""Moto's figure each of ours is compared with, where the keys differ (moto runs nothing, so
its StartJobRun figure is admission only)."""
GROUPS = ["moto", "postgres", "sqlite"]
CPU_PARTS = [
    ("loadgen", "gen"),
    ("catalog", "cat"),
    ("scheduler", "sch"),
    ("moto", "moto"),
    ("postgres", "pg"),
    ("other", "other"),
    ("machine", "all"),
]


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    """What the gateway figures measure and how hard."""

    backends: tuple[str, ...] = ("postgres", "sqlite")
    """Our databases; moto is measured once, whatever they are."""
    threads: int = 8
    """Client threads, one boto3 client each."""
    duration: float = 5.0
    """Seconds each figure is measured for."""
    warmup: float = 0.5
    """Seconds of the same load before each figure, not counted."""
    start_jobs: int = 16
    """Jobs the StartJobRun figure spreads its runs over (each MaxConcurrentRuns 1000)."""
    max_processes: int = 8
    """The scheduler's --max-processes."""
    log_level: str = "INFO"
    """The services' --log-level."""


@dataclass
class Endpoint:
    """Something that speaks Glue over HTTP: the gateway of our stack, or moto."""

    group: str
    """``moto``, or our backend (``postgres``, ``sqlite``)."""
    url: str
    meter: CpuMeter
    script: Path
    """A real local file containing ``pass``."""
    hold_script: Path | None = None
    """A script that runs until ``release_file`` exists (None for moto, which runs nothing)."""
    release_file: Path | None = None


# -- the processes -------------------------------------------------------------------------------


@asynccontextmanager
async def gateway_stack(backend: str, root: Path, config: GatewayConfig) -> AsyncIterator[Endpoint]:
    """Scheduler and catalog (with ``--http-listen``) on a fresh database; all gone on exit."""
    services = BenchConfig(max_processes=config.max_processes, log_level=config.log_level)
    async with running_stack(backend, root, services, http_gateway=True) as stack:
        url = f"http://127.0.0.1:{stack.http_port}"
        yield Endpoint(
            backend,
            url,
            stack.meter(),
            stack.scripts / "trivial.py",
            hold_script=stack.scripts / "hold.py",
            release_file=stack.release_file,
        )


@asynccontextmanager
async def moto_server(root: Path) -> AsyncIterator[Endpoint]:
    """``python -m moto.server`` on a free loopback port; stopped on exit."""
    script = _fresh_dir_with_script(root)
    port = free_port()
    moto = Service(
        "moto_server", "moto.server", ["-H", "127.0.0.1", "-p", str(port)], root / "moto.log"
    )
    try:
        await moto.start()
        await wait_listening(port, moto)
        meter = CpuMeter({"moto": moto.pid}, postgres=False)
        yield Endpoint("moto", f"http://127.0.0.1:{port}", meter, script)
    finally:
        await moto.stop()


def _fresh_dir_with_script(root: Path) -> Path:
    """Make ``root`` (it must not exist) with a ``pass`` script in it; returns the script."""
    root.mkdir(parents=True)
    script = root / "scripts" / "trivial.py"
    script.parent.mkdir()
    script.write_text("pass\n")
    return script


# -- the client side -----------------------------------------------------------------------------


def make_clients(url: str, count: int) -> list[Any]:
    """``count`` boto3 Glue clients of ``url``, retries off (made here, one per thread later)."""
    session = boto3.session.Session(
        aws_access_key_id="bench",
        aws_secret_access_key="bench-secret",
        region_name=REGION,
    )
    config = Config(
        retries={"total_max_attempts": 1},
        connect_timeout=5,
        read_timeout=CALL_TIMEOUT,
        max_pool_connections=2,
    )
    return [session.client("glue", endpoint_url=url, config=config) for _ in range(count)]


def error_key(exc: BaseException) -> tuple[str, str]:
    """How a failed call is counted (its AWS error code, else its type) and described."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "?"))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return code, f"{code} (HTTP {status}): {error.get('Message', '')}"
    name = type(exc).__name__
    return name, f"{name}: {exc}"


def _record_error(figure: Figure, exc: BaseException) -> None:
    key, message = error_key(exc)
    figure.errors[key] += 1
    if not figure.first_error:
        figure.first_error = message[:300]


def threaded_closed_loop(
    figure: Figure,
    endpoint: Endpoint,
    clients: list[Any],
    config: GatewayConfig,
    stop: threading.Event,
    call: Callable[[Any, int], object],
) -> Figure:
    """Fill ``figure``: one thread per client, each calling back to back for ``duration`` s
    after ``warmup`` s (both from ``config``), the CPU metered by ``endpoint.meter``.

    ``call(client, n)`` is one operation; ``n`` is unique across warm-up and measurement.
    Warm-up errors are counted too (they usually explain a bad figure). The rate divides the
    successful calls by the time from the start until the last of them answered.
    """
    numbers = itertools.count()  # next() on it is atomic under the GIL
    meter = endpoint.meter

    def phase(seconds: float, *, record: bool) -> None:
        n = len(clients)
        latencies: list[list[float]] = [[] for _ in range(n)]
        errors: list[Counter[str]] = [Counter() for _ in range(n)]
        first: list[str] = [""] * n
        last_done = [0.0] * n
        clock: dict[str, Any] = {}

        def begin() -> None:  # the barrier's action: runs once, before any thread is released
            if record:
                clock["cpu"] = meter.snapshot()
            clock["start"] = time.perf_counter()

        barrier = threading.Barrier(n, action=begin)

        def worker(k: int) -> None:
            client = clients[k]
            barrier.wait()
            deadline = clock["start"] + seconds
            while not stop.is_set() and time.perf_counter() < deadline:
                i = next(numbers)
                t0 = time.perf_counter()
                try:
                    call(client, i)
                except Exception as exc:  # noqa: BLE001 - every failure is counted, by kind
                    key, message = error_key(exc)
                    errors[k][key] += 1
                    first[k] = first[k] or message
                    continue
                t1 = time.perf_counter()
                last_done[k] = t1
                latencies[k].append(t1 - t0)

        threads = [
            threading.Thread(target=worker, args=(k,), name=f"gw-client-{k}", daemon=True)
            for k in range(n)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        after = meter.snapshot() if record else None
        for counter in errors:
            figure.errors.update(counter)
        if not figure.first_error:
            figure.first_error = next((f for f in first if f), "")[:300]
        if record and after is not None:
            start = clock["start"]
            figure.ok = sum(len(part) for part in latencies)
            figure.latencies = [x for part in latencies for x in part]
            figure.elapsed = max(max(last_done), start + seconds) - start
            figure.cpu = meter.cores(clock["cpu"], after)

    if config.warmup > 0:
        phase(config.warmup, record=False)
    if not stop.is_set():
        phase(config.duration, record=True)
    figure.extra["load average 1 min"] = os.getloadavg()[0]
    return figure


async def _in_thread(work: Callable[[threading.Event], Figure]) -> Figure:
    """Run blocking ``work`` in a thread; on cancellation its client threads stop promptly."""
    stop = threading.Event()
    try:
        return await asyncio.to_thread(work, stop)
    finally:
        stop.set()


def _create_job(client: Any, name: str, script: Path, max_concurrent_runs: int) -> None:
    client.create_job(
        Name=name,
        Role=ROLE,
        Command={"Name": "pythonshell", "ScriptLocation": str(script)},
        ExecutionProperty={"MaxConcurrentRuns": max_concurrent_runs},
    )


def _finished_run(client: Any, job: str, script: Path) -> tuple[str, str]:
    """A job with one run that has ended: (run id, its final state)."""
    _create_job(client, job, script, 1)
    run_id = str(client.start_job_run(JobName=job)["JobRunId"])
    deadline = time.monotonic() + RUN_TIMEOUT
    while True:
        state = str(client.get_job_run(JobName=job, RunId=run_id)["JobRun"]["JobRunState"])
        if state in TERMINAL:
            return run_id, state
        if time.monotonic() > deadline:
            raise TimeoutError(f"run {run_id} of {job} still {state} after {RUN_TIMEOUT:.0f} s")
        time.sleep(0.05)


# -- the figures ---------------------------------------------------------------------------------


def create_job_figure(
    endpoint: Endpoint, clients: list[Any], config: GatewayConfig, stop: threading.Event
) -> Figure:
    """CreateJob/s with unique names."""
    figure = Figure(endpoint.group, "create_job", "CreateJob/s (unique names)", "calls")

    def call(client: Any, i: int) -> object:
        _create_job(client, f"gw-create-{i:07d}", endpoint.script, 1)
        return None

    return threaded_closed_loop(figure, endpoint, clients, config, stop, call)


def get_job_run_figure(
    endpoint: Endpoint, clients: list[Any], config: GatewayConfig, stop: threading.Event
) -> Figure:
    """GetJobRun/s of one finished run."""
    figure = Figure(endpoint.group, "get_job_run", "GetJobRun/s (one finished run)", "calls")
    job = "gw-get"
    run_id, state = _finished_run(clients[0], job, endpoint.script)

    def call(client: Any, i: int) -> object:
        return client.get_job_run(JobName=job, RunId=run_id)

    threaded_closed_loop(figure, endpoint, clients, config, stop, call)
    figure.note = f"the run read was {state} before the figure started"
    return figure


def start_job_run_figure(
    endpoint: Endpoint,
    clients: list[Any],
    config: GatewayConfig,
    stop: threading.Event,
    *,
    key: str = "start_job_run",
) -> Figure:
    """StartJobRun/s spread over ``start_jobs`` jobs with MaxConcurrentRuns 1000."""
    figure = Figure(
        endpoint.group, key, "StartJobRun/s (MaxConcurrentRuns 1000, script pass)", "calls"
    )
    jobs = [f"gw-{key.replace('_', '-')}-{k:02d}" for k in range(config.start_jobs)]
    for job in jobs:
        _create_job(clients[0], job, endpoint.script, 1000)
    accepted: list[tuple[str, str]] = []  # list.append is atomic under the GIL

    def call(client: Any, i: int) -> object:
        job = jobs[i % len(jobs)]
        accepted.append((job, str(client.start_job_run(JobName=job)["JobRunId"])))
        return None

    threaded_closed_loop(figure, endpoint, clients, config, stop, call)
    states: Counter[str] = Counter()
    for job, run_id in accepted[-20:]:  # how far execution lagged behind admission
        try:
            run = clients[0].get_job_run(JobName=job, RunId=run_id)["JobRun"]
            states[str(run["JobRunState"])] += 1
        except Exception as exc:  # noqa: BLE001 - the sample is informational
            states[error_key(exc)[0]] += 1
    figure.extra["runs accepted (incl. warm-up)"] = float(len(accepted))
    figure.note = f"{len(accepted)} runs accepted over {len(jobs)} jobs; newest 20 are " + (
        ", ".join(f"{count} {state}" for state, count in sorted(states.items())) or "-"
    )
    if endpoint.group == "moto":
        figure.note += " (moto runs nothing: a run is a record, SUCCEEDED when read)"
    else:
        figure.note += (
            f" (each run is a real Python process, at most {config.max_processes} at a time, "
            "started meanwhile on the same cores)"
        )
    return figure


def start_job_run_held_figure(
    endpoint: Endpoint, clients: list[Any], config: GatewayConfig, stop: threading.Event
) -> Figure:
    """StartJobRun/s as ``start_job_run_figure``, with every process slot held by a parked run,
    so that no run executes meanwhile: admission only, which is all moto does. The parked runs
    are released afterwards (the backlog then executes during the next figure)."""
    if endpoint.hold_script is None or endpoint.release_file is None:
        raise _NotMeasured("moto runs nothing: its StartJobRun figure is admission only")
    job = "gw-hold"
    _create_job(clients[0], job, endpoint.hold_script, config.max_processes)
    parked = [
        str(clients[0].start_job_run(JobName=job)["JobRunId"]) for _ in range(config.max_processes)
    ]
    deadline = time.monotonic() + RUN_TIMEOUT
    for run_id in parked:
        while clients[0].get_job_run(JobName=job, RunId=run_id)["JobRun"]["JobRunState"] != (
            "RUNNING"
        ):
            if time.monotonic() > deadline:
                raise TimeoutError(f"parked run {run_id} not RUNNING after {RUN_TIMEOUT:.0f} s")
            time.sleep(0.05)
    try:
        figure = start_job_run_figure(endpoint, clients, config, stop, key="start_job_run_held")
    finally:
        endpoint.release_file.touch()
    figure.name = "StartJobRun/s, all slots held (admission only)"
    figure.note += f"; {config.max_processes} parked runs held every process slot"
    return figure


class _NotMeasured(Exception):
    """A figure that does not apply to an endpoint."""


FIGURES: list[
    tuple[str, str, Callable[[Endpoint, list[Any], GatewayConfig, threading.Event], Figure]]
] = [
    ("create_job", "CreateJob/s", create_job_figure),
    ("get_job_run", "GetJobRun/s", get_job_run_figure),
    ("start_job_run_held", "StartJobRun/s, all slots held", start_job_run_held_figure),
    ("start_job_run", "StartJobRun/s", start_job_run_figure),
]


async def measure_endpoint(endpoint: Endpoint, config: GatewayConfig, out: list[Figure]) -> None:
    """The three figures of one endpoint, appended to ``out``; a failed one is a failed line."""
    clients = await asyncio.to_thread(make_clients, endpoint.url, config.threads)
    try:
        for key, name, figure_of in FIGURES:
            try:
                out.append(
                    await _in_thread(functools.partial(figure_of, endpoint, clients, config))
                )
            except _NotMeasured:
                continue
            except (ClientError, TimeoutError, RuntimeError, OSError) as exc:
                failed = Figure(endpoint.group, key, name + " - FAILED", "calls")
                _record_error(failed, exc)
                out.append(failed)
    finally:
        for client in clients:
            client.close()


def add_ratios(figures: list[Figure]) -> None:
    """Each of our figures' rate and latencies as a ratio to moto's same figure."""
    moto = {f.key: f for f in figures if f.group == "moto" and f.ok}
    for figure in figures:
        base = moto.get(MOTO_BASELINE.get(figure.key, figure.key))
        if figure.group == "moto" or base is None or not figure.ok:
            continue
        figure.extra["rate / moto rate"] = figure.rate / base.rate
        figure.extra["p50 / moto p50"] = figure.p50_ms / base.p50_ms
        figure.extra["p99 / moto p99"] = figure.p99_ms / base.p99_ms


async def measure(
    work_dir: Path,
    config: GatewayConfig,
    out: list[Figure],
    notes: list[str],
    progress: Callable[[str], None],
) -> int:
    """Moto first, then our gateway on each backend; returns how many endpoints failed."""
    failures = 0
    notes.append(
        "load average (1/5/15 min) when the gateway figures started: "
        + ", ".join(f"{v:.2f}" for v in os.getloadavg())
    )
    for group in ["moto", *config.backends]:
        progress(f"gateway figures: {'moto server mode' if group == 'moto' else group}")
        root = work_dir / f"gateway-{group}"
        try:
            running = moto_server(root) if group == "moto" else gateway_stack(group, root, config)
            async with running as endpoint:
                await measure_endpoint(endpoint, config, out)
        except Exception as exc:  # noqa: BLE001 - one failed endpoint must not lose the others
            failures += 1
            notes.append(f"gateway figures on {group} FAILED: {type(exc).__name__}: {exc}"[:600])
            traceback.print_exc()
    notes.append(
        "load average (1/5/15 min) when the gateway figures ended: "
        + ", ".join(f"{v:.2f}" for v in os.getloadavg())
    )
    add_ratios(out)
    return failures


# -- the report ----------------------------------------------------------------------------------


def _ratio(figure: Figure, key: str) -> str:
    value = figure.extra.get(key)
    return "-" if value is None or math.isnan(value) else f"{value:.2f}x"


def render(figures: list[Figure], config: GatewayConfig, notes: list[str]) -> str:
    """The gateway section of the report."""
    moto_version = _version("moto")
    lines = [
        (
            f"Gateway figures (boto3 {_version('boto3')} -> AWS JSON 1.1 over HTTP; "
            f"vs moto {moto_version} server mode doing the same)"
        ),
        (
            f"  load: {config.threads} client threads in this process, one boto3 client each, "
            f"closed loop, retries off; {config.duration:g} s per figure after "
            f"{config.warmup:g} s warm-up"
        ),
    ]
    table = FigureColumns(group=9, rate=8, ms=7)
    columns = (
        f"{table.header()} {'rate/moto':>9} {'p50/moto':>8} {'p99/moto':>8} {'load1':>5}  "
        "cpu cores while measured"
    )
    lines += [columns, "-" * (len(columns) + 20)]

    def row(figure: Figure, errors: int) -> str:
        return (
            f"{table.cells(figure, errors)} {_ratio(figure, 'rate / moto rate'):>9} "
            f"{_ratio(figure, 'p50 / moto p50'):>8} {_ratio(figure, 'p99 / moto p99'):>8} "
            f"{num(figure.extra.get('load average 1 min', math.nan), 2):>5}  "
            f"{cpu_cores(figure.cpu, CPU_PARTS)}"
        )

    rows, footnotes = figure_rows(figures, GROUPS, ORDER, row)
    lines += [
        *rows,
        "",
        (
            "cpu: gen = this load generator (all its client threads), cat = catalog, "
            "sch = scheduler, moto = moto's server, pg = all PostgreSQL processes, other = the "
            "rest (job and supervisor processes, other users), all = whole machine "
            f"({os.cpu_count()} cores = {os.cpu_count()}.00); load1 = 1-min load average "
            "right after the figure"
        ),
        "",
        "Gateway notes:",
        (
            f"  CAUTION: the {config.threads} client threads are one Python process (one GIL) "
            f"and share these {os.cpu_count()} cores with the server(s), PostgreSQL and every "
            "job process; botocore's own CPU per call is large ('gen' column), so absolute "
            "rates understate what either server could do alone. The ratios use the same "
            "client on the same cores, but our side is two processes (catalog + scheduler, "
            "plus PostgreSQL) against moto's one in-memory process."
        ),
        (
            "  moto (python -m moto.server: werkzeug, a thread per connection, everything in "
            "memory, no persistence) RUNS NOTHING: its StartJobRun appends a record, and its "
            "runs read SUCCEEDED at once; ours commits the run to the database, hands it to "
            "the scheduler and starts a real process per run. Moto's StartJobRun also scans "
            "the job's earlier runs, so it slows as they accumulate (both spread over "
            f"{config.start_jobs} jobs)."
        ),
        *(f"  {n}" for n in notes + footnotes),
        "",
        "Targets (gateway, same boto3 client; stated on PostgreSQL, SQLite informational):",
        *(f"  {t}" for t in target_lines(figures)),
    ]
    return "\n".join(lines)


# The run-path issue's gateway targets: at least moto's rate on every measured operation, and
# GetJobRun at 2.5x (moto keeps runs in a dict; ours reads them from a database).
RATE_OVER_MOTO = {"get_job_run": 2.5}


def target_lines(figures: list[Figure]) -> list[str]:
    """One verdict per measured operation of ours against moto's same operation."""
    lines = []
    for figure in figures:
        ratio = figure.extra.get("rate / moto rate")
        if figure.group == "moto" or ratio is None:
            continue
        goal = RATE_OVER_MOTO.get(figure.key, 1.0)
        verdict = "MET" if ratio >= goal else "NOT MET"
        lines.append(
            f"{figure.group:<9} {figure.name + f' >= {goal:g}x moto':<70} {ratio:5.2f}x   {verdict}"
        )
    return lines


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "?"
