"""``make run``: both services on one data directory, in the foreground, until Ctrl-C.

Starts the scheduler, then the catalog pointed at it, each as its own process with its usual
flags taken from the environment (CATALOG_*, SCHEDULER_*), prints where they listen, and stops
both on Ctrl-C or SIGTERM. Running jobs survive it: they are supervised independently and the
next start re-adopts them.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

SECRET_FILE = "internal-secret"


def internal_secret_file(data_dir: Path) -> Path:
    """The data directory's internal secret file, created once (mode 0600) and reused, so the
    two services share a secret without a setup step."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / SECRET_FILE
    try:
        # O_EXCL: two `make run` at once cannot each write a different secret.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_hex(32) + "\n")
    return path


def main() -> int:
    """Run both services until interrupted."""
    env = dict(os.environ)
    data_dir = env.get("DATA_DIR", "var")
    env.setdefault("SCHEDULER_DATA_DIR", data_dir)
    env.setdefault("CATALOG_DATA_DIR", data_dir)
    env.setdefault("SCHEDULER_LISTEN", "127.0.0.1:50052")
    env.setdefault("CATALOG_LISTEN", "127.0.0.1:50051")
    env.setdefault("CATALOG_SCHEDULER", env["SCHEDULER_LISTEN"])
    # Only the catalog may call the scheduler: both get the data directory's secret file.
    if not (env.get("SCHEDULER_INTERNAL_SECRET") or env.get("CATALOG_INTERNAL_SECRET")):
        secret = str(internal_secret_file(Path(data_dir)).resolve())
        env["SCHEDULER_INTERNAL_SECRET"] = env["CATALOG_INTERNAL_SECRET"] = secret
    # The AWS-compatible gateway (boto3, aws CLI) on loopback; CATALOG_HTTP_LISTEN= turns it off.
    env.setdefault("CATALOG_HTTP_LISTEN", "127.0.0.1:50080")
    python = sys.executable
    scheduler = subprocess.Popen([python, "-m", "scheduler_service"], env=env)
    catalog = subprocess.Popen([python, "-m", "catalog_service"], env=env)
    children = [catalog, scheduler]
    stopping = False

    def stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    print(  # noqa: T201
        f"\n  Glue API (catalog):  {env['CATALOG_LISTEN']}\n"
        f"  scheduler (internal): {env['SCHEDULER_LISTEN']}\n"
        f"  data directory:       {os.path.abspath(env['CATALOG_DATA_DIR'])}\n"
        + (
            f"  AWS gateway (boto3):  http://{env['CATALOG_HTTP_LISTEN']}\n"
            if env["CATALOG_HTTP_LISTEN"]
            else ""
        )
        + f"  try: .venv/bin/gluectl --endpoint {env['CATALOG_LISTEN']} jobs list\n"
        + "  Ctrl-C stops both services (running jobs keep running and are re-adopted).\n",
        flush=True,
    )
    status = 0
    while not stopping:
        for child in children:
            code = child.poll()
            if code is not None:
                name = "catalog" if child is catalog else "scheduler"
                print(f"{name} service exited with status {code}; stopping", file=sys.stderr)  # noqa: T201
                status = code or 1
                stopping = True
        time.sleep(0.2)
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    for child in children:
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()
    return status


if __name__ == "__main__":
    sys.exit(main())
