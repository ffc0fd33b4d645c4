"""A run's command line and environment: pythonshell and glueetl (spark-submit)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from scheduler_service.commands import (
    BOOKMARK_IN,
    BOOKMARK_OUT,
    DRIVER,
    RUNTIME_DIR,
    CommandSettings,
    capacity,
    plan_launch,
    spark_submit,
)
from scheduler_service.runner import LaunchError
from scheduler_service.script_files import local_file
from scheduler_service.spark_cluster import ExecutorsDoNotFit, check_fits


def record(script: Path | str, name: str = "glueetl", **members: object) -> dict[str, object]:
    return {
        "JobName": "etl",
        "_Command": {"Name": name, "ScriptLocation": str(script)},
        **members,
    }


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "job.py"
    path.write_text("print('hi')\n")
    return path


def conf_of(argv: list[str]) -> dict[str, str]:
    pairs = [argv[i + 1] for i, a in enumerate(argv) if a == "--conf"]
    return dict(pair.split("=", 1) for pair in pairs)


def test_pythonshell_runs_the_script_with_glue_arguments_and_awsglue_on_the_path(
    script: Path, tmp_path: Path
) -> None:
    plan = plan_launch(
        record(script, "pythonshell"),
        "etl",
        "jr_1",
        {"--day": "1", "flag": "x"},
        tmp_path,
        CommandSettings(python=sys.executable),
    )
    assert plan.argv == [
        sys.executable,
        str(script),
        "--JOB_NAME",
        "etl",
        "--JOB_RUN_ID",
        "jr_1",
        "--day",
        "1",
        "--flag",
        "x",
    ]
    assert plan.env["AWSGLUE_JOB_TYPE"] == "pythonshell"
    assert plan.env["PYTHONPATH"].split(":")[0] == str(RUNTIME_DIR)
    assert plan.env["AWSGLUE_BOOKMARK_IN"] == str(tmp_path / BOOKMARK_IN)
    assert plan.env["AWSGLUE_BOOKMARK_OUT"] == str(tmp_path / BOOKMARK_OUT)
    assert "AWSGLUE_S3_ROOT" not in plan.env


def test_glueetl_goes_through_spark_submit_and_the_driver_wrapper(
    script: Path, tmp_path: Path
) -> None:
    plan = plan_launch(
        record(script, WorkerType="G.1X", NumberOfWorkers=3, GlueVersion="4.0"),
        "etl",
        "jr_1",
        {"--conf": "spark.sql.shuffle.partitions=7 --conf spark.custom=1"},
        tmp_path,
        CommandSettings(python=sys.executable, s3_root=tmp_path),
    )
    assert plan.argv[0] == str(spark_submit())
    driver = plan.argv.index(str(DRIVER))
    user_conf = "spark.sql.shuffle.partitions=7 --conf spark.custom=1"
    glue_args = ["--JOB_NAME", "etl", "--JOB_RUN_ID", "jr_1", "--conf", user_conf]
    assert plan.argv[driver + 1 :] == [str(script), *glue_args]
    options = plan.argv[1:driver]
    assert options[options.index("--master") + 1] == f"local[{min(8, os.cpu_count() or 1)}]"
    conf = conf_of(options)
    # The user's --conf wins over the derived value; loopback only in local mode.
    assert conf["spark.sql.shuffle.partitions"] == "7" and conf["spark.custom"] == "1"
    assert conf["spark.driver.host"] == conf["spark.driver.bindAddress"] == "127.0.0.1"
    assert plan.env["SPARK_LOCAL_IP"] == "127.0.0.1"
    assert plan.env["AWSGLUE_JOB_TYPE"] == "glueetl"
    assert plan.env["AWSGLUE_GLUE_VERSION"] == "4.0"
    assert plan.env["AWSGLUE_S3_ROOT"] == str(tmp_path)
    assert plan.env["PYSPARK_PYTHON"] == sys.executable


def test_on_a_cluster_the_workers_become_executors(script: Path, tmp_path: Path) -> None:
    plan = plan_launch(
        record(script, WorkerType="G.2X", NumberOfWorkers=5),
        "etl",
        "jr_1",
        {"--conf": "spark.executor.memory=3g"},
        tmp_path,
        CommandSettings(python=sys.executable, spark_master="spark://10.0.0.5:7077"),
    )
    options = plan.argv[1 : plan.argv.index(str(DRIVER))]
    assert options[options.index("--master") + 1] == "spark://10.0.0.5:7077"
    conf = conf_of(options)
    assert conf["spark.executor.instances"] == "4"
    assert conf["spark.executor.cores"] == "8"
    assert conf["spark.cores.max"] == "32"
    assert conf["spark.executor.memory"] == "3g"  # the user's wins over 20g
    assert "SPARK_LOCAL_IP" not in plan.env and "spark.driver.host" not in conf


@pytest.mark.parametrize(
    ("members", "expected"),
    [
        ({}, ("G.1X", 10, 4, "10g")),
        ({"WorkerType": "G.025X", "NumberOfWorkers": 2}, ("G.025X", 2, 2, "2g")),
        ({"WorkerType": "G.8X", "NumberOfWorkers": 2}, ("G.8X", 2, 32, "80g")),
        ({"MaxCapacity": 4.0}, ("Standard", 4, 4, "10g")),
    ],
)
def test_capacity_follows_aws_worker_types(
    members: dict[str, object], expected: tuple[str, int, int, str]
) -> None:
    size = capacity(members)
    assert (size.worker_type, size.workers, size.cores, size.executor_memory) == expected


def test_s3_paths_map_under_the_s3_root(tmp_path: Path) -> None:
    target = tmp_path / "bucket" / "scripts" / "job.py"
    target.parent.mkdir(parents=True)
    target.write_text("")
    assert local_file("s3://bucket/scripts/job.py", "ScriptLocation", tmp_path) == target
    with pytest.raises(LaunchError, match="no --s3-root"):
        local_file("s3://bucket/scripts/job.py", "ScriptLocation", None)
    with pytest.raises(LaunchError, match="does not name an object"):
        local_file("s3://bucket/../../etc/passwd", "ScriptLocation", tmp_path)
    with pytest.raises(LaunchError, match="no such file"):
        local_file("s3://bucket/missing.py", "ScriptLocation", tmp_path)


def test_extra_files_and_spark_ui(script: Path, tmp_path: Path) -> None:
    lib = tmp_path / "bucket" / "lib.py"
    lib.parent.mkdir()
    lib.write_text("")
    jar = tmp_path / "driver.jar"
    jar.write_text("")
    plan = plan_launch(
        record(script),
        "etl",
        "jr_1",
        {
            "--extra-py-files": "s3://bucket/lib.py",
            "--extra-jars": str(jar),
            "--enable-spark-ui": "true",
        },
        tmp_path / "run",
        CommandSettings(python=sys.executable, s3_root=tmp_path),
    )
    assert plan.argv[plan.argv.index("--py-files") + 1] == str(lib)
    assert plan.argv[plan.argv.index("--jars") + 1] == str(jar)
    conf = conf_of(plan.argv)
    assert conf["spark.eventLog.enabled"] == "true"
    assert (tmp_path / "run" / "spark-events").is_dir()
    with pytest.raises(LaunchError, match="--extra-py-files"):
        plan_launch(
            record(script),
            "etl",
            "jr_1",
            {"--extra-py-files": "/nope.py"},
            tmp_path,
            CommandSettings(python=sys.executable),
        )
    with pytest.raises(LaunchError, match="not KEY=VALUE"):
        plan_launch(
            record(script),
            "etl",
            "jr_1",
            {"--conf": "spark.x"},
            tmp_path,
            CommandSettings(python=sys.executable),
        )


def test_executors_fit_a_worker_only_when_one_is_big_enough_and_alive() -> None:
    size = capacity({"WorkerType": "G.2X", "NumberOfWorkers": 3})  # 8 cores, 20g executors
    workers = [
        {"state": "ALIVE", "cores": 4, "memory": 65536},
        {"state": "DEAD", "cores": 16, "memory": 65536},
    ]
    with pytest.raises(ExecutorsDoNotFit, match=r"G\.2X: 8 cores and 20480 MB each; its largest"):
        check_fits({"workers": workers}, size, "spark://m:7077")
    check_fits({"workers": [*workers, {"state": "ALIVE", "cores": 8, "memory": 20480}]}, size, "x")
    with pytest.raises(ExecutorsDoNotFit, match="the cluster has no live worker"):
        check_fits({"workers": []}, size, "spark://m:7077")
