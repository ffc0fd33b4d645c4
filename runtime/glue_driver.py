"""Runs a Glue ETL script as Spark's Python driver, and records the exception that ends it.

``spark-submit ... glue_driver.py <script> --JOB_NAME ...`` (the scheduler builds this command,
``scheduler_service/commands.py``): the script runs as ``__main__`` with ``sys.argv`` as if it
had been submitted itself, as on AWS. If it raises, ``<type>: <message>`` goes to the file named
by ``AWSGLUE_SCRIPT_ERROR``, so the run's ErrorMessage names the script's exception, as AWS's
does, rather than the tail of Spark's shutdown log; the traceback still goes to stderr.
"""

from __future__ import annotations

import json
import os
import runpy
import sys

MESSAGE_MAX_CHARS = 2048
# The Spark line of each Glue version (AWS Glue release notes).
GLUE_SPARK = {"0.9": "2.2", "1.0": "2.4", "2.0": "2.4", "3.0": "3.1", "4.0": "3.3", "5.0": "3.5"}
GLUE_SPARK["5.1"] = "3.5"
# Glue 6.0 (the model's default GlueVersion) is Spark 4.1.1 on AWS (AWS Glue release notes).
GLUE_SPARK["6.0"] = "4.1"


def version_notice(glue_version: str, spark_version: str) -> str | None:
    """A line for the run's log when the job's GlueVersion is not the installed Spark's."""
    wanted = GLUE_SPARK.get(glue_version)
    installed = ".".join(spark_version.split(".")[:2])
    # "auto" lets the service pick its runtime: the installed Spark is that pick here.
    if not glue_version or glue_version == "auto" or wanted == installed:
        return None
    on_aws = f"Spark {wanted} on AWS" if wanted else "not a Glue version this scheduler knows"
    return (
        f"GlueVersion {glue_version} is {on_aws}; this run uses the installed Spark {spark_version}"
    )


def describe(exc: BaseException) -> str:
    """``<type>: <first lines of the message>``, as a run's ErrorMessage."""
    text = str(exc).strip()
    described = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return described[:MESSAGE_MAX_CHARS]


def record(exc: BaseException) -> None:
    """Write the exception's description where the scheduler looks for it."""
    path = os.environ.get("AWSGLUE_SCRIPT_ERROR")
    if not path:
        return
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as out:
        json.dump({"type": type(exc).__name__, "message": describe(exc)}, out)
    os.replace(tmp, path)


def main() -> None:
    """Run the script named by the first argument, with the rest as its arguments."""
    if len(sys.argv) < 2:
        sys.exit("usage: glue_driver.py SCRIPT [ARGS...]")
    script = sys.argv[1]
    sys.argv = sys.argv[1:]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    try:
        import pyspark

        notice = version_notice(os.environ.get("AWSGLUE_GLUE_VERSION", ""), pyspark.__version__)
    except ImportError:
        notice = None
    if notice:
        sys.stderr.write(notice + "\n")
        sys.stderr.flush()
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit:
        raise
    except BaseException as exc:
        record(exc)
        raise


if __name__ == "__main__":
    main()
