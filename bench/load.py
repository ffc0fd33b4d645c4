"""The closed-loop load generator and the statistics of one figure.

``closed_loop`` keeps exactly ``concurrency`` calls in flight on one asyncio loop: each worker
issues its next call as soon as its previous one answered, until the duration is up. Calls
that started before the deadline are allowed to finish and are counted; the rate divides the
successful calls by the time from the start until the last of them answered.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc

from bench.procs import CpuMeter


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (0-100) of ``values``; NaN if empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass
class Figure:
    """One measured line of the table."""

    group: str
    """Which block of the table it belongs to: ``baseline``, ``postgres``, ``sqlite``."""
    key: str
    """A short stable id (``echo``, ``get_job_run`` ...) the targets and the JSON file use."""
    name: str
    """What was measured."""
    unit: str
    """What ``rate`` counts per second: ``calls``, ``runs``, ``spawns``."""
    ok: int = 0
    """Successful operations."""
    elapsed: float = math.nan
    """Seconds the rate is computed over."""
    latencies: list[float] = field(default_factory=list, repr=False)
    """Per-operation latencies in seconds."""
    errors: Counter[str] = field(default_factory=Counter)
    """Failed operations by gRPC status (or exception) name."""
    first_error: str = ""
    """The first error's message, to show what went wrong."""
    cpu: dict[str, float] = field(default_factory=dict)
    """Cores used by each party while it was measured."""
    note: str = ""
    """One line of context printed under the table."""
    extra: dict[str, float] = field(default_factory=dict)
    """Further numbers (milliseconds or counts), shown in the notes and the JSON file."""

    @property
    def rate(self) -> float:
        """Operations per second."""
        if not self.ok or not self.elapsed or math.isnan(self.elapsed):
            return math.nan
        return self.ok / self.elapsed

    @property
    def p50_ms(self) -> float:
        """Median latency, ms."""
        return percentile(self.latencies, 50) * 1000

    @property
    def p99_ms(self) -> float:
        """99th-percentile latency, ms."""
        return percentile(self.latencies, 99) * 1000

    def record_error(self, exc: BaseException) -> None:
        """Count one failed operation."""
        if isinstance(exc, grpc.aio.AioRpcError):
            key = exc.code().name
            message = f"{key}: {exc.details()}"
        else:
            key = type(exc).__name__
            message = f"{key}: {exc}"
        self.errors[key] += 1
        if not self.first_error:
            self.first_error = message[:300]

    def as_dict(self) -> dict[str, Any]:
        """For the JSON file."""
        return {
            "group": self.group,
            "key": self.key,
            "name": self.name,
            "unit": self.unit,
            "ok": self.ok,
            "elapsed_s": self.elapsed,
            "rate_per_s": self.rate,
            "p50_ms": self.p50_ms,
            "p99_ms": self.p99_ms,
            "errors": dict(self.errors),
            "first_error": self.first_error,
            "cpu_cores": self.cpu,
            "note": self.note,
            "extra": self.extra,
        }


Call = Callable[[int], Awaitable[object]]
"""One operation; its argument is a sequence number unique across warm-up and measurement."""


async def closed_loop(
    figure: Figure,
    call: Call,
    *,
    concurrency: int,
    duration: float,
    warmup: float,
    meter: CpuMeter | None = None,
    counter: itertools.count[int] | None = None,
) -> Figure:
    """Fill ``figure`` with ``concurrency`` calls in flight for ``duration`` seconds.

    A warm-up of ``warmup`` seconds runs first, with the same load, and is not counted.
    """
    numbers = counter if counter is not None else itertools.count()

    async def run_phase(seconds: float, *, record: bool) -> float:
        deadline = time.perf_counter() + seconds
        last_done = time.perf_counter()

        async def worker() -> None:
            nonlocal last_done
            while time.perf_counter() < deadline:
                t0 = time.perf_counter()
                try:
                    await call(next(numbers))
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - every failure is counted, by kind
                    # Warm-up errors are counted too: they usually explain a bad figure.
                    figure.record_error(exc)
                    continue
                t1 = time.perf_counter()
                last_done = max(last_done, t1)
                if record:
                    figure.ok += 1
                    figure.latencies.append(t1 - t0)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return max(last_done, deadline) - start

    if warmup > 0:
        await run_phase(warmup, record=False)
    before = meter.snapshot() if meter is not None else None
    figure.elapsed = await run_phase(duration, record=True)
    if meter is not None and before is not None:
        figure.cpu = meter.cores(before, meter.snapshot())
    return figure
