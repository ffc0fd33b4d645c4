"""``make run``: both services on one data directory, in the foreground, until Ctrl-C.

Refuses at once, naming the setting to change, if one of its addresses is taken. Starts the
scheduler, then the catalog pointed at it, each as its own process with its usual flags taken
from the environment (CATALOG_*, SCHEDULER_*), waits until the catalog answers its health check
SERVING (so both listen and reach each other), then prints where they listen; stops both on
Ctrl-C or SIGTERM. Running jobs survive it: they are supervised independently and the
next start re-adopts them.
"""

from __future__ import annotations

import errno
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Final

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from scheduler_service.commands import CommandSettings, run_needs
from scheduler_service.job_env import PASSED_THROUGH
from scheduler_service.run_access import Identity, X, unreachable
from servicekit.server import split_address

SECRET_FILE = "internal-secret"
# Who jobs run as when `make run` runs as root and the user named nobody: the scheduler
# refuses to run jobs as root unless told to (scheduler_service.run_access).
DEFAULT_RUN_AS = "nobody"


def internal_secret_file(data_dir: Path) -> Path:
    """The data directory's internal secret file, created once (mode 0600) and reused, so the
    two services share a secret without a setup step."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = data_dir / SECRET_FILE
    try:
        # O_EXCL: two `make run` at once cannot each write a different secret.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_hex(32) + "\n")
    return path


def default_run_identity(env: dict[str, str], data_dir: Path) -> str | None:
    """As root with no run identity set, choose one for jobs (SCHEDULER_RUN_AS): ``nobody`` if
    it can reach the interpreter, the runtime and the data directory; otherwise root, said out
    loud - `make run` is a development command on the user's own machine, and a first job
    must run there (the scheduler itself never picks root on its own).

    Returns:
        None, or a notice to print: jobs run as root, why, and how to change it.
    """
    if os.geteuid() != 0 or env.get("SCHEDULER_RUN_AS") or env.get("SCHEDULER_RUN_UIDS"):
        return None
    try:
        identity = Identity.of_user(DEFAULT_RUN_AS)
    except ValueError:
        problems = [f"this machine has no user {DEFAULT_RUN_AS!r}"]
    else:
        passed = {name: env[name] for name in PASSED_THROUGH if name in env}
        needed = run_needs(CommandSettings(python=sys.executable, passed_env=passed))
        # Its run directory lies under the data directory, which the scheduler opens to it.
        parent = data_dir.resolve().parent
        while not parent.exists():
            parent = parent.parent
        needed.append((parent, X))
        problems = unreachable(needed, identity)
    if not problems:
        env["SCHEDULER_RUN_AS"] = DEFAULT_RUN_AS
        return None
    env["SCHEDULER_RUN_AS"] = "root"
    env.setdefault("SCHEDULER_SCRIPT_ROOTS", "/")
    return (
        f"NOTE: make run is running as root and jobs will run as ROOT, with any ScriptLocation: "
        f"they would run as {DEFAULT_RUN_AS!r}, but\n  "
        + "\n  ".join(problems)
        + "\nTo run jobs unprivileged:\n"
        "  - run `make run` as a normal user; or\n"
        "  - put the checkout and its Python where other users can read them (e.g. under "
        "/opt, not a 0700 home directory such as /root); or\n"
        "  - choose the jobs' user: SCHEDULER_RUN_AS=USER[:GROUP] make run "
        "(or SCHEDULER_RUN_UIDS=LOW-HIGH).\n"
        "To keep root but limit scripts: SCHEDULER_SCRIPT_ROOTS=/dir/of/your/scripts make run"
    )


# (setting, what listens there) for each address `make run` serves.
LISTEN_SETTINGS: Final = (
    ("SCHEDULER_LISTEN", "scheduler"),
    ("CATALOG_LISTEN", "Glue API"),
    ("CATALOG_HTTP_LISTEN", "AWS gateway"),
    ("SCHEDULER_HTTP_LISTEN", "scheduler metrics"),
)
# How long to wait for the services to serve before saying that they are still starting.
_SLOW_START_SECONDS: Final = 20.0
_POLL_SECONDS: Final = 0.2


def unusable_addresses(env: Mapping[str, str]) -> list[str]:
    """One line for each address in ``env`` that something else already listens on, or that
    asks for any free port (the banner and the catalog's scheduler address need the real one),
    naming the setting to change; unset addresses are skipped."""
    problems = []
    for setting, what in LISTEN_SETTINGS:
        address = env.get(setting)
        if not address:
            continue
        try:
            host, port = split_address(address)
        except ValueError:
            continue  # the service itself says what is wrong with it
        if port == 0:
            problems.append(f"{address} ({what}): make run needs a fixed port; set {setting}")
            continue
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError:
            continue
        family, _, _, _, sockaddr = infos[0]
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            # As the servers bind: SO_REUSEADDR, so a port in TIME_WAIT is not "taken".
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(sockaddr)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    problems.append(
                        f"{address} ({what}) is in use; set {setting}, e.g. "
                        f"{setting}={host}:{port + 10} make run"
                    )
    return problems


def catalog_serving(env: Mapping[str, str]) -> bool:
    """Whether the catalog answers its health check SERVING: it does so once its database
    is migrated, its gateway listens and it has reached the scheduler, so both are up."""
    address = env["CATALOG_LISTEN"]
    if env.get("CATALOG_TLS_CERT"):
        # Checking its certificate needs the CA, which make run does not know: that the port
        # accepts connections has to do.
        host, port = split_address(address)
        try:
            socket.create_connection((host, port), timeout=1).close()
        except OSError:
            return False
        return True
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            answer = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
        except grpc.RpcError:
            return False
    return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)


def banner(env: Mapping[str, str], grpcurl: Path) -> str:
    """Where the services listen and what to try first."""
    jobs_as = env.get("SCHEDULER_RUN_AS") or env.get("SCHEDULER_RUN_UIDS")
    gateway = env.get("CATALOG_HTTP_LISTEN")
    endpoint = env["CATALOG_LISTEN"]
    lines = [
        "",
        "  ready:",
        f"  Glue API (catalog):   {endpoint}",
        f"  scheduler (internal): {env['SCHEDULER_LISTEN']}",
    ]
    if gateway:
        lines.append(f"  AWS gateway (boto3):  http://{gateway}")
        lines.append(f"  web console:          http://{gateway}/console/")
    metrics = [
        f"http://{where}/metrics" for where in (gateway, env.get("SCHEDULER_HTTP_LISTEN")) if where
    ]
    if metrics:
        lines.append(f"  metrics:              {'  '.join(metrics)}")
    if jobs_as:
        lines.append(f"  jobs run as:          {jobs_as}")
    lines += [
        f"  data directory:       {os.path.abspath(env['CATALOG_DATA_DIR'])}",
        "",
        f"  try: .venv/bin/gluectl --endpoint {endpoint} jobs list",
    ]
    if grpcurl.exists():
        shown = os.path.relpath(grpcurl) if grpcurl.is_relative_to(Path.cwd()) else grpcurl
        lines.append(f"       {shown} -plaintext {endpoint} list glue.v1.Glue")
    else:
        lines.append("       make tools   # grpcurl, boto3 and the aws CLI into .venv/bin")
    lines += [
        "  then the README's quickstart (## Using it), in another terminal.",
        "  Ctrl-C stops both services (running jobs keep running and are re-adopted).",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    """Run both services until interrupted; the addresses are printed once both serve."""
    env = dict(os.environ)
    data_dir = env.get("DATA_DIR", "var")
    notice = default_run_identity(env, Path(env.get("SCHEDULER_DATA_DIR", data_dir)))
    if notice is not None:
        print(notice, file=sys.stderr)  # noqa: T201
    env.setdefault("SCHEDULER_DATA_DIR", data_dir)
    env.setdefault("CATALOG_DATA_DIR", data_dir)
    env.setdefault("SCHEDULER_LISTEN", "127.0.0.1:50052")
    env.setdefault("CATALOG_LISTEN", "127.0.0.1:50051")
    env.setdefault("CATALOG_SCHEDULER", env["SCHEDULER_LISTEN"])
    # The AWS-compatible gateway (boto3, aws CLI) on loopback; CATALOG_HTTP_LISTEN= turns it off.
    env.setdefault("CATALOG_HTTP_LISTEN", "127.0.0.1:50080")
    # The scheduler's /metrics, /healthz and /readyz; SCHEDULER_HTTP_LISTEN= turns it off.
    env.setdefault("SCHEDULER_HTTP_LISTEN", "127.0.0.1:50081")
    taken = unusable_addresses(env)
    if taken:
        # Said before anything starts: the services would each fail with less context.
        for line in taken:
            print(f"make run: {line}", file=sys.stderr)  # noqa: T201
        return 1
    # Only the catalog may call the scheduler: both get the data directory's secret file.
    if not (env.get("SCHEDULER_INTERNAL_SECRET") or env.get("CATALOG_INTERNAL_SECRET")):
        secret = str(internal_secret_file(Path(data_dir)).resolve())
        env["SCHEDULER_INTERNAL_SECRET"] = env["CATALOG_INTERNAL_SECRET"] = secret
    python = sys.executable
    print("make run: starting the scheduler and the catalog ...", flush=True)  # noqa: T201
    scheduler = subprocess.Popen([python, "-m", "scheduler_service"], env=env)
    catalog = subprocess.Popen([python, "-m", "catalog_service"], env=env)
    children = {"catalog": catalog, "scheduler": scheduler}
    stopping = False

    def stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    grpcurl = Path(python).parent / "grpcurl"
    ready = False
    started = time.monotonic()
    slow_said = False
    status = 0
    while not stopping:
        for name, child in children.items():
            code = child.poll()
            if code is not None:
                when = "" if ready else " before it was ready (its error is above)"
                print(  # noqa: T201
                    f"make run: the {name} service exited with status {code}{when}; stopping",
                    file=sys.stderr,
                )
                status = code or 1
                stopping = True
        if stopping:
            break
        if not ready:
            ready = catalog_serving(env)
            if ready:
                print(banner(env, grpcurl), flush=True)  # noqa: T201
            elif not slow_said and time.monotonic() - started > _SLOW_START_SECONDS:
                slow_said = True
                print(  # noqa: T201
                    f"make run: still waiting for the catalog at {env['CATALOG_LISTEN']} to "
                    f"reach the scheduler at {env['CATALOG_SCHEDULER']} ...",
                    file=sys.stderr,
                )
        time.sleep(_POLL_SECONDS)
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children.values():
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()
    return status


if __name__ == "__main__":
    sys.exit(main())
