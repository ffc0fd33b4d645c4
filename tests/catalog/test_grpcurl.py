"""The public API through the real grpcurl, with server reflection and no proto files."""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from pathlib import Path

from tests.conftest import Stack
from tests.helpers.scripts import SUCCEED, write_script

GRPCURL = shutil.which("grpcurl", path=str(Path(sys.executable).parent)) or "grpcurl"


async def grpcurl(address: str, *args: str) -> tuple[int, str, str]:
    """Run grpcurl in plaintext against ``address``; returns (exit code, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        GRPCURL,
        "-plaintext",
        *args[:-1],
        address,
        args[-1],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    return process.returncode or 0, out.decode(), err.decode()


async def test_grpcurl_creates_a_job_and_runs_it(stack: Stack, tmp_path: Path) -> None:
    assert stack.catalog is not None
    address = f"127.0.0.1:{stack.catalog.port}"
    code, out, _ = await grpcurl(address, "list")
    assert code == 0 and "glue.v1.Glue" in out and "grpc.health.v1.Health" in out
    script = write_script(tmp_path, "hello.py", SUCCEED)
    create = {
        "name": "curl-job",
        "role": "r",
        "command": {"name": "pythonshell", "script_location": str(script)},
    }
    code, out, err = await grpcurl(address, "-d", json.dumps(create), "glue.v1.Glue/CreateJob")
    assert code == 0, err
    assert json.loads(out) == {"name": "curl-job"}
    code, out, err = await grpcurl(
        address, "-d", '{"job_name": "curl-job"}', "glue.v1.Glue/StartJobRun"
    )
    assert code == 0, err
    # Reflection carries no json_name, so grpcurl prints the proto (snake_case) names.
    run_id = json.loads(out)["job_run_id"]
    run = await stack.wait_run("curl-job", run_id)
    assert run.job_run_state == "SUCCEEDED"
    code, out, err = await grpcurl(
        address,
        "-d",
        json.dumps({"job_name": "curl-job", "run_id": run_id}),
        "glue.v1.Glue/GetJobRun",
    )
    assert code == 0, err
    assert json.loads(out)["job_run"]["job_run_state"] == "SUCCEEDED"


async def test_grpcurl_shows_glue_error_details(stack: Stack) -> None:
    assert stack.catalog is not None
    address = f"127.0.0.1:{stack.catalog.port}"
    code, _out, err = await grpcurl(address, "-d", '{"job_name": "missing"}', "glue.v1.Glue/GetJob")
    assert code != 0
    assert "NotFound" in err and "Job missing not found." in err
    assert "EntityNotFoundException" in err  # the ErrorInfo reason, printed from the details


async def test_health_reports_serving(stack: Stack) -> None:
    assert stack.catalog is not None and stack.scheduler is not None
    for port in (stack.catalog.port, stack.scheduler.port):
        for _ in range(100):
            code, out, _ = await grpcurl(f"127.0.0.1:{port}", "grpc.health.v1.Health/Check")
            if '"SERVING"' in out:
                break
            await asyncio.sleep(0.05)
        assert code == 0 and '"SERVING"' in out
