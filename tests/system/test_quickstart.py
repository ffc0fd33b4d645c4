"""The README's quickstart, pasted as a new user would: every ```sh block marked
``<!-- quickstart -->``, in order, against services started as ``make run`` starts them.

``servicekit.devrun`` (what ``make run`` runs) serves on free ports and a temporary data
directory; the blocks reach it through the variables they document (GLUECTL_ENDPOINT,
AWS_ENDPOINT_URL_GLUE), set here as a user of another address would set them. Each block runs
in ``bash -euo pipefail`` from the checkout, as pasted into one shell: what a block exports is
there for the next. A README change that breaks a block fails here with the block and its
output.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.processes import free_port, service_environment, site_processes

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
# The marker line, then a sh block: what the README promises runs as pasted.
BLOCK = re.compile(r"^<!-- quickstart -->\n```sh\n(.*?)^```$", re.MULTILINE | re.DOTALL)
READY_SECONDS = 60.0
BLOCK_SECONDS = 120.0


def quickstart_blocks(text: str) -> list[str]:
    """The marked shell blocks of a README, in order."""
    return [match.group(1) for match in BLOCK.finditer(text)]


@dataclass
class DevRun:
    """A running ``python -m servicekit.devrun``: its banner and the blocks' environment."""

    process: subprocess.Popen[bytes]
    banner: str
    env: dict[str, str]


def _wait_for_banner(process: subprocess.Popen[bytes], output: Path) -> str:
    """devrun's output once it holds the banner's last line; fails with what it printed if
    devrun exits or takes too long. (Its output goes to a file, not a pipe: the services
    keep logging there, and a pipe nobody drains would stop them.)"""
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        text = output.read_text(errors="replace")
        if "Ctrl-C stops both" in text:
            return text
        time.sleep(0.2)
    text = output.read_text(errors="replace")
    pytest.fail(f"make run's services did not report ready; its output:\n{text}")


@pytest.fixture
def devrun(tmp_path: Path) -> Iterator[DevRun]:
    data_dir = tmp_path / "var"
    catalog, scheduler, gateway, metrics = (f"127.0.0.1:{free_port()}" for _ in range(4))
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("CATALOG_", "SCHEDULER_", "GLUECTL_", "AWS_"))
    }
    env.update(
        DATA_DIR=str(data_dir),
        CATALOG_LISTEN=catalog,
        SCHEDULER_LISTEN=scheduler,
        CATALOG_HTTP_LISTEN=gateway,
        SCHEDULER_HTTP_LISTEN=metrics,
        PYTHONUNBUFFERED="1",
    )
    output = tmp_path / "make-run.out"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "servicekit.devrun"],
            cwd=ROOT,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        banner = _wait_for_banner(process, output)
        blocks_env = {k: v for k, v in os.environ.items() if not k.startswith(("GLUECTL_", "AWS_"))}
        blocks_env.update(
            GLUECTL_ENDPOINT=catalog,
            AWS_ENDPOINT_URL_GLUE=f"http://{gateway}",
            # The machine's own AWS set-up plays no part in a new user's first steps.
            AWS_CONFIG_FILE=str(tmp_path / "no-aws-config"),
            AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-aws-credentials"),
        )
        yield DevRun(process, banner, blocks_env)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        # Jobs outlive the services by design (they are re-adopted on the next start); a
        # failed block may have left one running.
        for pid in site_processes(data_dir / "runs"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_readme_marks_a_quickstart() -> None:
    blocks = quickstart_blocks(README.read_text(encoding="utf-8"))
    # The set-up, gluectl, a stopped run, a trigger chain, grpcurl, boto3/aws, the clean-up.
    assert len(blocks) >= 7, blocks
    together = "\n".join(blocks)
    for needed in ("runs stop", "triggers create", "grpcurl", "boto3", "aws glue"):
        assert needed in together, needed


def test_quickstart_runs_top_to_bottom(devrun: DevRun, tmp_path: Path) -> None:
    # The banner printed once both serve, with the addresses the blocks were given.
    assert f"Glue API (catalog):   {devrun.env['GLUECTL_ENDPOINT']}" in devrun.banner
    assert f"AWS gateway (boto3):  {devrun.env['AWS_ENDPOINT_URL_GLUE']}" in devrun.banner
    assert f"web console:          {devrun.env['AWS_ENDPOINT_URL_GLUE']}/console/" in devrun.banner
    # Both services' metrics, each listed address answering.
    (listed,) = [line for line in devrun.banner.splitlines() if "metrics:" in line]
    addresses = listed.split()[1:]
    assert len(addresses) == 2
    for address in addresses:
        with urllib.request.urlopen(address, timeout=10) as answer:
            assert b"glue_rpc_server_handling_seconds" in answer.read()
    state = tmp_path / "shell-state"
    state.write_text("")
    jobs_dir: str | None = None
    printed: list[str] = []
    try:
        for number, block in enumerate(quickstart_blocks(README.read_text("utf-8")), 1):
            script = f"source {state}\n{block}\nexport -p > {state}\n"
            try:
                done = subprocess.run(
                    ["bash", "-euo", "pipefail", "-c", script],
                    check=False,
                    cwd=ROOT,
                    env=devrun.env,
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    text=True,
                    timeout=BLOCK_SECONDS,
                )
            except subprocess.TimeoutExpired as exc:
                pytest.fail(f"quickstart block {number} ran over {BLOCK_SECONDS}s:\n{block}\n{exc}")
            exported = re.search(r'^declare -x JOBS="([^"]*)"$', state.read_text(), re.MULTILINE)
            jobs_dir = exported.group(1) if exported else jobs_dir
            assert done.returncode == 0, (
                f"quickstart block {number} exited {done.returncode}:\n{block}\n"
                f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
            )
            printed.append(done.stdout)
        # What the README says the blocks show: a run's log, a stop that took.
        output = "".join(printed)
        assert "hello from hello (jr_" in output
        assert "exit 4: it ended STOPPED" in output
    finally:
        if jobs_dir and Path(jobs_dir).is_dir():
            shutil.rmtree(jobs_dir)  # the clean-up block removes it, unless a block failed


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port something else listens on (without SO_REUSEPORT, as any other program would)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def _python_module(
    module: str, argv: list[str], env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", module, *argv],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_make_run_names_the_setting_of_a_taken_port(taken_port: int, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CATALOG_", "SCHEDULER_"))}
    env.update(
        DATA_DIR=str(tmp_path / "var"),
        SCHEDULER_LISTEN=f"127.0.0.1:{taken_port}",
        CATALOG_LISTEN=f"127.0.0.1:{free_port()}",
        CATALOG_HTTP_LISTEN=f"127.0.0.1:{free_port()}",
        SCHEDULER_HTTP_LISTEN=f"127.0.0.1:{free_port()}",
    )
    done = _python_module("servicekit.devrun", [], env)
    assert done.returncode == 1
    assert done.stdout == ""  # no banner, nothing started
    assert f"make run: 127.0.0.1:{taken_port} (scheduler) is in use; set SCHEDULER_LISTEN" in (
        done.stderr
    )
    # Any free port (0) would leave the banner and the catalog without the real address.
    env["SCHEDULER_LISTEN"] = "127.0.0.1:0"
    done = _python_module("servicekit.devrun", [], env)
    assert done.returncode == 1
    assert "127.0.0.1:0 (scheduler): make run needs a fixed port; set SCHEDULER_LISTEN" in (
        done.stderr
    )


@pytest.mark.parametrize(
    ("service", "flag", "named"),
    [
        ("catalog", "--listen", "set --listen / CATALOG_LISTEN"),
        ("catalog", "--http-listen", "set --http-listen / CATALOG_HTTP_LISTEN"),
        ("scheduler", "--http-listen", "set --http-listen / SCHEDULER_HTTP_LISTEN"),
    ],
)
def test_a_service_names_the_setting_of_a_taken_port(
    service: str, flag: str, named: str, taken_port: int, tmp_path: Path
) -> None:
    argv = ["--data-dir", str(tmp_path)]
    if service == "catalog":
        argv += ["--scheduler", f"127.0.0.1:{free_port()}"]
    if flag == "--listen":
        argv += ["--listen", f"127.0.0.1:{taken_port}"]
    else:
        argv += ["--listen", f"127.0.0.1:{free_port()}", "--http-listen", f"127.0.0.1:{taken_port}"]
    prefix = f"{service.upper()}_"
    env = {k: v for k, v in service_environment().items() if not k.startswith(prefix)}
    if service == "scheduler" and os.geteuid() == 0:
        env |= {"SCHEDULER_RUN_AS": "root", "SCHEDULER_SCRIPT_ROOTS": "/"}
    done = _python_module(f"{service}_service", argv, env)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"{service}-service: cannot listen on 127.0.0.1:{taken_port}"), last
    assert named in last and "Traceback" not in done.stderr
