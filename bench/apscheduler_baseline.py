"""Plain APScheduler 3.11, no database and no gRPC: the baseline of the trigger figures.

Run as a subprocess (``python -m bench.apscheduler_baseline MODE ...``) so that its RSS is its
own; it prints one JSON object on stdout (or writes it to ``--out``).

``burst``
    An ``AsyncIOScheduler`` (UTC, in-memory job store, default AsyncIOExecutor) gets N jobs,
    each a ``CronTrigger`` naming the same second a few seconds ahead, each running a trivial
    job that records when it started: a coroutine (``--job-kind coroutine``, run as a task on
    the loop) or a plain function (``function``, run in the loop's default thread pool). With
    ``--grace default`` the scheduler keeps its default ``misfire_grace_time`` (1 s) and the
    figure is how many EVENT_JOB_MISSED vs EVENT_JOB_EXECUTED; with ``--grace none``
    (``misfire_grace_time=None``) every job runs and the figure is its lateness (time the job
    started minus the scheduled second).

``scale``
    A started ``AsyncIOScheduler`` gets N daily cron jobs spread over the day (none due within
    the next 15 minutes): the time to add them and the RSS (VmRSS) before and after. The memory
    job store keeps nothing across a restart, so a restarted APScheduler fires again only after
    its jobs were all added again: the add time is also its restart-to-firing time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import math
import sys
import time
from datetime import UTC, datetime
from typing import Any

from apscheduler import __version__ as apscheduler_version
from apscheduler.events import EVENT_JOB_EXECUTED, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger


def rss_bytes() -> int:
    """This process's resident set size (VmRSS)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


async def burst(jobs: int, grace: str, kind: str, lead: float, timeout: float) -> dict[str, Any]:
    """N jobs due in the same second; see the module docstring."""
    defaults: dict[str, Any] = {}
    if grace == "none":
        defaults["misfire_grace_time"] = None
    scheduler = AsyncIOScheduler(timezone=UTC, job_defaults=defaults)
    started: list[float] = []
    counts = {"executed": 0, "missed": 0}
    done = asyncio.Event()

    def listener(event: JobExecutionEvent) -> None:
        counts["executed" if event.code == EVENT_JOB_EXECUTED else "missed"] += 1
        if counts["executed"] + counts["missed"] >= jobs:
            done.set()

    async def coroutine_job() -> None:
        started.append(time.time())

    def function_job() -> None:
        started.append(time.time())

    job = coroutine_job if kind == "coroutine" else function_job
    scheduler.add_listener(listener, EVENT_JOB_EXECUTED | EVENT_JOB_MISSED)
    scheduler.start()
    due = float(math.ceil(time.time() + lead))
    when = datetime.fromtimestamp(due, UTC)
    trigger_fields = {
        "year": when.year,
        "month": when.month,
        "day": when.day,
        "hour": when.hour,
        "minute": when.minute,
        "second": when.second,
    }
    t0 = time.perf_counter()
    for i in range(jobs):
        scheduler.add_job(job, CronTrigger(timezone=UTC, **trigger_fields), id=f"j{i}")
    add_seconds = time.perf_counter() - t0
    added_before_due = time.time() < due
    try:
        await asyncio.wait_for(done.wait(), max(due - time.time(), 0) + timeout)
        timed_out = False
    except TimeoutError:
        timed_out = True
    scheduler.shutdown(wait=False)
    lateness = [t - due for t in started]
    return {
        "mode": "burst",
        "grace": "default (1 s)" if grace == "default" else "None",
        "job_kind": kind,
        "jobs": jobs,
        "executed": counts["executed"],
        "missed": counts["missed"],
        "unaccounted": jobs - counts["executed"] - counts["missed"],
        "timed_out": timed_out,
        "add_seconds": add_seconds,
        "added_before_due": added_before_due,
        "lateness_p50_s": _percentile(lateness, 50),
        "lateness_p99_s": _percentile(lateness, 99),
        "lateness_max_s": max(lateness) if lateness else math.nan,
        "apscheduler": apscheduler_version,
    }


async def scale(jobs: int) -> dict[str, Any]:
    """N cron jobs added to a started scheduler; see the module docstring."""
    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.start()

    def job() -> None:
        pass

    await asyncio.sleep(0.2)
    rss_before = rss_bytes()
    # Spread over the day from 15 minutes ahead, so that none comes due while measured.
    base = int(time.time() // 60) + 15
    t0 = time.perf_counter()
    for i in range(jobs):
        minute_of_day = (base + i % (24 * 60 - 30)) % (24 * 60)
        trigger = CronTrigger(minute=minute_of_day % 60, hour=minute_of_day // 60, timezone=UTC)
        scheduler.add_job(job, trigger, id=f"j{i}")
    add_seconds = time.perf_counter() - t0
    await asyncio.sleep(0.5)
    rss_after = rss_bytes()
    held = len(scheduler.get_jobs())
    scheduler.shutdown(wait=False)
    return {
        "mode": "scale",
        "jobs": jobs,
        "held": held,
        "add_seconds": add_seconds,
        "rss_before": rss_before,
        "rss_after": rss_after,
        "apscheduler": apscheduler_version,
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point: one measurement, one JSON line on stdout."""
    parser = argparse.ArgumentParser(prog="python -m bench.apscheduler_baseline")
    parser.add_argument("mode", choices=["burst", "scale"])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--grace", choices=["default", "none"], default="default")
    parser.add_argument(
        "--lead", type=float, default=5.0, help="seconds from now to the due second [5]"
    )
    parser.add_argument(
        "--job-kind",
        choices=["coroutine", "function"],
        default="coroutine",
        help="the job: a coroutine (run on the loop) or a plain function (run in the loop's "
        "default thread pool) [coroutine]",
    )
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--out", help="write the JSON here instead of stdout")
    args = parser.parse_args(argv)
    # One "was missed by" warning per job would cost more than the jobs themselves.
    logging.getLogger("apscheduler").setLevel(logging.ERROR)
    if args.mode == "burst":
        result = asyncio.run(burst(args.jobs, args.grace, args.job_kind, args.lead, args.timeout))
    else:
        result = asyncio.run(scale(args.jobs))
    text = json.dumps(result) + "\n"
    if args.out:
        with open(args.out, "w") as out:
            out.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
