"""The services as real subprocesses, for restart and kill -9 tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from scheduler_service.site import SiteProcesses

_HANDED_OUT: set[int] = set()


def service_environment() -> dict[str, str]:
    """The environment a service subprocess starts with: this process's, and as root (CI)
    the explicit choice to run jobs as root, which a root scheduler otherwise refuses
    (scheduler_service.run_access). Test scripts live in pytest's 0700 temporary directories,
    which no other user can enter."""
    env = dict(os.environ)
    if os.geteuid() == 0:
        env.setdefault("SCHEDULER_RUN_AS", "root")
        env.setdefault("SCHEDULER_SCRIPT_ROOTS", "/")
    return env


def _port_block() -> range | None:
    """The ports this test process hands out: below the kernel's ephemeral range, which every
    ``bind(0)`` and outgoing connection on the machine draws from (one of those could take a
    port between the hand-out and the service's bind), split into one block per pytest-xdist
    worker, so that two workers never hand out the same port. None where the ephemeral range
    leaves too little room below it."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    first = 15000
    size = (low - first) // workers
    if size < 500:
        return None
    return range(first + worker * size, first + (worker + 1) * size)


def free_port() -> int:
    """A port nothing listens on right now, and not handed out before by this process (the
    kernel may offer a just-closed port again at once: two services got the same one), from
    this process's block (``_port_block``); random within it, so that another checkout's
    suite on the same machine is unlikely to want the same one."""
    block = _port_block()
    for _ in range(1000):
        if block is None:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = int(sock.getsockname()[1])
        else:
            port = random.choice(block)
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port
    raise RuntimeError(f"no free port in {block}")


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
                env=service_environment(),
                # Its own process group, as a service under a supervisor has: killing the
                # group (kill9_group) must not reach the tests.
                start_new_session=True,
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

    async def kill9_group(self) -> None:
        """SIGKILL to the service's whole process group (what a container runtime or a shell's
        job control does), then reap it."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        await self.stop(signal.SIGKILL)


def site_processes(runs_dir: Path) -> set[int]:
    """The pids of every process of one data directory's "machine": its watchers (their command
    line names the runs directory), its replicas and caretakers (registered under it), its
    supervisors (their command line names a run directory) and their jobs (working directory
    inside it)."""
    root = str(runs_dir)
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if cwd.startswith(root + "/") or any(
            a.decode(errors="replace").startswith(root) for a in argv
        ):
            found.add(int(entry.name))
    registry = SiteProcesses(runs_dir)
    for path in (runs_dir / ".processes").glob("*.json"):
        registered = registry.get(json.loads(path.read_text())["replica_id"])
        if registered is not None and registered.is_alive():
            found.add(registered.pid)
    return found


async def kill_machine(runs_dir: Path, *replicas: ServiceProcess) -> None:
    """Kill -9 everything of one data directory at once, as a machine's death would: its
    replicas, watchers, caretakers, supervisors and jobs. Everything is frozen first, so that
    nothing reacts to another's death (a watcher would start a caretaker)."""
    for replica in replicas:
        if replica.process is not None and replica.process.returncode is None:
            replica.process.send_signal(signal.SIGSTOP)
    frozen: set[int] = set()
    while new := site_processes(runs_dir) - frozen:
        for pid in new:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
        frozen |= new
    for pid in frozen:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for replica in replicas:
        if replica.process is not None and replica.process.returncode is None:
            await replica.kill9()


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
        """Stop whatever still runs, the scheduler's watcher, caretaker and jobs included."""
        await kill_machine(self.data_dir / "runs", self.scheduler)
        if self.catalog.process is not None and self.catalog.process.returncode is None:
            await self.catalog.stop(signal.SIGKILL)

    def logs(self) -> str:
        """Both services' output, for failure messages."""
        return "\n".join(
            p.read_text(errors="replace")[-4000:]
            for p in (self.scheduler.log_path, self.catalog.log_path)
            if p.exists()
        )
