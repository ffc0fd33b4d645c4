"""What the job sandbox costs per run: ``python -m bench.sandbox_figures [--rounds N]``.

Two views, each variant measured in turns on the same machine (A B A B ...), so that a
change in the machine's load hits every variant alike:

1. The runner alone: ``ProcessRunner.launch`` to the recorded outcome of a trivial
   pythonshell script (``pass``), one run at a time. Variants: the supervisor as it was before
   the sandbox (``git show main:scheduler_service/supervisor.py``: posix_spawn, stdout
   straight to the log), the new supervisor without a sandbox (fork + exec, stdout piped,
   subreaper), and with every mechanism (a uid per run, cgroups, rlimits, log cap).
2. The services: StartJobRun-to-SUCCEEDED p50 (one run at a time) and trivial runs
   completed/s (N started at once) with the sandbox on (``--run-uids``, cgroups, rlimits) and
   off (``--run-cgroups off``, no uid; rlimits and the log cap are always on), SQLite.

Jobs run ``/usr/bin/python3`` (``--python``): an interpreter under /root is out of reach of
the run uids. Needs root for the uid and cgroup variants.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.glue_figures import (
    BenchConfig,
    running_stack,
    sequential_latency,
    trivial_runs_completed,
)
from bench.load import percentile
from scheduler_service import runner as runner_module
from scheduler_service.cgroups import detect_cgroups
from scheduler_service.run_outcome import OutcomeKind
from scheduler_service.runner import ProcessRunner
from scheduler_service.sandbox import Sandbox

JOB_PYTHON = "/usr/bin/python3"
RUN_UIDS = "61000-61999"


@contextmanager
def _old_supervisor(directory: Path) -> Iterator[None]:
    """Make ProcessRunner start main's supervisor (the one before the sandbox)."""
    source = subprocess.run(
        ["git", "show", "main:scheduler_service/supervisor.py"],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    ).stdout
    (directory / "supervisor.py").write_text(source)
    saved = runner_module._BOOTSTRAP
    runner_module._BOOTSTRAP = runner_module._sv.BOOTSTRAP.format(directory=str(directory))
    try:
        yield
    finally:
        runner_module._BOOTSTRAP = saved


async def _one_run(runner: ProcessRunner, run_id: str, script: Path) -> float:
    t0 = time.perf_counter()
    handle = await runner.launch(run_id, [JOB_PYTHON, str(script)], None, env={"PATH": "/usr/bin"})
    outcome = await handle.wait()
    elapsed = time.perf_counter() - t0
    if outcome.kind is not OutcomeKind.SUCCEEDED:
        raise RuntimeError(f"{run_id}: {outcome.kind.value} {outcome.message}")
    return elapsed


def prepare(root: Path) -> Path:
    """A directory every uid can pass through, with the trivial script; the script."""
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)
    script = root / "trivial.py"
    script.write_text("pass\n")
    script.chmod(0o644)
    (root / "old-supervisor").mkdir()
    return script


async def runner_figures(root: Path, script: Path, runs: int) -> dict[str, list[float]]:
    """Launch-to-outcome seconds per run, per variant, variants taking turns run by run."""
    old_dir = root / "old-supervisor"
    full = Sandbox(
        run_uids=(61000, 61999) if os.geteuid() == 0 else None,
        cgroups=detect_cgroups(),
    )
    variants = {
        "main supervisor (posix_spawn)": ProcessRunner(root / "runs-old"),
        "new supervisor, no sandbox": ProcessRunner(root / "runs-plain"),
        "new supervisor, full sandbox": ProcessRunner(root / "runs-full", sandbox=full),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for n in range(runs + 3):  # the first 3 rounds warm the caches and are not counted
        for name, runner in variants.items():
            if name.startswith("main"):
                with _old_supervisor(old_dir):
                    elapsed = await _one_run(runner, f"r{n}", script)
            else:
                elapsed = await _one_run(runner, f"r{n}", script)
            if n >= 3:
                times[name].append(elapsed)
    return times


async def service_figures(root: Path, rounds: int, trivial_runs: int) -> dict[str, list[float]]:
    """StartJobRun->SUCCEEDED p50 (ms) and runs/s, sandbox on and off, in turns."""
    config = BenchConfig(sequential_runs=30, trivial_runs=trivial_runs, log_level="WARNING")
    results: dict[str, list[float]] = {}
    saved = dict(os.environ)
    try:
        os.environ["SCHEDULER_PYTHON"] = JOB_PYTHON
        for turn in range(rounds):
            for variant in ("off", "on"):
                if variant == "on":
                    os.environ["SCHEDULER_RUN_UIDS"] = RUN_UIDS
                    os.environ["SCHEDULER_RUN_CGROUPS"] = "on"
                else:
                    os.environ.pop("SCHEDULER_RUN_UIDS", None)
                    os.environ["SCHEDULER_RUN_CGROUPS"] = "off"
                stack_root = root / f"{variant}-{turn}"
                async with running_stack("sqlite", stack_root, config) as stack:
                    # Reachable by the run uids (the stack's directories are made 0700).
                    for path in (root, stack_root, stack.scripts):
                        path.chmod(0o755)
                    for script in stack.scripts.iterdir():
                        script.chmod(0o644)
                    latency, _ = await sequential_latency(stack, config)
                    completed = await trivial_runs_completed(stack, config)
                for key, value in (
                    (
                        f"{variant}: StartJobRun->SUCCEEDED p50 ms",
                        percentile(latency.latencies, 50) * 1000,
                    ),
                    (f"{variant}: trivial runs completed/s", completed.rate),
                    (
                        f"{variant}: errors",
                        float(sum(latency.errors.values()) + sum(completed.errors.values())),
                    ),
                ):
                    results.setdefault(key, []).append(value)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return results


def main(argv: list[str] | None = None) -> int:
    """Measure and print both views."""
    parser = argparse.ArgumentParser(prog="python -m bench.sandbox_figures")
    parser.add_argument("--runs", type=int, default=40, help="runner-level runs per variant")
    parser.add_argument("--rounds", type=int, default=2, help="service stacks per variant")
    parser.add_argument("--trivial-runs", type=int, default=100, help="runs started at once")
    parser.add_argument("--skip-services", action="store_true")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="sandbox-bench-"))
    root.chmod(0o755)  # the run uids pass through to their scripts
    try:
        script = prepare(root / "runner")
        times = asyncio.run(runner_figures(root / "runner", script, args.runs))
        print(f"runner: launch -> outcome, trivial pythonshell, {args.runs} runs each, in turns")
        base = percentile(times["main supervisor (posix_spawn)"], 50)
        for name, values in times.items():
            p50 = percentile(values, 50)
            print(
                f"  {name:32s} p50 {p50 * 1000:6.1f} ms"
                f"  p90 {percentile(values, 90) * 1000:6.1f} ms"
                f"  (+{(p50 - base) * 1000:.1f} ms over main)"
            )
        if not args.skip_services:
            results = asyncio.run(
                service_figures(root / "services", args.rounds, args.trivial_runs)
            )
            print(f"services (SQLite), {args.rounds} stacks per variant, in turns")
            for key, values in results.items():
                shown = ", ".join(f"{v:.1f}" for v in values)
                print(f"  {key:40s} {shown}  (median {percentile(values, 50):.1f})")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
