"""glueetl runs through the services: unchanged Glue scripts on Spark, stop, timeout, errors."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Stack
from tests.gateway.conftest import Aws
from tests.helpers.glueetl import GENERATED_SCRIPT, glueetl_job, put, s3_root, wait_state

pytestmark = [
    pytest.mark.slow,
    pytest.mark.catalog_settings(http_listen="127.0.0.1:0"),
]

FAILING_SCRIPT = """from pyspark.context import SparkContext
from awsglue.context import GlueContext

glueContext = GlueContext(SparkContext())
raise ValueError("no orders in the landing bucket")
"""

SPINNING_SCRIPT = """import time
from pyspark.context import SparkContext
from awsglue.context import GlueContext

glueContext = GlueContext(SparkContext())
print("spark is up", flush=True)
while True:
    time.sleep(0.5)
"""

PYTHONSHELL_WITH_SPARK = """from awsglue.utils import getResolvedOptions
import sys
print(getResolvedOptions(sys.argv, ["JOB_NAME"])["JOB_NAME"])
from awsglue.context import GlueContext
"""


def processes_in(run_dir: Path) -> list[int]:
    """Pids of processes whose working directory is the run's directory (the job's)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "cwd") == str(run_dir):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


async def test_an_unmodified_glue_script_runs_on_spark_through_boto3(
    stack: Stack, aws: Aws, spark: Any
) -> None:
    put(stack, "landing/orders/part-0.csv", "order_id,customer,amount\n1,ada,10.5\n2,alan,20\n")
    script = put(stack, "scripts/orders.py", GENERATED_SCRIPT)
    await aws(
        "create_job",
        **glueetl_job(
            "orders", script, DefaultArguments={"--job-bookmark-option": "job-bookmark-enable"}
        ),
    )
    run_id = (await aws("start_job_run", JobName="orders"))["JobRunId"]
    run = await wait_state(aws, "orders", run_id)
    assert run["JobRunState"] == "SUCCEEDED", run
    written = spark.read.parquet(str(s3_root(stack) / "curated/orders"))
    assert written.schema.simpleString() == "struct<order_id:bigint,customer:string,amount:double>"
    assert sorted(tuple(r) for r in written.collect()) == [(1, "ada", 10.5), (2, "alan", 20.0)]
    log = (stack.data_dir / "runs" / run_id / "output.log").read_text()
    assert "Traceback" not in log


async def test_a_failing_script_names_its_exception(stack: Stack, aws: Aws) -> None:
    script = put(stack, "scripts/failing.py", FAILING_SCRIPT)
    await aws("create_job", **glueetl_job("failing", script, GlueVersion="4.0"))
    run_id = (await aws("start_job_run", JobName="failing"))["JobRunId"]
    run = await wait_state(aws, "failing", run_id)
    assert run["JobRunState"] == "FAILED"
    assert run["ErrorMessage"] == "ValueError: no orders in the landing bucket"
    log = (stack.data_dir / "runs" / run_id / "output.log").read_text()
    # The job's GlueVersion is recorded; the run says which Spark it ran on instead.
    assert "GlueVersion 4.0 is Spark 3.3 on AWS; this run uses the installed Spark 3.5" in log
    assert run["GlueVersion"] == "4.0"


async def test_pythonshell_imports_awsglue_utils_but_not_its_spark_parts(
    stack: Stack, aws: Aws
) -> None:
    script = put(stack, "scripts/shell.py", PYTHONSHELL_WITH_SPARK)
    await aws(
        "create_job",
        Name="shell",
        Role="arn:aws:iam::123456789012:role/glue",
        Command={"Name": "pythonshell", "ScriptLocation": script, "PythonVersion": "3.9"},
    )
    run_id = (await aws("start_job_run", JobName="shell"))["JobRunId"]
    run = await wait_state(aws, "shell", run_id, timeout=30)
    assert run["JobRunState"] == "FAILED"
    assert "pythonshell jobs have no Spark" in run["ErrorMessage"]
    assert "use glueetl" in run["ErrorMessage"] or "glueetl" in run["ErrorMessage"]
    log = (stack.data_dir / "runs" / run_id / "output.log").read_text()
    assert log.splitlines()[0] == "shell"  # getResolvedOptions worked


async def test_stop_and_timeout_end_the_whole_spark_application(stack: Stack, aws: Aws) -> None:
    script = put(stack, "scripts/spin.py", SPINNING_SCRIPT)
    await aws(
        "create_job", **glueetl_job("spin", script, ExecutionProperty={"MaxConcurrentRuns": 2})
    )
    stopped = (await aws("start_job_run", JobName="spin"))["JobRunId"]
    timed_out = (await aws("start_job_run", JobName="spin", Timeout=1))["JobRunId"]
    runs_dir = stack.data_dir / "runs"
    loop = asyncio.get_running_loop()
    # As long as wait_state allows a run: a driver JVM can take minutes to start on a loaded
    # 2-core machine (CI's, with the suite's other workers busy).
    deadline = loop.time() + 240
    log = runs_dir / stopped / "output.log"
    while not log.exists() or "spark is up" not in log.read_text(errors="replace"):
        assert loop.time() < deadline
        await asyncio.sleep(0.25)
    # The driver JVM and its Python driver both run in the run's directory.
    assert len(processes_in(runs_dir / stopped)) >= 2
    await aws("batch_stop_job_run", JobName="spin", JobRunIds=[stopped])
    run = await wait_state(aws, "spin", stopped, timeout=30)
    assert run["JobRunState"] == "STOPPED"
    assert processes_in(runs_dir / stopped) == []
    run = await wait_state(aws, "spin", timed_out, timeout=120)
    assert run["JobRunState"] == "TIMEOUT"
    assert processes_in(runs_dir / timed_out) == []
