"""A glueetl run on a real Spark standalone cluster: a master and one worker on loopback.

The scheduler is given ``--spark-master spark://127.0.0.1:PORT`` and the master's UI; the job's
WorkerType and NumberOfWorkers become the executor's cores and memory. The master's and the
worker's JSON status pages must show that the application ran its executor on the worker; a job
whose executors the worker cannot hold ends FAILED at once instead of waiting forever.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scheduler_service.commands import spark_submit
from tests.conftest import Stack
from tests.helpers.glueetl import put, wait_state
from tests.helpers.processes import free_port

MASTER_PORT, MASTER_UI = free_port(), free_port()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.catalog_settings(http_listen="127.0.0.1:0"),
    pytest.mark.scheduler_settings(
        spark_master=f"spark://127.0.0.1:{MASTER_PORT}",
        spark_master_ui=f"http://127.0.0.1:{MASTER_UI}",
    ),
]

CLUSTER_SCRIPT = """import sys
from pyspark.context import SparkContext
from awsglue.context import GlueContext
from awsglue.utils import getResolvedOptions

args = getResolvedOptions(sys.argv, ["JOB_NAME"])
sc = SparkContext()
glueContext = GlueContext(sc)
total = sc.parallelize(range(1000), 4).map(lambda x: x * 2).sum()
print("total", total, flush=True)
"""


def status(port: int) -> dict[str, Any]:
    """A standalone daemon's JSON status page."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/", timeout=5) as response:
        data: dict[str, Any] = json.load(response)
    return data


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[int, int]]:
    """A master and a worker (2 cores, 3 GiB), both bound to 127.0.0.1; their UI ports."""
    spark_class = spark_submit().parent / "spark-class"
    master_ui, worker_ui = MASTER_UI, free_port()
    env = {**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_WORKER_DIR": str(tmp_path / "w")}
    log = (tmp_path / "cluster.log").open("ab")
    daemons = [
        subprocess.Popen(
            [str(spark_class), "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
             "--port", str(MASTER_PORT), "--webui-port", str(master_ui)],
            env=env, stdout=log, stderr=log, start_new_session=True,
        ),
        subprocess.Popen(
            [str(spark_class), "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
             "--webui-port", str(worker_ui), "--cores", "2", "--memory", "3g",
             f"spark://127.0.0.1:{MASTER_PORT}"],
            env=env, stdout=log, stderr=log, start_new_session=True,
        ),
    ]  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if [w["state"] for w in status(master_ui)["workers"]] == ["ALIVE"]:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "cluster.log").read_text()[-3000:]
            time.sleep(0.5)
        yield master_ui, worker_ui
    finally:
        for daemon in daemons:
            os.killpg(daemon.pid, 9)
            daemon.wait()
        log.close()


async def test_a_glueetl_run_executes_on_the_clusters_worker(
    stack: Stack,
    aws: Any,
    cluster: tuple[int, int],
) -> None:
    master_ui, worker_ui = cluster
    script = put(stack, "scripts/cluster.py", CLUSTER_SCRIPT)
    await aws(
        "create_job",
        Name="on-cluster",
        Role="arn:aws:iam::123456789012:role/glue",
        Command={"Name": "glueetl", "ScriptLocation": script},
        GlueVersion="5.0",
        WorkerType="G.025X",
        NumberOfWorkers=2,
        # The driver runs here; executors reach it on loopback, like everything in tests.
        DefaultArguments={
            "--conf": "spark.driver.host=127.0.0.1 --conf spark.driver.bindAddress=127.0.0.1"
        },
    )
    run_id = (await aws("start_job_run", JobName="on-cluster"))["JobRunId"]
    run = await wait_state(aws, "on-cluster", run_id)
    log = (stack.data_dir / "runs" / run_id / "output.log").read_text(errors="replace")
    assert run["JobRunState"] == "SUCCEEDED", log[-3000:]
    assert "total 999000" in log
    # The daemons learn that the application ended a moment after its driver exits.
    deadline = time.monotonic() + 30
    while True:
        master = await asyncio.to_thread(status, master_ui)
        worker = await asyncio.to_thread(status, worker_ui)
        apps = [a for a in master["completedapps"] if a["name"] == "on-cluster"]
        ran_here = [e for e in worker["finishedexecutors"] if apps and e["appid"] == apps[0]["id"]]
        if apps and ran_here:
            break
        assert time.monotonic() < deadline, (master, worker)
        await asyncio.sleep(0.5)
    # G.025X: 2 vCPUs per worker, one of the two workers hosts the driver: one executor.
    assert apps[0]["cores"] == 2
    # G.025X's 4 GiB per worker: a 2 GiB executor heap, as AWS sizes G.1X's (10 of 16).
    assert len(ran_here) == 1 and ran_here[0]["memory"] == 2048, worker


async def test_a_run_whose_executors_fit_no_worker_fails_instead_of_waiting(
    stack: Stack, aws: Any, cluster: tuple[int, int]
) -> None:
    script = put(stack, "scripts/cluster.py", CLUSTER_SCRIPT)
    await aws(
        "create_job",
        Name="too-big",
        Role="arn:aws:iam::123456789012:role/glue",
        Command={"Name": "glueetl", "ScriptLocation": script},
        WorkerType="G.1X",
        NumberOfWorkers=3,
    )
    run_id = (await aws("start_job_run", JobName="too-big"))["JobRunId"]
    run = await wait_state(aws, "too-big", run_id, timeout=30)
    assert run["JobRunState"] == "FAILED"
    assert run["ErrorMessage"].startswith(
        f"No worker of the Spark cluster at spark://127.0.0.1:{MASTER_PORT} can hold one of "
        "this job's executors (G.1X: 4 cores and 10240 MB each; its largest workers offer "
        "2 cores and 3072 MB)."
    ), run["ErrorMessage"]
    master = await asyncio.to_thread(status, cluster[0])
    assert [
        a for a in master["activeapps"] + master["completedapps"] if a["name"] == "too-big"
    ] == []
