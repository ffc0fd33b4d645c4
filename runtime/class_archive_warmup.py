"""The glueetl script the scheduler runs to write the drivers' shared class-data archive.

Its driver JVM runs with ``-XX:ArchiveClassesAtExit`` (``scheduler_service/class_archive.py``),
so the archive holds the classes this script makes it load; every later run maps them instead
of loading and verifying them again. So it goes, on a few rows, through what Glue scripts
commonly do: a GlueContext and a Job with bookmarks, DynamicFrames read from CSV (small plain
files, typed on the driver, and a quoted file that Spark's CSV reader reads), JSON and Parquet,
the usual transforms, a shuffle, a Python filter, ``toDF``, and writes to Parquet, CSV and JSON.

It is planned like a run (``commands.plan_warm_up``): launched through ``glue_driver.py`` with
the run's environment, in a temporary directory that is its working directory, its home and its
S3 root; it writes nothing anywhere else (the archive is written by its JVM).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from awsglue._paths import S3_ROOT_ENV
from awsglue.context import GlueContext
from awsglue.dynamicframe import DynamicFrame
from awsglue.job import Job
from awsglue.transforms import ApplyMapping, DropNullFields, Filter, RenameField, SelectFields
from awsglue.utils import getResolvedOptions
from pyspark.context import SparkContext
from pyspark.sql import functions

BUCKET = "warm-up"


def _inputs(s3_root: Path) -> None:
    """A few tiny input files under ``s3://warm-up/``."""
    plain = s3_root / BUCKET / "csv"
    plain.mkdir(parents=True, exist_ok=True)
    for i in range(3):
        (plain / f"part-{i}.csv").write_text(f"id,name,amount\n{i},name-{i},{i}.5\n")
    quoted = s3_root / BUCKET / "quoted"
    quoted.mkdir(parents=True, exist_ok=True)
    (quoted / "part-0.csv").write_text('id,name,amount\n1,"a, b",2.5\n2,"c",\n')
    json_dir = s3_root / BUCKET / "json"
    json_dir.mkdir(parents=True, exist_ok=True)
    (json_dir / "part-0.json").write_text(
        '{"id": 1, "tags": {"kind": "x"}, "value": 1.5}\n{"id": 2, "value": "2"}\n'
    )


def main() -> None:
    """Read, transform and write a few rows every common way."""
    args = getResolvedOptions(sys.argv, ["JOB_NAME"])
    _inputs(Path(os.environ[S3_ROOT_ENV]))
    glue = GlueContext(SparkContext())
    job = Job(glue)
    job.init(args["JOB_NAME"], args)
    read = glue.create_dynamic_frame.from_options
    write = glue.write_dynamic_frame.from_options
    source = f"s3://{BUCKET}"
    plain = read(
        connection_type="s3",
        format="csv",
        format_options={"withHeader": True},
        connection_options={"paths": [f"{source}/csv/"]},
        transformation_ctx="plain",
    )
    quoted = read(
        connection_type="s3",
        format="csv",
        format_options={"withHeader": True},
        connection_options={"paths": [f"{source}/quoted/"]},
        transformation_ctx="quoted",
    )
    mappings = [
        ("id", "string", "id", "long"),
        ("name", "string", "customer", "string"),
        ("amount", "string", "amount", "double"),
    ]
    mapped = ApplyMapping.apply(frame=plain, mappings=mappings, transformation_ctx="mapped")
    # As Glue Studio's scripts do: what was read, mapped and written straight out.
    write(
        frame=mapped,
        connection_type="s3",
        format="glueparquet",
        connection_options={"path": f"{source}/out-mapped/", "partitionKeys": []},
        format_options={"compression": "snappy"},
        transformation_ctx="out_mapped",
    )
    both = mapped.toDF().unionByName(ApplyMapping.apply(frame=quoted, mappings=mappings).toDF())
    totals = both.groupBy("customer").agg(functions.sum("amount").alias("total"))
    totals = totals.orderBy("customer")
    frame = DynamicFrame.fromDF(totals, glue, "totals")
    frame = RenameField.apply(frame=frame, old_name="total", new_name="amount")
    frame = DropNullFields.apply(
        frame=SelectFields.apply(frame=frame, paths=["customer", "amount"])
    )
    frame = Filter.apply(frame=frame, f=lambda row: row["amount"] is not None)
    for fmt in ("parquet", "csv", "json"):
        write(
            frame=frame,
            connection_type="s3",
            format=fmt,
            connection_options={"path": f"{source}/out-{fmt}/"},
            transformation_ctx=f"out_{fmt}",
        )
    nested = read(
        connection_type="s3",
        format="json",
        connection_options={"paths": [f"{source}/json/"]},
    )
    nested = nested.resolveChoice(specs=[("value", "cast:double")])
    write(
        frame=nested,
        connection_type="s3",
        format="parquet",
        connection_options={"path": f"{source}/out-json/"},
    )
    back = read(
        connection_type="s3",
        format="parquet",
        connection_options={"paths": [f"{source}/out-parquet/"]},
    )
    # Actions on what was written and read: Parquet and JSON scans, counts.
    sys.stdout.write(f"warm-up rows {back.count()} {nested.toDF().count()}\n")
    job.commit()


if __name__ == "__main__":
    main()
