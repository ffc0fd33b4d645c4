"""Glue's CloudWatch log groups: the names both services give a run's output.

The scheduler stamps a run's ``LogGroupName`` with its job type's group prefix, as AWS's
GetJobRun answers it; the catalog's CloudWatch Logs operations serve ``<prefix>/output``
(the run's stdout) and ``<prefix>/error`` (its stderr), one stream per run named by its id.

- Spark jobs (``glueetl``, ``gluestreaming`` ...): ``/aws-glue/jobs``, groups
  ``/aws-glue/jobs/output`` and ``/aws-glue/jobs/error``
  (https://docs.aws.amazon.com/glue/latest/dg/monitor-continuous-logging.html).
- Python shell jobs (``pythonshell``): ``/aws-glue/python-jobs``, groups
  ``/aws-glue/python-jobs/output`` and ``/aws-glue/python-jobs/error``. AWS's guide does not
  list these on a page of their own; they are what GetJobRun returns as LogGroupName for a
  Python shell run and where such runs write (Airflow's GlueJobHook reads
  ``<LogGroupName>/output`` and ``<LogGroupName>/error`` for every job type).
"""

from __future__ import annotations

SPARK_GROUP_PREFIX = "/aws-glue/jobs"
PYTHON_SHELL_GROUP_PREFIX = "/aws-glue/python-jobs"
GROUP_PREFIXES = (SPARK_GROUP_PREFIX, PYTHON_SHELL_GROUP_PREFIX)

STDOUT = "stdout"
STDERR = "stderr"
# The group suffix of each stream of a run's output.
SUFFIXES = {STDOUT: "output", STDERR: "error"}


def group_prefix(command_name: object) -> str:
    """The LogGroupName of a run of a job whose Command.Name is ``command_name``."""
    return PYTHON_SHELL_GROUP_PREFIX if command_name == "pythonshell" else SPARK_GROUP_PREFIX


def log_groups() -> dict[str, tuple[str, str]]:
    """Every group this service has, by name: (group prefix, stream of the run's output)."""
    return {
        f"{prefix}/{suffix}": (prefix, stream)
        for prefix in GROUP_PREFIXES
        for stream, suffix in SUFFIXES.items()
    }
