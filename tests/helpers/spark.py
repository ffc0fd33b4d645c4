"""The one local Spark session of the test suite: local[2], loopback only, no UI.

``runtime/`` (where the scheduler puts ``awsglue`` for job runs) goes on this process's
sys.path and on the Python workers' PYTHONPATH, so that UDFs defined in awsglue import there.
Session-scoped (tests/conftest.py): the awsglue library tests and the tests that read what
glueetl runs wrote share one JVM.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

RUNTIME = Path(__file__).resolve().parents[2] / "runtime"
POSTGRES_JAR = Path("/usr/share/java/postgresql.jar")


def start_session() -> Any:
    """Start (or join) the local SparkSession."""
    if str(RUNTIME) not in sys.path:
        sys.path.insert(0, str(RUNTIME))
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.master("local[2]")
        .appName("awsglue-tests")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.pyspark.python", sys.executable)
        .config("spark.pyspark.driver.python", sys.executable)
        # Python workers get this on their PYTHONPATH: awsglue's UDF helpers import there.
        .config("spark.executorEnv.PYTHONPATH", str(RUNTIME))
    )
    if POSTGRES_JAR.exists():
        builder = builder.config("spark.jars", str(POSTGRES_JAR))
    # The JVM reads SPARK_LOCAL_IP when it starts; set it only for that moment so other
    # tests in this process see an unchanged environment.
    saved = os.environ.get("SPARK_LOCAL_IP")
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    try:
        session = builder.getOrCreate()
    finally:
        if saved is None:
            os.environ.pop("SPARK_LOCAL_IP", None)
        else:
            os.environ["SPARK_LOCAL_IP"] = saved
    session.sparkContext.setLogLevel("ERROR")
    return session
