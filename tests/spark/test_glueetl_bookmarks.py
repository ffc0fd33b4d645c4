"""Job bookmarks end to end: runs commit state, the next run starts from it, the API shows it.

An unchanged Glue script with ``--job-bookmark-option job-bookmark-enable`` through boto3: the
second run of a file job reads only the file added since the first; a JDBC job (PostgreSQL, with
jobBookmarkKeys) reads only the rows inserted since; GetJobBookmark shows the committed entry
and ResetJobBookmark makes the next run start over.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from tests.conftest import Stack
from tests.helpers.glueetl import GENERATED_SCRIPT, glueetl_job, put, s3_root, wait_state
from tests.helpers.spark import POSTGRES_JAR

pytestmark = [
    pytest.mark.slow,
    pytest.mark.catalog_settings(http_listen="127.0.0.1:0"),
]

JDBC_SCRIPT = """import sys
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext
from awsglue.context import GlueContext
from awsglue.job import Job

args = getResolvedOptions(sys.argv, ["JOB_NAME", "table"])
sc = SparkContext()
glueContext = GlueContext(sc)
job = Job(glueContext)
job.init(args["JOB_NAME"], args)
source = glueContext.create_dynamic_frame.from_options(
    connection_type="postgresql",
    connection_options={
        "url": "jdbc:postgresql://127.0.0.1:5432/test",
        "user": "postgres",
        "password": "",
        "dbtable": args["table"],
        "jobBookmarkKeys": ["id"],
        "jobBookmarkKeysSortOrder": "asc",
    },
    transformation_ctx="orders_table",
)
glueContext.write_dynamic_frame.from_options(
    frame=source,
    connection_type="s3",
    format="parquet",
    connection_options={"path": "s3://warehouse/orders/"},
    transformation_ctx="orders_parquet",
)
job.commit()
"""
DSN = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture
async def orders_table() -> AsyncIterator[str]:
    """A fresh table in PostgreSQL's ``test`` database, dropped afterwards."""
    name = f"orders_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(DSN)
    try:
        await conn.execute(f"CREATE TABLE {name} (id integer PRIMARY KEY, customer text)")
        yield name
    finally:
        await conn.execute(f"DROP TABLE IF EXISTS {name}")
        await conn.close()


async def insert(table: str, *ids: int) -> None:
    conn = await asyncpg.connect(DSN)
    try:
        await conn.executemany(
            f"INSERT INTO {table} (id, customer) VALUES ($1, $2)", [(i, f"c{i}") for i in ids]
        )
    finally:
        await conn.close()


async def run_to_success(aws: Any, job: str) -> str:
    run_id: str = (await aws("start_job_run", JobName=job))["JobRunId"]
    run = await wait_state(aws, job, run_id)
    assert run["JobRunState"] == "SUCCEEDED", run
    return run_id


async def test_a_second_run_reads_only_the_new_file_and_a_reset_starts_over(
    stack: Stack, aws: Any, spark: Any
) -> None:
    put(stack, "landing/orders/part-0.csv", "order_id,customer,amount\n1,ada,10.5\n2,alan,20\n")
    script = put(stack, "scripts/orders.py", GENERATED_SCRIPT)
    enable = {"--job-bookmark-option": "job-bookmark-enable"}
    await aws("create_job", **glueetl_job("orders", script, DefaultArguments=enable))
    error = await aws.error("get_job_bookmark", JobName="orders")
    assert error[0] == "EntityNotFoundException"

    first = await run_to_success(aws, "orders")
    entry = (await aws("get_job_bookmark", JobName="orders"))["JobBookmarkEntry"]
    assert (entry["RunId"], entry["Run"], entry["Version"]) == (first, 1, 1)
    state = json.loads(entry["JobBookmark"])
    assert list(state["transformations"]["AmazonS3_node1"]["files"]) == [
        "s3://landing/orders/part-0.csv"
    ]

    put(stack, "landing/orders/part-1.csv", "order_id,customer,amount\n3,grace,7.25\n")
    second = await run_to_success(aws, "orders")
    output = str(s3_root(stack) / "curated/orders")
    # Sinks append: the second run wrote only the new file's row.
    assert sorted(r.order_id for r in spark.read.parquet(output).collect()) == [1, 2, 3]
    entry = (await aws("get_job_bookmark", JobName="orders"))["JobBookmarkEntry"]
    assert (entry["RunId"], entry["Run"], entry["Version"]) == (second, 2, 2)

    await aws("reset_job_bookmark", JobName="orders")
    await run_to_success(aws, "orders")
    # After the reset the third run read both files again.
    assert sorted(r.order_id for r in spark.read.parquet(output).collect()) == [1, 1, 2, 2, 3, 3]


@pytest.mark.postgres
@pytest.mark.skipif(
    not POSTGRES_JAR.exists(), reason=f"no PostgreSQL JDBC driver at {POSTGRES_JAR}"
)
async def test_a_jdbc_job_reads_only_rows_past_its_bookmark_keys(
    stack: Stack, aws: Any, spark: Any, orders_table: str
) -> None:
    await insert(orders_table, 1, 2, 3)
    script = put(stack, "scripts/jdbc.py", JDBC_SCRIPT)
    arguments = {
        "--job-bookmark-option": "job-bookmark-enable",
        "--extra-jars": str(POSTGRES_JAR),
        "--table": orders_table,
    }
    await aws("create_job", **glueetl_job("jdbc-orders", script, DefaultArguments=arguments))
    await run_to_success(aws, "jdbc-orders")
    await insert(orders_table, 4, 5)
    await run_to_success(aws, "jdbc-orders")
    written = spark.read.parquet(str(s3_root(stack) / "warehouse/orders"))
    # Each row once: the second run read only ids 4 and 5.
    assert sorted(r.id for r in written.collect()) == [1, 2, 3, 4, 5]
    entry = (await aws("get_job_bookmark", JobName="jdbc-orders"))["JobBookmarkEntry"]
    assert entry["Run"] == 2
    assert json.loads(entry["JobBookmark"])["transformations"]["orders_table"]["last"] == [5]
