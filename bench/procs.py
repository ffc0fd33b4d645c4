"""Subprocesses, their readiness, CPU accounting, and throwaway PostgreSQL databases.

Every process the benchmark starts goes through ``Service`` and is remembered in ``_LIVE`` so
that an ``atexit`` safety net can SIGKILL whatever a failed clean-up left behind. Only processes
started here are ever signalled, by their own pid.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import secrets
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parent.parent
"""The checkout: the working directory of every subprocess (so ``-m bench...`` imports)."""

ADMIN_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
"""The PostgreSQL server (and a database to connect to) where throwaway databases are made."""

_CLK_TCK = os.sysconf("SC_CLK_TCK")
_LIVE: dict[int, asyncio.subprocess.Process] = {}


def kill_leftovers() -> None:
    """SIGKILL every process started here that still runs (the last-resort clean-up)."""
    for pid, process in list(_LIVE.items()):
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


atexit.register(kill_leftovers)


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Service:
    """One ``python -m MODULE ARGS`` subprocess, its output appended to ``log_path``."""

    name: str
    module: str
    args: list[str]
    log_path: Path
    process: asyncio.subprocess.Process | None = None
    env: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int | None:
        """The process id while it runs."""
        return self.process.pid if self.process is not None else None

    async def start(self) -> None:
        """Spawn it."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                self.module,
                *self.args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=REPO,
                # As root, jobs run as root on purpose (the scheduler refuses otherwise).
                env={
                    **os.environ,
                    **(
                        {"SCHEDULER_RUN_AS": "root", "SCHEDULER_SCRIPT_ROOTS": "/"}
                        if os.geteuid() == 0
                        else {}
                    ),
                    **self.env,
                },
            )
        _LIVE[self.process.pid] = self.process

    async def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM, then SIGKILL if it has not exited within ``timeout`` seconds."""
        process = self.process
        if process is None:
            return
        try:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(process.wait(), timeout)
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
                    await process.wait()
        finally:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
            _LIVE.pop(process.pid, None)
            self.process = None

    def log_tail(self, chars: int = 3000) -> str:
        """The end of its output, for error messages."""
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


async def wait_serving(address: str, service: Service, timeout: float = 60.0) -> None:
    """Wait until the grpc health service at ``address`` answers SERVING.

    Raises:
        RuntimeError: the process exited, or it did not serve within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            if service.process is None or service.process.returncode is not None:
                raise RuntimeError(
                    f"{service.name} exited before serving; its output:\n{service.log_tail()}"
                )
            try:
                response = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if response.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{service.name} did not serve within {timeout:.0f}s; its output:\n"
                    + service.log_tail()
                )
            await asyncio.sleep(0.05)


# -- CPU accounting ----------------------------------------------------------------------------


def process_cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of one process (0 if it is gone)."""
    if pid is None:
        return 0.0
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def postgres_cpu_by_pid() -> dict[int, float]:
    """User + system CPU seconds of each live process named ``postgres`` (all backends)."""
    found: dict[int, float] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if Path(entry.path, "comm").read_text().strip() != "postgres":
                continue
        except OSError:
            continue
        found[int(entry.name)] = process_cpu_seconds(int(entry.name))
    return found


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy (all cores), from /proc/stat."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    # guest time is already counted in user/nice
    return (sum(values[:8]) - idle) / _CLK_TCK


@dataclass(frozen=True, slots=True)
class CpuSnapshot:
    """CPU seconds consumed so far by each party, at one instant."""

    at: float
    parts: dict[str, float]
    postgres: dict[int, float] = field(default_factory=dict)


class CpuMeter:
    """Attributes CPU time to the load generator, the servers, PostgreSQL and everything else."""

    def __init__(self, pids: dict[str, int | None], *, postgres: bool) -> None:
        self._pids = pids
        self._postgres = postgres

    def snapshot(self) -> CpuSnapshot:
        """Now."""
        parts = {"loadgen": time.process_time(), "machine": machine_busy_seconds()}
        for name, pid in self._pids.items():
            parts[name] = process_cpu_seconds(pid)
        postgres = postgres_cpu_by_pid() if self._postgres else {}
        return CpuSnapshot(time.monotonic(), parts, postgres)

    @staticmethod
    def cores(before: CpuSnapshot, after: CpuSnapshot) -> dict[str, float]:
        """Cores used by each party between two snapshots; ``other`` is the unattributed rest."""
        elapsed = max(after.at - before.at, 1e-9)
        used = {
            k: max(after.parts[k] - before.parts.get(k, 0.0), 0.0) / elapsed for k in after.parts
        }
        if after.postgres:
            # Per process: backends of other clients come and go; one that started meanwhile
            # counts whole, one that exited meanwhile is lost (its CPU cannot be read any more).
            spent = sum(t - before.postgres.get(pid, 0.0) for pid, t in after.postgres.items())
            used["postgres"] = max(spent, 0.0) / elapsed
        known = sum(v for k, v in used.items() if k != "machine")
        used["other"] = max(used["machine"] - known, 0.0)
        return used


async def background_load(seconds: float = 1.0) -> float:
    """Cores the machine spends busy while this process sleeps (other users, leftovers)."""
    before = machine_busy_seconds()
    await asyncio.sleep(seconds)
    return (machine_busy_seconds() - before) / seconds


# -- PostgreSQL --------------------------------------------------------------------------------


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def sqlalchemy_url(database: str) -> str:
    """The ``postgresql+asyncpg`` URL of ``database`` on the admin server."""
    return (
        make_url(ADMIN_URL)
        .set(drivername="postgresql+asyncpg", database=database)
        .render_as_string(hide_password=False)
    )


async def postgres_available() -> str | None:
    """None if the admin server answers, else why not."""
    try:
        conn = await asyncio.wait_for(asyncpg.connect(_asyncpg_dsn(ADMIN_URL)), 5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"
    await conn.close()
    return None


async def create_database(prefix: str) -> str:
    """Create an empty database; returns its name."""
    name = f"{prefix}_{secrets.token_hex(5)}"
    conn = await asyncpg.connect(_asyncpg_dsn(ADMIN_URL))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name


async def drop_database(name: str) -> None:
    """Drop a database made by ``create_database``, disconnecting whoever still uses it."""
    conn = await asyncpg.connect(_asyncpg_dsn(ADMIN_URL))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
