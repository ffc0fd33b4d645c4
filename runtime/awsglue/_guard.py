"""The pythonshell guard: Spark-only modules refuse to import in a pythonshell run.

The scheduler sets ``AWSGLUE_JOB_TYPE=pythonshell`` for pythonshell runs, which have no Spark.
Failing at import with a message naming the fix beats a bare ``No module named 'pyspark'``.
"""

from __future__ import annotations

import os

__all__ = ["JOB_TYPE_ENV", "require_spark"]

JOB_TYPE_ENV = "AWSGLUE_JOB_TYPE"


def require_spark(module: str) -> None:
    """Raise ImportError when this process runs a pythonshell job.

    Args:
        module: the dotted name of the module being imported (``awsglue.context`` ...).

    Raises:
        ImportError: ``AWSGLUE_JOB_TYPE`` is ``pythonshell``.
    """
    if os.environ.get(JOB_TYPE_ENV, "").strip().lower() == "pythonshell":
        raise ImportError(
            f"pythonshell jobs have no Spark: {module} needs Spark; "
            'run this script as a glueetl job (Command.Name "glueetl")',
            name=module,
        )
