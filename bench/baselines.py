"""The baselines the targets are stated against, measured on this machine in this run.

- bare grpc.aio unary echo (``bench.echo_server`` as a subprocess), N calls in flight;
- the same echo doing one SQLAlchemy ORM insert + commit per call on asyncpg;
- bare ``asyncio.create_subprocess_exec(sys.executable, "-c", "pass")``, P in parallel
  (the scheduler's process cap), and the latency of one such spawn on an otherwise idle loop.
"""

from __future__ import annotations

import asyncio
import sys
import time
from contextlib import AsyncExitStack
from pathlib import Path

import grpc

from bench.echo_server import METHOD
from bench.load import Figure, closed_loop
from bench.procs import (
    CpuMeter,
    Service,
    create_database,
    drop_database,
    free_port,
    sqlalchemy_url,
    wait_serving,
)

PAYLOAD = b"glue-bench-" + b"x" * 53  # 64 bytes


async def echo_figure(
    key: str,
    name: str,
    work_dir: Path,
    *,
    concurrency: int,
    channels: int,
    duration: float,
    warmup: float,
    insert: bool,
) -> Figure:
    """Echo (``insert=False``) or echo + ORM insert on a fresh PostgreSQL database."""
    figure = Figure("baseline", key, name, "calls")
    async with AsyncExitStack() as stack:
        database_url = None
        if insert:
            db_name = await create_database("glue_bench_echo")
            stack.push_async_callback(drop_database, db_name)
            database_url = sqlalchemy_url(db_name)
        address = f"127.0.0.1:{free_port()}"
        args = ["--listen", address]
        if database_url:
            args += ["--database-url", database_url]
        server = Service("echo-server", "bench.echo_server", args, work_dir / "echo-server.log")
        stack.push_async_callback(server.stop)
        await server.start()
        await wait_serving(address, server)

        chans = [grpc.aio.insecure_channel(address) for _ in range(channels)]
        for chan in chans:
            stack.push_async_callback(chan.close)
        calls: list[grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]] = [
            chan.unary_unary(METHOD) for chan in chans
        ]

        async def call(i: int) -> object:
            return await calls[i % len(calls)](PAYLOAD, timeout=30)

        meter = CpuMeter({"server": server.pid}, postgres=insert)
        await closed_loop(
            figure, call, concurrency=concurrency, duration=duration, warmup=warmup, meter=meter
        )
    figure.note = f"{concurrency} in flight over {channels} channel(s), 64-byte payload"
    if insert:
        figure.note += "; AsyncSession per call, pool 30 (no overflow) like the services"
    return figure


async def _spawn_once() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "pass",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    await process.wait()


async def spawn_throughput(*, parallel: int, duration: float, warmup: float) -> Figure:
    """Spawns of ``python -c pass`` per second with ``parallel`` in flight."""
    figure = Figure(
        "baseline", "spawn", f"bare spawn `python -c pass`, {parallel} parallel", "spawns"
    )

    async def call(_i: int) -> object:
        await _spawn_once()
        return None

    meter = CpuMeter({}, postgres=False)
    await closed_loop(
        figure, call, concurrency=parallel, duration=duration, warmup=warmup, meter=meter
    )
    figure.note = f"interpreter: {sys.executable}"
    return figure


async def spawn_latency(count: int) -> Figure:
    """The latency of one bare spawn (exec to exit reaped), ``count`` times one at a time."""
    figure = Figure(
        "baseline", "spawn_one", "one bare spawn `python -c pass` (sequential)", "spawns"
    )
    await _spawn_once()  # page cache, pyc
    start = time.perf_counter()
    for _ in range(count):
        t0 = time.perf_counter()
        try:
            await _spawn_once()
        except OSError as exc:
            figure.record_error(exc)
            continue
        figure.latencies.append(time.perf_counter() - t0)
        figure.ok += 1
    figure.elapsed = time.perf_counter() - start
    return figure
