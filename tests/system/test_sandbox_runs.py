"""The job sandbox through both services: a limit's ErrorMessage, the capped log clients read."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from clients.glue_client import GlueClient
from scheduler_service.cgroups import detect_cgroups
from tests.conftest import Stack

SYSTEM_PYTHON = "/usr/bin/python3"
IS_ROOT = os.geteuid() == 0
HAS_MEMORY_CGROUP = IS_ROOT and "memory" in detect_cgroups().controllers

pytestmark = [
    pytest.mark.skipif(not IS_ROOT, reason="needs root: runs jobs as uids of their own"),
    pytest.mark.skipif(
        not os.access(SYSTEM_PYTHON, os.X_OK), reason=f"needs {SYSTEM_PYTHON} for the run uids"
    ),
    pytest.mark.scheduler_settings(
        python=SYSTEM_PYTHON, run_uids=(61100, 61199), max_log_bytes=100_000
    ),
]


@pytest.fixture
def scripts() -> Iterator[Path]:
    """Job scripts where every uid can read them (pytest's tmp_path is root's only)."""
    path = Path(tempfile.mkdtemp(prefix="sandbox-scripts-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def script(directory: Path, name: str, body: str) -> Path:
    path = directory / name
    path.write_text(body)
    path.chmod(0o644)
    return path


@pytest.mark.skipif(not HAS_MEMORY_CGROUP, reason="needs a memory cgroup")
async def test_memory_hog_run_fails_with_its_limit_in_the_error_message(
    stack: Stack, scripts: Path
) -> None:
    hog = script(scripts, "hog.py", 'data = b"x" * (2 * 2**30)\n')
    await stack.create_job("hog", hog, max_capacity=0.0625)
    run_id = await stack.start_run("hog")

    run = await stack.wait_run("hog", run_id, timeout=30)

    assert run.job_run_state == "FAILED"
    assert "exceeded its 1 GB memory limit (MaxCapacity 0.0625)" in run.error_message


async def test_flooded_log_reads_as_head_cut_line_and_tail(stack: Stack, scripts: Path) -> None:
    flood = script(
        scripts,
        "flood.py",
        "import os\nfor i in range(20000):\n    print(f'line {i:05d}', os.getuid())\n",
    )
    await stack.create_job("flood", flood)
    run_id = await stack.start_run("flood")
    run = await stack.wait_run("flood", run_id, timeout=30)
    assert run.job_run_state == "SUCCEEDED", run.error_message

    assert stack.catalog is not None
    async with GlueClient(f"127.0.0.1:{stack.catalog.port}") as client:
        log = b"".join([chunk async for chunk in client.get_job_run_log("flood", run_id)])

    text = log.decode()
    assert len(log) < 100_000 + 300
    assert text.startswith("line 00000 611")
    assert "bytes of output cut here" in text
    assert text.rstrip().splitlines()[-1].startswith("line 19999 611")
