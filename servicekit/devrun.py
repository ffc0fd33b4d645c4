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

from scheduler_service.commands import CommandSettings, run_needs
from scheduler_service.job_env import PASSED_THROUGH
from scheduler_service.run_access import Identity, X, unreachable

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


def main() -> int:
    """Run both services until interrupted."""
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
    jobs_as = env.get("SCHEDULER_RUN_AS") or env.get("SCHEDULER_RUN_UIDS")
    print(  # noqa: T201
        f"\n  Glue API (catalog):  {env['CATALOG_LISTEN']}\n"
        + (f"  jobs run as:          {jobs_as}\n" if jobs_as else "")
        + f"  scheduler (internal): {env['SCHEDULER_LISTEN']}\n"
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
