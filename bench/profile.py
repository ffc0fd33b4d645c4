"""``python -m bench.profile OUT_DIR``: sample both services and the run supervisors with py-spy
while the bench's loads run, and write where the CPU goes, per process and per operation.

Examples::

    python -m bench.profile var/profile                   # PostgreSQL, every load, ~3 min
    python -m bench.profile var/profile --backend sqlite --loads create_job,trivial_runs

The loads are the bench's own (``bench.glue_figures``), on the same kind of stacks (both
services as subprocesses on a fresh database), without warm-up so that the operations counted
are exactly the ones sampled:

- ``create_job``          CreateJob with unique names (stack B);
- ``start_job_run_held``  StartJobRun with every process slot held: admission only (stack B);
- ``start_to_succeeded``  StartJobRun -> SUCCEEDED, one run at a time (stack A);
- ``trivial_runs``        N runs started at once until the last SUCCEEDED (stack A);
- ``start_job_run``       StartJobRun while the runs execute (stack A).

One ``py-spy record --subprocesses --nonblocking --format speedscope`` follows this process
and every descendant: the load generator, the catalog, the scheduler and the jobs. A run's
supervisor is a child of the scheduler's zygote, which reaps it: the zygote's children's CPU
(``cutime``/``cstime`` in its ``/proc`` stat, read before and after each load) is the exact
CPU of the supervisors together with their jobs (they live ~20-40 ms, too short for sampling
alone to count them well). Without the zygote (the launcher), a supervisor double-forks out of
the scheduler and would land under init, so this process also makes itself a child
subreaper: such orphans are re-parented here, where py-spy finds them, and a thread reaps them
with ``wait4``, whose resource usage counts the same.

For each load, ``OUT_DIR`` gets ``<backend>-<load>.speedscope.json`` (open it at
speedscope.app), ``<backend>-<load>.collapsed.txt`` (flamegraph.pl's format, one line per
stack, the process as the root frame) and ``<backend>-<load>.top.txt`` (self and cumulative
time per function for each kind of process, as milliseconds of CPU per operation);
``summary.txt`` has the figures, the CPU meters and the load average beside each.

Sampling a process costs it little with ``--nonblocking`` (py-spy reads its memory without
stopping it), but py-spy itself takes a part of one core: the figures measured here are for
the profile's proportions, not for the bench's table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import shutil
import signal
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import glue_figures, procs
from bench.glue_figures import BenchConfig, Stack
from bench.load import Figure

LOADS = ("create_job", "start_job_run_held", "start_to_succeeded", "trivial_runs", "start_job_run")
STACK_B = ("create_job", "start_job_run_held")
KINDS = ("catalog", "scheduler", "supervisor", "job", "loadgen", "other")
PR_SET_CHILD_SUBREAPER = 36
# Frames on (nearly) every stack of a process: left out of the cumulative lists, where they
# would only crowd out the informative ones.
FRAMEWORK = (
    "<frozen runpy>",
    "asyncio/runners.py",
    "asyncio/base_events.py",
    "asyncio/events.py",
    "servicekit/service_main.py",
    "/cli.py",
    "__main__.py",
    "threading.py",
    "bench/profile.py",
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("out_dir", type=Path, help="where the profiles and the summary go")
    parser.add_argument("--backend", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--loads", default=",".join(LOADS), help=f"comma-separated [{LOADS}]")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per load [8]")
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples/s [250]")
    parser.add_argument("--concurrency", type=int, default=64, help="calls in flight [64]")
    parser.add_argument("--trivial-runs", type=int, default=200, help="runs started at once")
    parser.add_argument("--sequential-runs", type=int, default=30, help="runs one at a time")
    parser.add_argument("--max-processes", type=int, default=8, help="scheduler cap [8]")
    parser.add_argument("--top", type=int, default=25, help="functions listed per process [25]")
    parser.add_argument("--py-spy", default=None, help="the py-spy binary [beside python]")
    parser.add_argument(
        "--only-supervisor-cost",
        action="store_true",
        help="only compare a bare spawn with a supervised run (launcher and zygote), "
        "--sequential-runs times each; no py-spy, no services",
    )
    args = parser.parse_args(argv)
    loads = [name.strip() for name in args.loads.split(",") if name.strip()]
    unknown = set(loads) - set(LOADS)
    if unknown:
        parser.error(f"--loads: unknown load(s) {', '.join(sorted(unknown))}")
    args.loads = loads
    return args


# -- orphans: the supervisors -------------------------------------------------------------------


def become_subreaper() -> bool:
    """Adopt every orphan among our descendants (PR_SET_CHILD_SUBREAPER); False if refused."""
    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)


@dataclass
class Reaped:
    """What the orphan reaper collected since ``reset``."""

    count: int = 0
    cpu_seconds: float = 0.0
    """User + system CPU of the reaped processes and of every descendant they reaped."""
    per_process_ms: list[float] = field(default_factory=list)


class OrphanReaper:
    """Reaps the orphans re-parented to this process (supervisors), counting their CPU.

    Only pids this benchmark did not start itself are waited for: the services and py-spy are
    asyncio's children and asyncio reaps them.
    """

    def __init__(self, own: Callable[[], set[int]]) -> None:
        self._own = own
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.reaped = Reaped()
        self._thread = threading.Thread(target=self._loop, name="orphan-reaper", daemon=True)

    def start(self) -> None:
        """Begin reaping."""
        self._thread.start()

    def stop(self) -> None:
        """Stop reaping (what is left is reaped by init when we exit)."""
        self._stop.set()
        self._thread.join()

    def take(self) -> Reaped:
        """What was reaped since the last ``take``."""
        with self._lock:
            taken, self.reaped = self.reaped, Reaped()
        return taken

    def _loop(self) -> None:
        # waitid(WNOWAIT) peeks at one exited child without reaping it: cheap enough to poll
        # (a /proc scan every 20 ms took half a core). A child of asyncio's is left to asyncio.
        while not self._stop.wait(0.01):
            own = self._own()
            while True:
                try:
                    info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
                except ChildProcessError:
                    break
                if info is None or info.si_pid in own or _same_session(info.si_pid):
                    break
                try:
                    got, _status, usage = os.wait4(info.si_pid, os.WNOHANG)
                except ChildProcessError:  # asyncio's watcher reaped it meanwhile
                    break
                if got != info.si_pid:
                    break
                cpu = usage.ru_utime + usage.ru_stime
                with self._lock:
                    self.reaped.count += 1
                    self.reaped.cpu_seconds += cpu
                    self.reaped.per_process_ms.append(cpu * 1000)


def zygote_children_cpu(parent: int) -> float:
    """CPU seconds of the processes the scheduler's zygote (a child of ``parent``) has reaped:
    its supervisors with their jobs, which never become orphans of ours (0 if none)."""
    total = 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                command = cmdline.read()
        except OSError:
            continue
        # stat(5): ppid is field 4, cutime and cstime fields 16 and 17 (the list starts at 3).
        if int(fields[1]) == parent and b"zygote" in command:
            total += (int(fields[13]) + int(fields[14])) / ticks
    return total


def _same_session(pid: int) -> bool:
    """Whether ``pid`` is in our session: a process of ours that asyncio has not registered
    yet (just spawned), never a supervisor, which runs in a session of its own."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[3]) == os.getsid(0)
    except (OSError, ValueError, IndexError):
        return False


# -- py-spy ------------------------------------------------------------------------------------


class Sampler:
    """One ``py-spy record`` of this process and its descendants, started and stopped here."""

    def __init__(self, binary: str, rate: int, output: Path) -> None:
        self._binary = binary
        self._rate = rate
        self.output = output
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        """Attach and wait a moment for py-spy to begin sampling."""
        self.process = await asyncio.create_subprocess_exec(
            self._binary,
            "record",
            "--pid",
            str(os.getpid()),
            "--subprocesses",
            "--nonblocking",
            "--rate",
            str(self._rate),
            "--format",
            "speedscope",
            "--output",
            str(self.output),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _SPAWNED.add(self.process.pid)
        await asyncio.sleep(1.0)

    async def stop(self) -> str:
        """SIGINT (py-spy writes its file then) and wait; py-spy's stderr."""
        process = self.process
        if process is None:
            return ""
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGINT)
        try:
            _, err = await asyncio.wait_for(process.communicate(), 60)
        except TimeoutError:
            process.kill()
            _, err = await process.communicate()
        self.process = None
        return err.decode(errors="replace")


# -- aggregation ---------------------------------------------------------------------------------


def process_kind(command_line: str) -> str:
    """Which party a process is, from the command line py-spy puts in its ``process`` frame."""
    # Both bootstraps (runner._BOOTSTRAP, zygote_client._ZYGOTE_BOOTSTRAP) import it; a
    # supervisor forked by the zygote shows the zygote's command line, so the zygote counts here
    # too.
    if "import supervisor" in command_line:
        return "supervisor"
    if "-m scheduler_service" in command_line:
        return "scheduler"
    if "-m catalog_service" in command_line:
        return "catalog"
    if "-m bench.profile" in command_line:
        return "loadgen"
    if "trivial.py" in command_line or "hold.py" in command_line or "pythonshell" in command_line:
        return "job"
    return "other"


@dataclass
class Aggregate:
    """Samples of one kind of process: in total, per leaf function (self), per function on
    the stack (cumulative, counted once per sample)."""

    samples: int = 0
    self_: Counter[str] = field(default_factory=Counter)
    total: Counter[str] = field(default_factory=Counter)


def aggregate(speedscope: Path, collapsed: Path, rate: int) -> dict[str, Aggregate]:
    """Self and cumulative samples per function and process kind; writes the collapsed
    stacks (root frame: ``<kind> <profile name>``) beside."""
    data = json.loads(speedscope.read_text())
    frames = data["shared"]["frames"]
    names = [f"{f['name']} ({_short(f.get('file', ''))}:{f.get('line', 0)})" for f in frames]
    result: dict[str, Aggregate] = defaultdict(Aggregate)
    stacks: Counter[str] = Counter()
    for profile in data["profiles"]:
        for stack, weight in zip(profile["samples"], profile["weights"], strict=True):
            # --subprocesses roots each stack in ``process PID:"COMMAND LINE"`` frames, the
            # ancestors first; the last one is the sampled process.
            marks = [k for k, i in enumerate(stack) if frames[i]["name"].startswith("process ")]
            command = frames[stack[marks[-1]]]["name"] if marks else profile.get("name", "")
            kind = process_kind(command)
            own = list(stack[marks[-1] + 1 :]) if marks else list(stack)
            if kind == "supervisor" and own and frames[own[0]].get("file") != "<string>":
                # A job forked by its supervisor, seen by py-spy before its exec: it keeps the
                # supervisor's command line, but a supervisor's stacks start in ``-c``'s code.
                kind = "job"
            # Weights are seconds (1/rate per sample).
            n = round(float(weight) * rate)
            agg = result[kind]
            agg.samples += n
            if own:
                agg.self_[names[own[-1]]] += n
            for name in {names[i] for i in own}:
                agg.total[name] += n
            root = f"{kind} {profile.get('name', '?')}".replace(";", ",")
            stacks[";".join([root, *(names[i].replace(";", ",") for i in own)])] += n
    collapsed.write_text("".join(f"{s} {n}\n" for s, n in stacks.most_common()))
    return dict(result)


def _short(path: str) -> str:
    """A frame's file, from the package or the standard library down."""
    root = str(procs.REPO) + "/"
    if path.startswith(root):
        return path.removeprefix(root)
    for marker in ("/site-packages/", "/lib/python3"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


def render_top(
    load: str, aggs: dict[str, Aggregate], rate: int, ops: int, top: int, reaped: Reaped
) -> str:
    """The ``top.txt`` of one load."""
    lines = [f"load {load}: {ops} operations, py-spy at {rate} samples/s (active threads only)"]
    lines.append(
        f"supervisors with their jobs (exact rusage: reaped by the zygote, or {reaped.count} "
        f"orphans reaped here): {reaped.cpu_seconds * 1000 / max(ops, 1):.2f} ms CPU per "
        "operation"
    )
    for kind in KINDS:
        agg = aggs.get(kind)
        if agg is None or not agg.samples:
            continue
        cpu_s = agg.samples / rate
        lines += [
            "",
            (
                f"== {kind}: {agg.samples} samples = {cpu_s:.2f} s CPU "
                f"= {cpu_s * 1000 / max(ops, 1):.3f} ms per operation"
            ),
        ]
        for title, counter in (("self", agg.self_), ("cumulative", agg.total)):
            lines.append(f"   -- top {top} by {title} time: % of {kind}, ms/op, function")
            listed = [
                (name, n)
                for name, n in counter.most_common()
                if title == "self" or not any(f in name for f in FRAMEWORK)
            ]
            for name, n in listed[:top]:
                lines.append(
                    f"   {100 * n / agg.samples:5.1f}%  {n / rate * 1000 / max(ops, 1):7.3f}  "
                    f"{name}"
                )
    return "\n".join(lines) + "\n"


# -- the loads -----------------------------------------------------------------------------------


@dataclass
class Result:
    """One profiled load."""

    load: str
    figure: Figure | None
    ops: int
    seconds: float
    load_avg: tuple[float, float, float]
    reaped: Reaped
    cpu_ms_per_op: dict[str, float]
    sampled_ms_per_op: dict[str, float]
    db_per_op: dict[str, float] = field(default_factory=dict)
    """PostgreSQL's own counters of the stack's database (pg_stat_database), per operation."""


_DB_COUNTERS = ("xact_commit", "xact_rollback", "tup_inserted", "tup_updated", "tup_deleted")


async def database_counters(stack: Stack) -> dict[str, float]:
    """Transactions and rows written so far in the stack's PostgreSQL database (both services
    share it); empty on SQLite. The statistics collector lags by up to a few hundred ms."""
    if stack.backend != "postgres":
        return {}
    args = stack.scheduler.args
    url = args[args.index("--database-url") + 1]
    database = url.rsplit("/", 1)[1]
    import asyncpg  # type: ignore[import-untyped]

    conn = await asyncpg.connect(procs._asyncpg_dsn(procs.ADMIN_URL))
    try:
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        row = await conn.fetchrow(
            f"SELECT {', '.join(_DB_COUNTERS)} FROM pg_stat_database WHERE datname = $1",
            database,
        )
    finally:
        await conn.close()
    return {k: float(row[k]) for k in _DB_COUNTERS} if row is not None else {}


async def profile_load(
    load: str,
    run: Callable[[], Awaitable[Figure]],
    stack: Stack,
    args: argparse.Namespace,
    binary: str,
    reaper: OrphanReaper,
) -> Result:
    """Run one load under py-spy; write its files; return the numbers."""
    out = args.out_dir / f"{args.backend}-{load}"
    sampler = Sampler(binary, args.rate, out.with_suffix(".speedscope.json"))
    await sampler.start()
    reaper.take()
    db_before = await database_counters(stack)
    meter = stack.meter()
    before = meter.snapshot()
    zygote_before = zygote_children_cpu(stack.scheduler.pid or 0)
    t0 = time.perf_counter()
    figure = await run()
    seconds = time.perf_counter() - t0
    cpu = meter.cores(before, meter.snapshot())
    await asyncio.sleep(1.0)  # the statistics collector's delay
    db_after = await database_counters(stack)
    reaped = reaper.take()
    reaped.cpu_seconds += zygote_children_cpu(stack.scheduler.pid or 0) - zygote_before
    load_avg = os.getloadavg()
    err = await sampler.stop()
    ops = figure.ok
    cpu_ms = {k: v * seconds * 1000 / max(ops, 1) for k, v in cpu.items()}
    sampled: dict[str, float] = {}
    if sampler.output.exists():
        aggs = aggregate(sampler.output, out.with_suffix(".collapsed.txt"), args.rate)
        sampled = {k: a.samples / args.rate * 1000 / max(ops, 1) for k, a in aggs.items()}
        text = render_top(load, aggs, args.rate, ops, args.top, reaped)
        out.with_suffix(".top.txt").write_text(text)
    else:
        print(f"py-spy wrote nothing for {load}: {err[-2000:]}", file=sys.stderr)
    db = {k: (db_after[k] - db_before.get(k, 0.0)) / max(ops, 1) for k in db_after}
    return Result(load, figure, ops, seconds, load_avg, reaped, cpu_ms, sampled, db)


async def supervisor_cost(work: Path, reaper: OrphanReaper, count: int) -> str:
    """CPU of a bare ``python -c pass`` and of the same under a supervisor, ``count`` times each
    one at a time, started by ``runner.ProcessRunner`` both ways it can: the launcher (an
    interpreter per run) and the zygote (a fork of an already-started one). The supervisor's
    own price per run is the difference.

    Needs this process to be a child subreaper (``become_subreaper``): supervisors are then
    re-parented and reaped here, so RUSAGE_CHILDREN holds every process of a run - the launcher
    or the zygote's forked child, the supervisor, the job. The zygote itself is closed (and so
    reaped, with the children it reaped) after the runs; its start-up, measured apart, is
    taken out. "scheduler side" is this process's own CPU per launch (RUSAGE_SELF: the fork
    of the caller or the message to the zygote, asyncio's child watcher, the status read).
    """
    import resource

    from scheduler_service import run_outcome, runner

    def cpu(who: int) -> float:
        usage = resource.getrusage(who)
        return usage.ru_utime + usage.ru_stime

    children, own = resource.RUSAGE_CHILDREN, resource.RUSAGE_SELF
    bare: list[float] = []
    bare_walls: list[float] = []
    for _ in range(count):
        before = cpu(children)
        t0 = time.perf_counter()
        process = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
        _SPAWNED.add(process.pid)
        await process.wait()
        bare_walls.append(time.perf_counter() - t0)
        bare.append(cpu(children) - before)

    async def under_supervisor(name: str, zygote: bool) -> tuple[float, float, float]:
        """(CPU ms per run in children, in this process, wall p50 ms to the outcome)."""
        processes = runner.ProcessRunner(work / name)
        walls: list[float] = []
        reaper.take()
        before_children, before_own = cpu(children), cpu(own)
        if zygote:
            assert await processes.start_zygote(), "the zygote did not start"
            _SPAWNED.add(processes.zygote_pid or 0)
        try:
            for n in range(count):
                t0 = time.perf_counter()
                handle = await processes.launch(
                    f"jr_{n}", [sys.executable, "-c", "pass"], None, env=os.environ
                )
                outcome = await handle.wait()
                walls.append(time.perf_counter() - t0)
                assert outcome.kind is run_outcome.OutcomeKind.SUCCEEDED, outcome
        finally:
            await processes.close()
        await asyncio.sleep(0.2)  # the reaper's last round
        reaper.take()
        walls.sort()
        return (
            1000 * (cpu(children) - before_children) / count,
            1000 * (cpu(own) - before_own) / count,
            1000 * walls[len(walls) // 2],
        )

    # The zygote's start and close alone, to take out of its per-run figure.
    starts = 5
    before = cpu(children)
    for n in range(starts):
        idle = runner.ProcessRunner(work / f"idle-{n}")
        await idle.start_zygote()
        _SPAWNED.add(idle.zygote_pid or 0)
        await idle.close()
    zygote_start_ms = 1000 * (cpu(children) - before) / starts

    launcher_ms, launcher_own_ms, launcher_wall = await under_supervisor("launcher", False)
    zygote_all_ms, zygote_own_ms, zygote_wall = await under_supervisor("zygote", True)
    zygote_ms = zygote_all_ms - zygote_start_ms / count
    bare_ms = 1000 * sum(bare) / len(bare)
    bare_walls.sort()
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return (
        f"supervisor price, {count} runs of `python -c pass` one at a time (load average "
        f"{load}):\n"
        f"  bare spawn:               {bare_ms:5.1f} ms CPU, wall p50 "
        f"{bare_walls[len(bare_walls) // 2] * 1000:5.1f} ms\n"
        f"  under a supervisor, launcher: {launcher_ms:5.1f} ms CPU in children "
        f"(+{launcher_ms - bare_ms:.1f} over bare) + {launcher_own_ms:.1f} ms scheduler side; "
        f"wall to the outcome p50 {launcher_wall:5.1f} ms\n"
        f"  under a supervisor, zygote:   {zygote_ms:5.1f} ms CPU in children and zygote "
        f"(+{zygote_ms - bare_ms:.1f} over bare) + {zygote_own_ms:.1f} ms scheduler side; "
        f"wall to the outcome p50 {zygote_wall:5.1f} ms (the zygote's start, "
        f"{zygote_start_ms:.1f} ms once, taken out)"
    )


async def profile(args: argparse.Namespace, binary: str, reaper: OrphanReaper) -> list[Result]:
    """Every requested load, on the bench's two stacks."""
    config = BenchConfig(
        concurrency=args.concurrency,
        duration=args.duration,
        warmup=0.0,
        trivial_runs=args.trivial_runs,
        sequential_runs=args.sequential_runs,
        max_processes=args.max_processes,
        log_level="WARNING",
    )
    work = args.out_dir / "work"
    shutil.rmtree(work, ignore_errors=True)
    results: list[Result] = []
    args.supervisor_note = await supervisor_cost(work / "supervised", reaper, args.sequential_runs)

    async def one(load: str, stack: Stack, run: Callable[[], Awaitable[Figure]]) -> None:
        if load in args.loads:
            print(f"[profile {time.strftime('%H:%M:%S')}] {load}", file=sys.stderr, flush=True)
            results.append(await profile_load(load, run, stack, args, binary, reaper))

    if any(load in args.loads for load in STACK_B):
        async with glue_figures.running_stack(args.backend, work / "b", config) as stack:
            await one("create_job", stack, lambda: glue_figures.create_job(stack, config))
            await one(
                "start_job_run_held",
                stack,
                lambda: glue_figures.start_job_run(stack, config, slots_held=True),
            )
    if any(load not in STACK_B for load in args.loads):
        async with glue_figures.running_stack(args.backend, work / "a", config) as stack:

            async def sequential() -> Figure:
                figure, _ = await glue_figures.sequential_latency(stack, config)
                return figure

            await one("start_to_succeeded", stack, sequential)
            await one(
                "trivial_runs", stack, lambda: glue_figures.trivial_runs_completed(stack, config)
            )
            await one(
                "start_job_run",
                stack,
                lambda: glue_figures.start_job_run(stack, config, slots_held=False),
            )
    shutil.rmtree(work, ignore_errors=True)
    return results


def render_summary(args: argparse.Namespace, results: list[Result]) -> str:
    """``summary.txt``."""
    lines = [
        (
            f"bench.profile on {args.backend}, {os.cpu_count()} cores, py-spy {args.rate}/s "
            f"--nonblocking, {args.concurrency} in flight, {args.duration:g} s per load"
        ),
        "",
        (
            "CPU ms per operation: meter = /proc accounting of the whole window (as the bench's "
            "cpu columns); sampled = py-spy's active samples; sup+job = exact rusage of the "
            "supervisors (with their jobs), per operation: those the zygote reaped (its "
            "children's CPU) and any orphan reaped here (launcher mode)"
        ),
        "",
        getattr(args, "supervisor_note", ""),
    ]
    for r in results:
        f = r.figure
        rate = f"{f.rate:,.0f}/s" if f is not None else "-"
        p50 = f"p50 {f.p50_ms:.1f} ms" if f is not None and f.latencies else ""
        meter = " ".join(
            f"{k} {r.cpu_ms_per_op[k]:.2f}"
            for k in ("catalog", "scheduler", "postgres", "loadgen", "other")
            if k in r.cpu_ms_per_op
        )
        sampled = " ".join(f"{k} {v:.2f}" for k, v in sorted(r.sampled_ms_per_op.items()))
        sup = (
            f"{r.reaped.cpu_seconds * 1000 / max(r.ops, 1):.2f} "
            f"({r.reaped.count} orphans reaped here; the rest by the zygote)"
        )
        lines += [
            "",
            (
                f"{r.load}: {r.ops} ops in {r.seconds:.1f} s, {rate} {p50}; "
                f"load average {r.load_avg[0]:.2f} {r.load_avg[1]:.2f} {r.load_avg[2]:.2f}"
            ),
            f"   meter   {meter}",
            f"   sampled {sampled}",
            f"   sup+job {sup}",
        ]
        if r.db_per_op:
            lines.append(
                "   db/op   "
                + " ".join(f"{k} {v:.2f}" for k, v in r.db_per_op.items())
                + " (both services and the bench's reads; one second after the load included)"
            )
        if f is not None and f.note:
            lines.append(f"   note    {f.note}")
    return "\n".join(lines) + "\n"


def find_py_spy(explicit: str | None) -> str:
    """The py-spy binary: ``--py-spy``, beside this interpreter, or on PATH."""
    if explicit:
        return explicit
    beside = Path(sys.executable).parent / "py-spy"
    if beside.exists():
        return str(beside)
    found = shutil.which("py-spy")
    if found is None:
        raise SystemExit("py-spy not found: `make .stamps/dev` installs it (the dev extra)")
    return found


async def _main(args: argparse.Namespace, binary: str, reaper: OrphanReaper) -> int:
    task = asyncio.current_task()
    if task is not None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    if args.only_supervisor_cost:
        work = args.out_dir / "work" / "supervised"
        shutil.rmtree(work, ignore_errors=True)
        text = await supervisor_cost(work, reaper, args.sequential_runs)
        (args.out_dir / "supervisor-cost.txt").write_text(text + "\n")
        print(text)
        return 0
    if args.backend == "postgres":
        problem = await procs.postgres_available()
        if problem:
            print(f"PostgreSQL at {procs.ADMIN_URL} is not reachable: {problem}", file=sys.stderr)
            return 2
    results = await profile(args, binary, reaper)
    text = render_summary(args, results)
    (args.out_dir / "summary.txt").write_text(text)
    print(text)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    binary = "" if args.only_supervisor_cost else find_py_spy(args.py_spy)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    if not become_subreaper():
        print("cannot become a child subreaper: supervisors will not be sampled", file=sys.stderr)
    reaper = OrphanReaper(lambda: set(procs._LIVE) | _asyncio_children())
    reaper.start()
    try:
        return asyncio.run(_main(args, binary, reaper))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("\ninterrupted; everything started was stopped", file=sys.stderr)
        return 130
    finally:
        procs.kill_leftovers()
        reaper.stop()


_SPAWNED: set[int] = set()


def _asyncio_children() -> set[int]:
    """py-spy's pid (the services are in ``procs._LIVE``)."""
    return set(_SPAWNED)


if __name__ == "__main__":
    sys.exit(main())
