"""What the glueetl service tests share: S3 objects under the scheduler's S3 root, a glueetl
job's parameters, waiting for a run through boto3, and an unchanged generated Glue script."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.conftest import Stack
from tests.gateway.conftest import Aws

# What Glue Studio generates for "S3 CSV -> ApplyMapping -> S3 Parquet", unchanged.
GENERATED_SCRIPT = """import sys
from awsglue.transforms import *
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext
from awsglue.context import GlueContext
from awsglue.job import Job

args = getResolvedOptions(sys.argv, ["JOB_NAME"])
sc = SparkContext()
glueContext = GlueContext(sc)
spark = glueContext.spark_session
job = Job(glueContext)
job.init(args["JOB_NAME"], args)

# Script generated for node Amazon S3
AmazonS3_node1 = glueContext.create_dynamic_frame.from_options(
    format_options={"quoteChar": '"', "withHeader": True, "separator": ","},
    connection_type="s3",
    format="csv",
    connection_options={"paths": ["s3://landing/orders/"], "recurse": True},
    transformation_ctx="AmazonS3_node1",
)

# Script generated for node Change Schema
ChangeSchema_node2 = ApplyMapping.apply(
    frame=AmazonS3_node1,
    mappings=[
        ("order_id", "string", "order_id", "long"),
        ("customer", "string", "customer", "string"),
        ("amount", "string", "amount", "double"),
    ],
    transformation_ctx="ChangeSchema_node2",
)

# Script generated for node Amazon S3
AmazonS3_node3 = glueContext.write_dynamic_frame.from_options(
    frame=ChangeSchema_node2,
    connection_type="s3",
    format="glueparquet",
    connection_options={"path": "s3://curated/orders/", "partitionKeys": []},
    format_options={"compression": "snappy"},
    transformation_ctx="AmazonS3_node3",
)

job.commit()
"""


def s3_root(stack: Stack) -> Path:
    """The scheduler's S3 root (``<data-dir>/s3`` by default)."""
    return stack.scheduler_settings.effective_s3_root


def put(stack: Stack, key: str, text: str) -> str:
    """Write an object under the S3 root; returns its s3:// URI."""
    path = s3_root(stack) / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return f"s3://{key}"


def glueetl_job(name: str, script: str, **members: Any) -> dict[str, Any]:
    """CreateJob parameters of a glueetl job (small: G.1X, 2 workers)."""
    return {
        "Name": name,
        "Role": "arn:aws:iam::123456789012:role/glue",
        "Command": {"Name": "glueetl", "ScriptLocation": script, "PythonVersion": "3"},
        "GlueVersion": "5.0",
        "WorkerType": "G.1X",
        "NumberOfWorkers": 2,
        **members,
    }


async def wait_state(aws: Aws, job: str, run_id: str, timeout: float = 240) -> dict[str, Any]:
    """Poll GetJobRun through boto3 until the run ends. A glueetl run starts a JVM: on a
    loaded 2-core machine (``make test``'s workers) one took over 150 s to end."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        run: dict[str, Any] = (await aws("get_job_run", JobName=job, RunId=run_id))["JobRun"]
        if run["JobRunState"] in {"SUCCEEDED", "FAILED", "TIMEOUT", "STOPPED", "ERROR"}:
            return run
        assert loop.time() < deadline, run
        await asyncio.sleep(0.25)
