"""``python -m bench``: measure the services and the baselines, print the table and targets.

Examples::

    python -m bench                       # both backends, ~5 s per figure, gateway, triggers
    python -m bench --quick               # ~1.5 s per figure
    python -m bench --backend postgres --json bench.json
    python -m bench --triggers-only       # only the trigger figures (and APScheduler's)
    python -m bench --skip-triggers       # only the request/run figures
    python -m bench --triggers-only --trigger-backend both --scale-register rpc
    python -m bench --gateway-only --quick --backend sqlite   # boto3 via the gateway vs moto
    python -m bench --skip-gateway        # no boto3/HTTP gateway figures
    python -m bench --auth-only           # GetJobRun open vs with a key vs with a policy

Everything started here (services, echo servers, databases, temporary directories) is
stopped and removed on the way out, including on Ctrl-C, SIGTERM and errors.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import grpc

from bench import (
    auth_figures,
    baselines,
    gateway_figures,
    glue_figures,
    procs,
    report,
    spark_figures,
    trigger_figures,
)
from bench.gateway_figures import GatewayConfig
from bench.glue_figures import BenchConfig
from bench.load import Figure
from bench.trigger_figures import TriggerConfig, TriggerFigure

SERVICE_CODE = ("catalog_service", "scheduler_service", "servicekit", "protos", "pyproject.toml")
"""What the measured figures depend on (for the "uncommitted changes" remark)."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Throughput and latency of the Glue scheduler services vs. baselines.",
    )
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--quick", action="store_true", help="~1.5 s per figure, fewer runs")
    parser.add_argument("--duration", type=float, help="seconds per closed-loop figure [5; 1.5]")
    parser.add_argument("--warmup", type=float, help="seconds of warm-up per figure [0.5; 0.3]")
    parser.add_argument("--concurrency", type=int, default=64, help="calls in flight [64]")
    parser.add_argument("--channels", type=int, default=1, help="grpc.aio channels [1]")
    parser.add_argument("--trivial-runs", type=int, help="runs for runs-completed/s [200; 80]")
    parser.add_argument(
        "--sequential-runs", type=int, help="runs for the one-at-a-time latency [20; 10]"
    )
    parser.add_argument("--max-processes", type=int, default=8, help="scheduler cap [8]")
    parser.add_argument("--log-level", default="INFO", help="the services' log level [INFO]")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument(
        "--keep", action="store_true", help="keep the work directory (service logs) and say where"
    )
    triggers = parser.add_argument_group("trigger figures (see bench/trigger_figures.py)")
    part = triggers.add_mutually_exclusive_group()
    part.add_argument(
        "--triggers-only", action="store_true", help="only the trigger figures and baselines"
    )
    part.add_argument("--skip-triggers", action="store_true", help="no trigger figures")
    triggers.add_argument(
        "--trigger-backend",
        choices=["postgres", "sqlite", "both"],
        default="postgres",
        help="database(s) of the trigger figures [postgres; the targets are stated on it]",
    )
    triggers.add_argument(
        "--trigger-parts",
        default="burst,scale,apscheduler",
        help="comma-separated subset of burst,scale,apscheduler [all]",
    )
    triggers.add_argument(
        "--burst-triggers", type=int, default=10_000, help="triggers due at once [10000]"
    )
    triggers.add_argument(
        "--burst-jobs", type=int, default=100, help="jobs their actions start [100]"
    )
    triggers.add_argument(
        "--scale-triggers", type=int, default=100_000, help="triggers at rest [100000]"
    )
    triggers.add_argument(
        "--scale-register",
        choices=["db", "rpc"],
        default="db",
        help="register the scale triggers in bulk into the scheduler's table (db) or by "
        "AddTrigger calls (rpc, ~3 min for 100k) [db]",
    )
    triggers.add_argument(
        "--restart-due",
        type=int,
        default=100,
        help="triggers made due at the restart by fault injection [100]",
    )
    triggers.add_argument(
        "--restart-due-after",
        type=float,
        default=0.0,
        help="their due time, seconds after the new process is spawned [0]",
    )
    triggers.add_argument(
        "--miss-after",
        type=float,
        default=30.0,
        help="seconds after the due time a burst trigger without a fire counts as missed [30]",
    )
    triggers.add_argument(
        "--register-concurrency", type=int, default=64, help="AddTrigger calls in flight [64]"
    )
    gateway = parser.add_argument_group(
        "gateway figures: boto3 through the catalog's HTTP gateway vs moto's server mode "
        "(see bench/gateway_figures.py); on --backend, with --duration/--warmup"
    )
    gpart = gateway.add_mutually_exclusive_group()
    gpart.add_argument(
        "--gateway-only", action="store_true", help="only the gateway figures (and moto's)"
    )
    gpart.add_argument("--skip-gateway", action="store_true", help="no gateway figures")
    gateway.add_argument(
        "--gateway-threads",
        type=int,
        default=8,
        help="client threads, one boto3 client each [8]",
    )
    spark = parser.add_argument_group("glueetl figures (see bench/spark_figures.py)")
    spart = spark.add_mutually_exclusive_group()
    spart.add_argument("--spark-only", action="store_true", help="only the glueetl figures")
    spart.add_argument("--skip-spark", action="store_true", help="no glueetl figures")
    spark.add_argument("--spark-runs", type=int, default=5, help="trivial runs each way [5]")
    spark.add_argument(
        "--spark-rows", type=int, default=5_000_000, help="rows of the CSV job [5,000,000]"
    )
    spark.add_argument("--spark-files", type=int, default=500, help="bookmarked files [500]")
    auth = parser.add_argument_group("authentication figures (see bench/auth_figures.py)")
    apart = auth.add_mutually_exclusive_group()
    apart.add_argument("--auth-only", action="store_true", help="only the authentication cost")
    apart.add_argument("--skip-auth", action="store_true", help="no authentication figures")
    auth.add_argument("--auth-rounds", type=int, default=3, help="turns each mode takes [3]")
    args = parser.parse_args(argv)
    if args.gateway_only and args.triggers_only:
        parser.error("--gateway-only and --triggers-only exclude each other")
    return args


def _backends(choice: str) -> tuple[str, ...]:
    """The databases a ``--backend``/``--trigger-backend`` choice names."""
    return ("postgres", "sqlite") if choice == "both" else (choice,)


def build_gateway_config(args: argparse.Namespace, config: BenchConfig) -> GatewayConfig:
    """The gateway figures' settings (durations shared with the service figures)."""
    return GatewayConfig(
        backends=_backends(args.backend),
        threads=args.gateway_threads,
        duration=config.duration,
        warmup=config.warmup,
        max_processes=config.max_processes,
        log_level=config.log_level,
    )


def build_trigger_config(args: argparse.Namespace) -> TriggerConfig:
    """The trigger figures' settings."""
    parts = {p.strip() for p in args.trigger_parts.split(",") if p.strip()}
    unknown = parts - {"burst", "scale", "apscheduler"}
    if unknown:
        raise SystemExit(f"--trigger-parts: unknown part(s) {', '.join(sorted(unknown))}")
    return TriggerConfig(
        backends=_backends(args.trigger_backend),
        burst_triggers=args.burst_triggers,
        burst_jobs=args.burst_jobs,
        scale_triggers=args.scale_triggers,
        scale_register=args.scale_register,
        restart_due=args.restart_due,
        restart_due_after=args.restart_due_after,
        miss_after=args.miss_after,
        register_concurrency=args.register_concurrency,
        max_processes=args.max_processes,
        log_level=args.log_level,
        apscheduler="apscheduler" in parts,
        burst="burst" in parts,
        scale="scale" in parts,
    )


def build_config(args: argparse.Namespace) -> BenchConfig:
    """Defaults, shortened by --quick, overridden by explicit flags."""
    quick = args.quick

    def pick(value: Any, normal: Any, short: Any) -> Any:
        if value is not None:
            return value
        return short if quick else normal

    return BenchConfig(
        concurrency=args.concurrency,
        channels=args.channels,
        duration=pick(args.duration, 5.0, 1.5),
        warmup=pick(args.warmup, 0.5, 0.3),
        trivial_runs=pick(args.trivial_runs, 200, 80),
        sequential_runs=pick(args.sequential_runs, 20, 10),
        max_processes=args.max_processes,
        log_level=args.log_level,
    )


def progress(message: str) -> None:
    """A progress line on stderr (the report goes to stdout)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def run(
    args: argparse.Namespace,
    config: BenchConfig,
    tconfig: TriggerConfig,
    gconfig: GatewayConfig,
    work_dir: Path,
) -> int:
    """Measure everything; print the report. Returns the exit status."""
    started = time.monotonic()
    figures: list[Figure] = []
    tfigures: list[TriggerFigure] = []
    notes: list[str] = []
    tnotes: list[str] = []
    gfigures: list[Figure] = []
    gnotes: list[str] = []
    failures = 0
    only = {
        "services": False,
        "triggers": args.triggers_only,
        "gateway": args.gateway_only,
        "spark": args.spark_only,
        "auth": args.auth_only,
    }

    def wanted(part: str, skip: bool) -> bool:
        return not skip and not any(v for name, v in only.items() if name != part)

    services_part = wanted("services", False)
    triggers_part = wanted("triggers", args.skip_triggers)
    gateway_part = wanted("gateway", args.skip_gateway)
    spark_part = wanted("spark", args.skip_spark)
    auth_part = wanted("auth", args.skip_auth)
    auth_lines: list[str] = []
    auth_targets: list[str] = []
    spark_lines: list[str] = []
    spark_targets: list[str] = []

    backends = list(_backends(args.backend))
    pg_problem = await procs.postgres_available()
    if pg_problem:
        if ((services_part or gateway_part) and args.backend == "postgres") or (
            triggers_part and tconfig.backends == ("postgres",)
        ):
            print(
                f"PostgreSQL at {procs.ADMIN_URL} is not reachable: {pg_problem}", file=sys.stderr
            )
            return 2
        notes.append(f"PostgreSQL not reachable ({pg_problem}): its figures are skipped")
        backends = [b for b in backends if b != "postgres"]
        tconfig = replace(tconfig, backends=tuple(b for b in tconfig.backends if b != "postgres"))
        gconfig = replace(gconfig, backends=tuple(b for b in gconfig.backends if b != "postgres"))

    progress("measuring background load for 1 s")
    background = await procs.background_load(1.0)

    async def attempt(label: str, coro: Any) -> None:
        nonlocal failures
        progress(label)
        try:
            result = await coro
        except Exception as exc:  # noqa: BLE001 - one failed part must not lose the others
            failures += 1
            notes.append(f"{label} FAILED: {type(exc).__name__}: {str(exc)[:500]}")
            traceback.print_exc()
            return
        if isinstance(result, Figure):
            figures.append(result)

    if services_part:
        await _measure_services(config, work_dir, backends, pg_problem, attempt, figures)
    if gateway_part:
        failures += await _measure_part(
            "gateway figures",
            gateway_figures.measure(work_dir / "gateway", gconfig, gfigures, gnotes, progress),
            gnotes,
        )
    if triggers_part:
        failures += await _measure_part(
            "trigger figures",
            trigger_figures.measure(work_dir / "triggers", tconfig, tfigures, tnotes, progress),
            tnotes,
        )

    if spark_part:
        try:
            spark_lines, spark_targets = await spark_figures.measure(
                args.spark_runs, args.spark_rows, args.spark_files, progress
            )
        except Exception as exc:  # noqa: BLE001 - one failed part must not lose the others
            failures += 1
            spark_lines = [f"glueetl figures FAILED: {type(exc).__name__}: {str(exc)[:500]}"]
            traceback.print_exc()

    if auth_part:
        backend = "postgres" if "postgres" in backends else "sqlite"
        try:
            auth_lines, auth_targets = await auth_figures.measure(
                work_dir / "auth", config, backend, progress, rounds=args.auth_rounds
            )
        except Exception as exc:  # noqa: BLE001 - one failed part must not lose the others
            failures += 1
            auth_lines = [f"authentication figures FAILED: {type(exc).__name__}: {str(exc)[:500]}"]
            traceback.print_exc()

    progress("measuring background load for 1 s")
    background_after = await procs.background_load(1.0)
    commit = await _git_describe()
    all_targets = [t for b in backends for t in report.targets(figures, b)] if services_part else []
    trigger_targets = [t for b in tconfig.backends for t in report.trigger_targets(tfigures, b)]
    load_avg = os.getloadavg()
    busy_note = " - NOT IDLE, figures are noisy" if max(background, background_after) > 0.2 else ""
    header = [
        "Glue scheduler benchmark",
        (
            f"  machine: {os.cpu_count()} cores, {platform.platform()}; Python "
            f"{platform.python_version()}, grpcio {grpc.__version__}, default asyncio loop"
        ),
    ]
    if services_part:
        header += [
            (
                f"  load: {config.concurrency} calls in flight over {config.channels} grpc.aio "
                f"channel(s), {config.duration:g} s per figure after {config.warmup:g} s "
                f"warm-up; scheduler --max-processes {config.max_processes}"
            ),
            (
                "  CAUTION: the load generator, both servers, PostgreSQL and every job process "
                f"share these {os.cpu_count()} cores;"
            ),
            (
                "  the load generator's own CPU is in the 'gen' column - at full load it takes "
                "a large share, so absolute rates understate what the servers could do alone "
                "(the ratios compare like with like)."
            ),
        ]
    if triggers_part:
        header.append(
            f"  triggers: on {', '.join(tconfig.backends) or 'no database'}, scheduler alone "
            f"(no catalog), --max-processes {tconfig.max_processes}, "
            f"{tconfig.register_concurrency} AddTrigger calls in flight; 100k registered "
            f"{'by AddTrigger' if tconfig.scale_register == 'rpc' else 'in bulk into its table'}"
        )
    header += [
        f"  code: {commit}",
        (
            f"  background load (nothing of ours running): {background:.2f} cores busy before, "
            f"{background_after:.2f} after (load average {load_avg[0]:.2f}){busy_note}"
        ),
        f"  total wall time: {time.monotonic() - started:.0f} s",
    ]
    if services_part:
        text = report.render(figures, all_targets, header, notes)
    else:
        text = "\n".join([*header, *(["", "Notes:", *(f"  {n}" for n in notes)] if notes else [])])
    if gateway_part:
        text += "\n\n" + gateway_figures.render(gfigures, gconfig, gnotes)
    if triggers_part:
        text += "\n\n" + report.render_triggers(tfigures, trigger_targets, tnotes)
    if spark_part:
        text += "\n\nglueetl (Spark, local mode)\n" + "\n".join(f"  {line}" for line in spark_lines)
        text += "\n\nTargets (glueetl):\n" + "\n".join(f"  {line}" for line in spark_targets)
    if auth_part:
        text += (
            f"\n\nAuthentication on the gRPC door (GetJobRun of one finished run, "
            f"{config.concurrency} in flight; median of {args.auth_rounds} turns)\n"
            + "\n".join(f"  {line}" for line in auth_lines)
        )
        text += "\n\nTargets (authentication):\n" + "\n".join(f"  {t}" for t in auth_targets)
    print(text, flush=True)
    if args.json:
        meta = {
            "config": _config_dict(config),
            "trigger_config": _config_dict(tconfig),
            "gateway_config": _config_dict(gconfig),
            "background_cores_before": background,
            "background_cores_after": background_after,
            "commit": commit,
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "grpcio": grpc.__version__,
            "notes": notes + gnotes + tnotes,
            "wall_s": time.monotonic() - started,
        }
        report.write_json(
            args.json, figures, all_targets + trigger_targets, meta, tfigures, gfigures
        )
        progress(f"wrote {args.json}")
    return 1 if failures else 0


async def _measure_part(label: str, measure: Awaitable[int], notes: list[str]) -> int:
    """Await a part's ``measure`` (which returns how many of its figures failed); if the part
    fails as a whole, that is one failure, noted in ``notes`` (the other parts still run)."""
    try:
        return await measure
    except Exception as exc:  # noqa: BLE001 - the other parts' figures are still printed
        notes.append(f"{label} FAILED: {type(exc).__name__}: {str(exc)[:500]}")
        traceback.print_exc()
        return 1


async def _measure_services(
    config: BenchConfig,
    work_dir: Path,
    backends: list[str],
    pg_problem: str | None,
    attempt: Callable[[str, Any], Awaitable[None]],
    figures: list[Figure],
) -> None:
    """The baselines and the request/run figures of both services (the original benchmark)."""
    common: dict[str, Any] = {
        "concurrency": config.concurrency,
        "channels": config.channels,
        "duration": config.duration,
        "warmup": config.warmup,
    }
    await attempt(
        "baseline: bare grpc.aio echo",
        baselines.echo_figure(
            "echo", "grpc.aio unary echo (bytes, generic handler)", work_dir, insert=False, **common
        ),
    )
    if not pg_problem:
        await attempt(
            "baseline: echo + SQLAlchemy ORM insert on asyncpg",
            baselines.echo_figure(
                "echo_insert",
                "echo + SQLAlchemy ORM insert+commit (asyncpg)",
                work_dir,
                insert=True,
                **common,
            ),
        )
    await attempt(
        f"baseline: bare spawns, {config.max_processes} parallel",
        baselines.spawn_throughput(
            parallel=config.max_processes, duration=config.duration, warmup=config.warmup
        ),
    )
    await attempt(
        "baseline: one bare spawn at a time",
        baselines.spawn_latency(config.sequential_runs),
    )
    for backend in backends:
        await attempt(
            f"services on {backend}",
            glue_figures.measure_backend(backend, work_dir, config, figures),
        )


async def _git_describe() -> str:
    """HEAD's commit, and whether the checkout has uncommitted changes."""
    try:
        head = await asyncio.create_subprocess_exec(
            "git",
            "-C",
            str(procs.REPO),
            "log",
            "-1",
            "--format=%h %s",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        out, _ = await head.communicate()
        status = await asyncio.create_subprocess_exec(
            "git",
            "-C",
            str(procs.REPO),
            "status",
            "--porcelain",
            "--",
            *SERVICE_CODE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        dirty, _ = await status.communicate()
    except OSError:
        return "unknown (git not available)"
    text = out.decode(errors="replace").strip() or "unknown"
    return text + (" + uncommitted changes to the services" if dirty.strip() else "")


def _config_dict(config: BenchConfig | TriggerConfig | GatewayConfig) -> dict[str, Any]:
    return {name: getattr(config, name) for name in config.__dataclass_fields__}


async def _main(
    args: argparse.Namespace,
    config: BenchConfig,
    tconfig: TriggerConfig,
    gconfig: GatewayConfig,
    work_dir: Path,
) -> int:
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    if task is not None:
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    return await run(args, config, tconfig, gconfig, work_dir)


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    config = build_config(args)
    tconfig = build_trigger_config(args)
    gconfig = build_gateway_config(args, config)
    work_dir = Path(tempfile.mkdtemp(prefix="glue-bench-"))
    status = 1
    try:
        status = asyncio.run(_main(args, config, tconfig, gconfig, work_dir))
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("\ninterrupted; everything started was stopped", file=sys.stderr)
        status = 130
    finally:
        procs.kill_leftovers()
        if args.keep:
            progress(f"work directory kept: {work_dir}")
        else:
            with contextlib.suppress(OSError):
                shutil.rmtree(work_dir)
    return status


if __name__ == "__main__":
    sys.exit(main())
