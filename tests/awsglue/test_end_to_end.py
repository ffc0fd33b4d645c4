"""An unmodified AWS-style generated script, run twice with spark-submit and job bookmarks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.awsglue.conftest import RUNTIME

pytestmark = pytest.mark.slow

# What Glue Studio generates for "S3 CSV -> ApplyMapping -> Filter -> S3 Parquet", unchanged.
# The Filter's lambda runs in Spark's Python workers, which must import awsglue too.
SCRIPT = """import sys
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

# Script generated for node S3 bucket
S3bucket_node1 = glueContext.create_dynamic_frame.from_options(
    format_options={"quoteChar": '"', "withHeader": True, "separator": ","},
    connection_type="s3",
    format="csv",
    connection_options={"paths": ["s3://input-bucket/orders/"], "recurse": True},
    transformation_ctx="S3bucket_node1",
)

# Script generated for node ApplyMapping
ApplyMapping_node2 = ApplyMapping.apply(
    frame=S3bucket_node1,
    mappings=[
        ("order_id", "string", "order_id", "long"),
        ("customer", "string", "customer_name", "string"),
        ("amount", "string", "amount", "double"),
    ],
    transformation_ctx="ApplyMapping_node2",
)

# Script generated for node Filter
Filter_node3 = Filter.apply(
    frame=ApplyMapping_node2,
    f=lambda row: (row["amount"] > 0),
    transformation_ctx="Filter_node3",
)

# Script generated for node S3 bucket
S3bucket_node4 = glueContext.write_dynamic_frame.from_options(
    frame=Filter_node3,
    connection_type="s3",
    format="glueparquet",
    connection_options={"path": "s3://output-bucket/orders/", "partitionKeys": []},
    format_options={"compression": "snappy"},
    transformation_ctx="S3bucket_node4",
)

job.commit()
"""


def spark_submit(
    script: Path, run_id: str, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    import pyspark

    spark_home = Path(pyspark.__file__).parent
    command = [
        str(spark_home / "bin" / "spark-submit"),
        "--master", "local[2]",
        "--conf", "spark.driver.host=127.0.0.1",
        "--conf", "spark.driver.bindAddress=127.0.0.1",
        "--conf", "spark.ui.enabled=false",
        "--conf", "spark.ui.showConsoleProgress=false",
        "--conf", "spark.sql.shuffle.partitions=2",
        str(script),
        "--JOB_NAME", "x",
        "--JOB_RUN_ID", run_id,
        "--job-bookmark-option", "job-bookmark-enable",
    ]  # fmt: skip
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("AWSGLUE_")}
    full_env.update(
        env,
        SPARK_HOME=str(spark_home),
        SPARK_LOCAL_IP="127.0.0.1",
        PYSPARK_PYTHON=sys.executable,
        PYSPARK_DRIVER_PYTHON=sys.executable,
        PYTHONPATH=str(RUNTIME),
    )
    return subprocess.run(
        command, env=full_env, capture_output=True, text=True, timeout=110, check=False
    )


def test_generated_script_runs_unchanged_and_bookmarks_skip_processed_files(
    spark: Any, tmp_path: Path
) -> None:
    root = tmp_path / "s3"
    orders = root / "input-bucket/orders"
    orders.mkdir(parents=True)
    (orders / "part-1.csv").write_text(
        "order_id,customer,amount\n1,ada,10.5\n2,alan,20\n9,zero,0\n"
    )
    script = tmp_path / "job.py"
    script.write_text(SCRIPT)
    state1, state2 = tmp_path / "bookmark-1.json", tmp_path / "bookmark-2.json"
    output = root / "output-bucket/orders"

    first = spark_submit(
        script, "jr_1", {"AWSGLUE_S3_ROOT": str(root), "AWSGLUE_BOOKMARK_OUT": str(state1)}
    )
    assert first.returncode == 0, first.stderr[-3000:]
    written = spark.read.parquet(str(output))
    assert (
        written.schema.simpleString()
        == "struct<order_id:bigint,customer_name:string,amount:double>"
    )
    assert sorted(tuple(r) for r in written.collect()) == [(1, "ada", 10.5), (2, "alan", 20.0)]
    state = json.loads(state1.read_text())
    assert state["job_name"] == "x" and state["run_id"] == "jr_1"
    assert list(state["transformations"]["S3bucket_node1"]["files"]) == [
        "s3://input-bucket/orders/part-1.csv"
    ]

    (orders / "part-2.csv").write_text("order_id,customer,amount\n3,grace,7.25\n8,refund,-1\n")
    second = spark_submit(
        script,
        "jr_2",
        {
            "AWSGLUE_S3_ROOT": str(root),
            "AWSGLUE_BOOKMARK_IN": str(state1),
            "AWSGLUE_BOOKMARK_OUT": str(state2),
        },
    )
    assert second.returncode == 0, second.stderr[-3000:]
    # The second run appended only the new file's row: nothing was processed twice.
    rows = sorted(tuple(r) for r in spark.read.parquet(str(output)).collect())
    assert rows == [(1, "ada", 10.5), (2, "alan", 20.0), (3, "grace", 7.25)]
    state = json.loads(state2.read_text())
    assert state["run_id"] == "jr_2"
    assert sorted(state["transformations"]["S3bucket_node1"]["files"]) == [
        "s3://input-bucket/orders/part-1.csv",
        "s3://input-bucket/orders/part-2.csv",
    ]
