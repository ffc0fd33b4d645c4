"""glueetl figures: what running a Glue script here costs over Spark itself.

1. A trivial glueetl script, StartJobRun -> SUCCEEDED through both services (SQLite), against a
   bare ``spark-submit`` of the same command (the same plan the scheduler builds), taking
   turns, one at a time; target: within 10 % or 1 s.
2. A CSV -> Parquet job over ``--rows`` rows (5 million) through DynamicFrame and ApplyMapping,
   against the same job written with plain DataFrames; rows/s of the job body (reading to the
   written files), each in its own spark-submit, twice each taking turns (the faster of each
   pair compared); target: at least 90 % of the DataFrame job.
3. Job bookmarks: a job over ``--files`` (500) small CSV files, then one more file and the job
   again; the second run's body time against the first's; target: under 25 %. Printed with
   each body's phases and the floor: a fresh JVM's first Spark job writing one row.

Every spark-submit is the scheduler's plan, with its class-data archive (docs/awsglue.md, "Driver
JVM start"): first the scheduler's warm-up writes the archive into the services' data directory,
as the scheduler would after its first glueetl launch (its wall time is printed on its own: it is
paid once per Spark and JDK install), and then every run, bare or through the services, maps it,
as runs do in a scheduler's steady state. Small plain CSV
inputs of listed sources (the bookmarked runs') are typed on the driver, without Spark jobs; a
large plain input's type sample (the CSV -> Parquet jobs') is read on the driver too.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import grpc

from bench import procs
from glue.v1 import glue_pb2, glue_pb2_grpc
from scheduler_service.commands import CommandSettings, plan_launch
from scheduler_service.warm_up import write_archive

TRIVIAL = """from pyspark.context import SparkContext
from awsglue.context import GlueContext
glueContext = GlueContext(SparkContext())
print("rows", glueContext.spark_session.range(10).count())
"""

# Both print "body <seconds>": from the first read to the written files.
DYNAMIC_FRAME_JOB = """import sys, time
from awsglue.transforms import ApplyMapping
from awsglue.context import GlueContext
from pyspark.context import SparkContext
glueContext = GlueContext(SparkContext())
started = time.monotonic()
frame = glueContext.create_dynamic_frame.from_options(
    connection_type="s3", format="csv", format_options={"withHeader": True},
    connection_options={"paths": ["s3://bench/rows/"]})
mapped = ApplyMapping.apply(frame=frame, mappings=[
    ("id", "string", "id", "long"), ("name", "string", "customer", "string"),
    ("amount", "string", "amount", "double")])
glueContext.write_dynamic_frame.from_options(
    frame=mapped, connection_type="s3", format="parquet",
    connection_options={"path": "s3://bench/out-dynamicframe/"})
print("body", time.monotonic() - started)
"""

DATA_FRAME_JOB = """import os, time
from pyspark.sql import SparkSession, functions as F
spark = SparkSession.builder.getOrCreate()
root = os.environ["AWSGLUE_S3_ROOT"]
started = time.monotonic()
frame = spark.read.option("header", True).csv(root + "/bench/rows/")
mapped = frame.select(F.col("id").cast("long").alias("id"), F.col("name").alias("customer"),
                      F.col("amount").cast("double").alias("amount"))
mapped.write.mode("append").parquet(root + "/bench/out-dataframe/")
print("body", time.monotonic() - started)
"""

BOOKMARKED_JOB = """import sys, time
from awsglue.utils import getResolvedOptions
from awsglue.context import GlueContext
from awsglue.job import Job
from pyspark.context import SparkContext
args = getResolvedOptions(sys.argv, ["JOB_NAME"])
glueContext = GlueContext(SparkContext())
job = Job(glueContext)
started = time.monotonic()
job.init(args["JOB_NAME"], args)
inited = time.monotonic()
frame = glueContext.create_dynamic_frame.from_options(
    connection_type="s3", format="csv", format_options={"withHeader": True},
    connection_options={"paths": ["s3://bench/files/"]}, transformation_ctx="source")
read = time.monotonic()
glueContext.write_dynamic_frame.from_options(
    frame=frame, connection_type="s3", format="parquet",
    connection_options={"path": "s3://bench/files-out/"}, transformation_ctx="sink")
written = time.monotonic()
job.commit()
ended = time.monotonic()
print("body", ended - started, "rows", frame.count())
print("phases", inited - started, read - inited, written - read, ended - written)
"""

# The least a bookmarked run's body can cost: a fresh JVM's first Spark job writing one row
# to Parquet (query planning, code generation and the classes they load, the first tasks).
FIRST_WRITE_JOB = """import os, time
from pyspark.context import SparkContext
from awsglue.context import GlueContext
glueContext = GlueContext(SparkContext())
started = time.monotonic()
frame = glueContext.spark_session.createDataFrame([(1, 2)], "id long, value long")
frame.write.mode("append").parquet(os.environ["AWSGLUE_S3_ROOT"] + "/bench/first-write/")
print("body", time.monotonic() - started)
"""


# CPU seconds of each spark-submit run, by run id (see _spark_submit).
_CPU_SECONDS: dict[str, float] = {}


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


async def _spark_submit(script: Path, work: Path, run_id: str, **arguments: str) -> float:
    """Run ``script`` the way the scheduler would (its plan), directly; wall seconds.

    Raises:
        RuntimeError: the script failed (its output's end says why).
    """
    run_dir = work / "bare" / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    plan = plan_launch(
        {"JobName": "bench", "_Command": {"Name": "glueetl", "ScriptLocation": str(script)}},
        "bench",
        run_id,
        arguments,
        run_dir,
        # As the scheduler's: its data directory keeps the drivers' class-data archive.
        CommandSettings(python=sys.executable, s3_root=work / "s3", class_archives=_archives(work)),
    )
    started = time.monotonic()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    with (run_dir / "output.log").open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            *plan.argv, cwd=run_dir, stdout=log, stderr=log, env={**os.environ, **plan.env}
        )
        code = await process.wait()
    elapsed = time.monotonic() - started
    # The CPU of the run's process tree (spark-submit's JVM and its Python driver, all reaped).
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    _CPU_SECONDS[run_id] = (after.ru_utime + after.ru_stime) - (
        children.ru_utime + children.ru_stime
    )
    if code != 0:
        tail = (run_dir / "output.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{script.name} exited {code}: {tail}")
    return elapsed


def _archives(work: Path) -> Path:
    """The class-data archive directory of the services' scheduler, which bare runs share."""
    return work / "services" / "class-archives"


async def _warm_up(work: Path) -> float:
    """Write the class-data archive as the scheduler does (its warm-up); wall seconds.

    Raises:
        RuntimeError: the warm-up wrote no archive (the scheduler's log would say why).
    """
    started = time.monotonic()
    written = await write_archive(
        CommandSettings(python=sys.executable, class_archives=_archives(work))
    )
    elapsed = time.monotonic() - started
    if not written:
        raise RuntimeError("the class-data archive warm-up wrote no archive")
    return elapsed


def _body_seconds(work: Path, run_id: str, label: str = "body") -> float:
    """The "body <seconds>" a job printed (or the first figure of another label)."""
    return _printed(work, run_id, label)[0]


def _printed(work: Path, run_id: str, label: str) -> list[float]:
    """The figures a job printed on its "<label> ..." line."""
    for line in (work / "bare" / run_id / "output.log").read_text().splitlines():
        if line.startswith(f"{label} "):
            return [float(word) for word in line.split()[1:] if word[:1].isdigit()]
    raise RuntimeError(f"run {run_id} printed no {label} line")


async def _through_services(work: Path, runs: int, script: Path) -> tuple[list[float], list[float]]:
    """StartJobRun -> SUCCEEDED of the trivial script and a bare spark-submit of it, ``runs``
    times each, taking turns (the machine's drift then touches both alike); their wall times."""
    data = work / "services"
    sched_port, cat_port = procs.free_port(), procs.free_port()
    scheduler = procs.Service(
        "scheduler",
        "scheduler_service",
        ["--listen", f"127.0.0.1:{sched_port}", "--data-dir", str(data),
         "--s3-root", str(work / "s3")],
        work / "scheduler.log",
    )  # fmt: skip
    catalog = procs.Service(
        "catalog",
        "catalog_service",
        ["--listen", f"127.0.0.1:{cat_port}", "--data-dir", str(data),
         "--scheduler", f"127.0.0.1:{sched_port}"],
        work / "catalog.log",
    )  # fmt: skip
    latencies: list[float] = []
    bare: list[float] = []
    try:
        await scheduler.start()
        await procs.wait_serving(f"127.0.0.1:{sched_port}", scheduler)
        await catalog.start()
        await procs.wait_serving(f"127.0.0.1:{cat_port}", catalog)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{cat_port}") as channel:
            glue = glue_pb2_grpc.GlueStub(channel)
            await glue.CreateJob(
                glue_pb2.CreateJobRequest(
                    name="trivial",
                    role="arn:aws:iam::123456789012:role/bench",
                    command=glue_pb2.JobCommand(
                        name="glueetl", script_location="s3://bench/scripts/trivial.py"
                    ),
                )
            )
            for i in range(runs):
                bare.append(await _spark_submit(script, work, f"jr_bare_{i}"))
                started = time.monotonic()
                run_id = (
                    await glue.StartJobRun(glue_pb2.StartJobRunRequest(job_name="trivial"))
                ).job_run_id
                while True:
                    run = (
                        await glue.GetJobRun(
                            glue_pb2.GetJobRunRequest(job_name="trivial", run_id=run_id)
                        )
                    ).job_run
                    if run.job_run_state in ("SUCCEEDED", "FAILED", "ERROR", "TIMEOUT"):
                        break
                    await asyncio.sleep(0.02)
                if run.job_run_state != "SUCCEEDED":
                    raise RuntimeError(
                        f"trivial run ended {run.job_run_state}: {run.error_message}"
                    )
                latencies.append(time.monotonic() - started)
    finally:
        await catalog.stop()
        await scheduler.stop()
    return latencies, bare


def _make_rows(path: Path, rows: int) -> None:
    """A CSV of ``rows`` rows (id, name, amount), written in chunks."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:
        out.write("id,name,amount\n")
        chunk = 100_000
        for start in range(0, rows, chunk):
            out.write(
                "".join(
                    f"{i},customer-{i % 1000},{i % 997}.25\n"
                    for i in range(start, min(rows, start + chunk))
                )
            )


async def measure(
    runs: int, rows: int, files: int, progress: Callable[[str], None]
) -> tuple[list[str], list[str]]:
    """Every glueetl figure; returns the report's lines and its target lines."""
    lines: list[str] = []
    targets: list[str] = []
    with tempfile.TemporaryDirectory(prefix="glue-bench-spark-") as tmp:
        work = Path(tmp)
        s3 = work / "s3"
        trivial = _write(s3 / "bench/scripts/trivial.py", TRIVIAL)

        progress("glueetl: the class-data archive warm-up")
        warm_up = await _warm_up(work)
        lines.append(
            f"class-data archive warm-up: {warm_up:.1f} s (once per Spark/JDK install; "
            f"load {os.getloadavg()[0]:.1f})"
        )

        progress(f"glueetl: a trivial script, bare and through StartJobRun, {runs} times each")
        served, bare = await _through_services(work, runs, trivial)
        bare_p50, served_p50 = statistics.median(bare), statistics.median(served)
        lines.append(
            f"trivial glueetl script: bare spark-submit p50 {bare_p50:.2f} s; "
            f"StartJobRun -> SUCCEEDED p50 {served_p50:.2f} s (+{served_p50 - bare_p50:.2f} s)"
        )
        allowed = max(0.1 * bare_p50, 1.0)
        met = served_p50 - bare_p50 <= allowed
        targets.append(
            f"glueetl StartJobRun->SUCCEEDED <= bare spark-submit + max(10%, 1 s): "
            f"+{served_p50 - bare_p50:.2f} s vs {allowed:.2f} s allowed   "
            f"{'MET' if met else 'NOT MET'}"
        )

        progress(f"glueetl: writing a {rows:,}-row CSV")
        await asyncio.to_thread(_make_rows, s3 / "bench/rows/rows.csv", rows)
        dyf_script = _write(work / "dynamicframe.py", DYNAMIC_FRAME_JOB)
        df_script = _write(work / "dataframe.py", DATA_FRAME_JOB)
        # Twice each, in the order DataFrame, DynamicFrame, DynamicFrame, DataFrame, so that a
        # load that rises or falls during the section weighs on both alike; the faster of each
        # pair of runs is compared (the one the shared machine disturbed least).
        bodies: dict[str, list[float]] = {"df": [], "dyf": []}
        cpu: dict[str, list[float]] = {"df": [], "dyf": []}
        for turn, kind in enumerate(("df", "dyf", "dyf", "df")):
            progress(
                "glueetl: CSV -> Parquet with "
                + ("DataFrames" if kind == "df" else "DynamicFrame and ApplyMapping")
            )
            run_id = f"jr_{kind}_{turn}"
            await _spark_submit(df_script if kind == "df" else dyf_script, work, run_id)
            bodies[kind].append(_body_seconds(work, run_id))
            cpu[kind].append(_CPU_SECONDS[run_id])
        df_rate, dyf_rate = rows / min(bodies["df"]), rows / min(bodies["dyf"])
        lines.append(
            f"CSV -> Parquet, {rows:,} rows: DataFrame {df_rate:,.0f} rows/s; "
            f"DynamicFrame + ApplyMapping {dyf_rate:,.0f} rows/s ({dyf_rate / df_rate:.0%})"
        )
        lines.append(
            "  job bodies, s: DataFrame "
            + ", ".join(f"{b:.1f}" for b in bodies["df"])
            + "; DynamicFrame "
            + ", ".join(f"{b:.1f}" for b in bodies["dyf"])
            + "; CPU of each whole spark-submit (JVM start included), s: DataFrame "
            + ", ".join(f"{c:.1f}" for c in cpu["df"])
            + "; DynamicFrame "
            + ", ".join(f"{c:.1f}" for c in cpu["dyf"])
            + f"; load {os.getloadavg()[0]:.1f}"
        )
        targets.append(
            f"DynamicFrame job >= 90% of the DataFrame job's rows/s: {dyf_rate / df_rate:.0%}   "
            f"{'MET' if dyf_rate >= 0.9 * df_rate else 'NOT MET'}"
        )

        progress(f"glueetl: bookmarks over {files} files, then one more")
        for i in range(files):
            _write(s3 / f"bench/files/part-{i:04d}.csv", f"id,value\n{i},{i * 2}\n")
        book_script = _write(work / "bookmarked.py", BOOKMARKED_JOB)
        state = work / "bookmark.json"
        bookmark = {"--job-bookmark-option": "job-bookmark-enable"}
        first_wall = await _spark_submit_with_state(book_script, work, "jr_b1", state, bookmark)
        _write(s3 / f"bench/files/part-{files:04d}.csv", f"id,value\n{files},{files * 2}\n")
        second_wall = await _spark_submit_with_state(book_script, work, "jr_b2", state, bookmark)
        first, second = _body_seconds(work, "jr_b1"), _body_seconds(work, "jr_b2")
        floor_script = _write(work / "first_write.py", FIRST_WRITE_JOB)
        await _spark_submit(floor_script, work, "jr_first_write")
        floor = _body_seconds(work, "jr_first_write")
        lines.append(
            f"bookmarks: first run over {files} files {first:.2f} s "
            f"(whole run {first_wall:.1f} s); after 1 more file, the second {second:.2f} s "
            f"(whole run {second_wall:.1f} s), "
            f"{second / first:.0%} of the first; CPU of each whole spark-submit "
            f"{_CPU_SECONDS['jr_b1']:.1f} s, {_CPU_SECONDS['jr_b2']:.1f} s"
        )
        for run_id, which in (("jr_b1", "first"), ("jr_b2", "second")):
            init, read, write, commit = _printed(work, run_id, "phases")[:4]
            lines.append(
                f"  {which} run's body: job.init {init:.2f} s, list + read {read:.2f} s, "
                f"write {write:.2f} s, commit {commit:.2f} s"
            )
        lines.append(
            f"  floor: a fresh JVM's first Spark job writing one row to Parquet {floor:.2f} s "
            f"= {floor / first:.0%} of the first run's body"
        )
        targets.append(
            f"second bookmarked run < 25% of the first (job body): {second / first:.0%}   "
            f"{'MET' if second < 0.25 * first else 'NOT MET'}"
        )
    return lines, targets


async def _spark_submit_with_state(
    script: Path, work: Path, run_id: str, state: Path, arguments: dict[str, str]
) -> float:
    """A bookmarked run: the previous run's committed state in, this run's out (as the
    scheduler hands them over)."""
    run_dir = work / "bare" / run_id
    await asyncio.to_thread(_copy_if_exists, state, run_dir / "bookmark-in.json")
    elapsed = await _spark_submit(script, work, run_id, **arguments)
    await asyncio.to_thread(_copy_if_exists, run_dir / "bookmark.json", state)
    return elapsed


def _copy_if_exists(source: Path, target: Path) -> None:
    """Copy a bookmark state file (checked to be JSON) if there is one."""
    if source.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(json.loads(source.read_text())))
