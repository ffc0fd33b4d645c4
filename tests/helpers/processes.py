"""The services as real subprocesses, for restart and kill -9 tests."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_healthy(address: str, timeout: float = 30.0) -> None:
    """Wait until the server at ``address`` reports SERVING on the health service."""
    deadline = time.monotonic() + timeout
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            try:
                response = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if response.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{address} did not become healthy")
            await asyncio.sleep(0.05)


@dataclass
class ServiceProcess:
    """One service running as ``python -m <module>``."""

    module: str
    args: list[str]
    log_path: Path
    process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        """Spawn it (its output goes to ``log_path``)."""
        with self.log_path.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                self.module,
                *self.args,
                stdout=log,
                stderr=log,
                env=dict(os.environ),
            )

    async def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Send ``sig`` and wait for the exit status."""
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(sig)
        code = await asyncio.wait_for(self.process.wait(), timeout)
        self.process = None
        return code

    async def kill9(self) -> None:
        """SIGKILL: no cleanup of any kind."""
        await self.stop(signal.SIGKILL)


@dataclass
class ServicePair:
    """Scheduler and catalog subprocesses sharing a data directory."""

    data_dir: Path
    catalog_url: str
    scheduler_url: str
    scheduler_port: int = field(default_factory=free_port)
    catalog_port: int = field(default_factory=free_port)

    def __post_init__(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.scheduler = ServiceProcess(
            "scheduler_service",
            [
                "--listen",
                self.scheduler_address,
                "--data-dir",
                str(self.data_dir),
                "--database-url",
                self.scheduler_url,
                "--stop-grace",
                "1",
            ],
            self.data_dir / "scheduler.log",
        )
        self.catalog = ServiceProcess(
            "catalog_service",
            [
                "--listen",
                self.catalog_address,
                "--data-dir",
                str(self.data_dir),
                "--database-url",
                self.catalog_url,
                "--scheduler",
                self.scheduler_address,
                "--reconcile-interval",
                "1",
            ],
            self.data_dir / "catalog.log",
        )

    @property
    def scheduler_address(self) -> str:
        """HOST:PORT of the scheduler."""
        return f"127.0.0.1:{self.scheduler_port}"

    @property
    def catalog_address(self) -> str:
        """HOST:PORT of the catalog."""
        return f"127.0.0.1:{self.catalog_port}"

    async def start_scheduler(self) -> None:
        """Start the scheduler and wait until it serves."""
        await self.scheduler.start()
        await wait_healthy(self.scheduler_address)

    async def start_catalog(self, *, wait_serving: bool = True) -> None:
        """Start the catalog; by default wait until it serves (scheduler stream connected)."""
        await self.catalog.start()
        if wait_serving:
            await wait_healthy(self.catalog_address)

    async def close(self) -> None:
        """Stop whatever still runs."""
        for service in (self.catalog, self.scheduler):
            if service.process is not None and service.process.returncode is None:
                await service.stop(signal.SIGKILL)

    def logs(self) -> str:
        """Both services' output, for failure messages."""
        return "\n".join(
            p.read_text(errors="replace")[-4000:]
            for p in (self.scheduler.log_path, self.catalog.log_path)
            if p.exists()
        )
