"""The members AWS Glue fills in when a job or run leaves them out (docs/glue-fidelity.md).

Jobs take them when stored (CreateJob, UpdateJob), so GetJob(s)/BatchGetJobs read them for
free, and a run copies them from its job's registration when it is admitted. A run's own
defaults (ExecutionTime before it ends, an empty PredecessorRuns) cost one field test when read:
``RUN_EMPTY_LISTS`` is for the HTTP gateway, as protobuf cannot tell an empty list from none.
"""

from __future__ import annotations

from typing import Final

from glue_vocabulary.shapes import GlueDict

PYTHONSHELL = "pythonshell"

DEFAULT_TIMEOUT: Final = 2880
"""Minutes, Glue 4.0 and earlier (the model's Job.Timeout documentation)."""
DEFAULT_TIMEOUT_GLUE_5: Final = 480
"""Minutes, Glue 5.0 and later (the same documentation)."""

DEFAULT_GLUE_VERSION: Final = "6.0"
"""Spark jobs created without a GlueVersion (botocore 1.44.18's Job.GlueVersion doc)."""
DEFAULT_PYTHONSHELL_GLUE_VERSION: Final = "1.0"
"""Python shell jobs created without one (inferred: AWS's Python shell versions are 1.0 and
3.0, and 1.0 is the one that predates the member; not confirmed by an AWS text)."""
DEFAULT_PYTHON_VERSION: Final = "3"
"""Command.PythonVersion when left out: Spark jobs from Glue 2.0 run Python 3 only."""

PYTHONSHELL_MAX_CAPACITY: Final = 0.0625
"""DPUs of a Python shell job (the model's Job.MaxCapacity documentation)."""
SPARK_MAX_CAPACITY: Final = 10.0
"""DPUs of a Spark job sized neither by workers nor by MaxCapacity (the same doc)."""

# DPUs per worker (the model's Job.WorkerType documentation; Standard is one DPU).
DPU_PER_WORKER: Final = {
    "Standard": 1.0,
    "G.025X": 0.25,
    "G.1X": 1.0,
    "G.2X": 2.0,
    "G.4X": 4.0,
    "G.8X": 8.0,
    "G.12X": 12.0,
    "G.16X": 16.0,
    "Z.2X": 2.0,
    "R.1X": 1.0,
    "R.2X": 2.0,
    "R.4X": 4.0,
    "R.8X": 8.0,
}

RUN_EMPTY_LISTS: Final = ("PredecessorRuns",)
"""JobRun list members AWS sends empty rather than leaving out."""


def default_timeout(glue_version: object) -> int:
    """Glue's default Timeout for a Glue version: 2880 minutes, 480 from Glue 5.0 on."""
    version = str(glue_version or "")
    if version == "auto":
        # "auto" follows the newest version, which is past 5.0.
        return DEFAULT_TIMEOUT_GLUE_5
    try:
        major = int(version.split(".", 1)[0])
    except ValueError:
        major = 0
    return DEFAULT_TIMEOUT_GLUE_5 if major >= 5 else DEFAULT_TIMEOUT


def _capacity(definition: GlueDict) -> tuple[int, float]:
    """(AllocatedCapacity, MaxCapacity) as AWS derives them from the job's sizing."""
    workers = definition.get("NumberOfWorkers")
    worker_type = definition.get("WorkerType")
    # A Graviton worker counts as its x86 namesake (G.1X.GRAVITON is a G.1X).
    base_type = str(worker_type).removesuffix(".GRAVITON")
    if workers and base_type in DPU_PER_WORKER:
        # boto3 issue #2644 (the Glue team): setting NumberOfWorkers sets MaxCapacity.
        dpus = float(workers) * DPU_PER_WORKER[base_type]
    elif definition.get("MaxCapacity") is not None:
        dpus = float(definition["MaxCapacity"])
    elif definition.get("AllocatedCapacity") is not None:
        dpus = float(definition["AllocatedCapacity"])
    elif definition.get("Command", {}).get("Name") == PYTHONSHELL:
        dpus = PYTHONSHELL_MAX_CAPACITY
    else:
        dpus = SPARK_MAX_CAPACITY
    allocated = definition.get("AllocatedCapacity")
    return (int(allocated) if allocated is not None else int(dpus)), dpus


def job_defaults(definition: GlueDict) -> GlueDict:
    """The job as GetJob returns it: every member AWS fills in, filled in the same way.

    Args:
        definition: The job in Glue form as CreateJob/UpdateJob gave it.

    Returns:
        A new dict; members already given keep their values.
    """
    result = dict(definition)
    pythonshell = result.get("Command", {}).get("Name") == PYTHONSHELL
    result.setdefault(
        "GlueVersion", DEFAULT_PYTHONSHELL_GLUE_VERSION if pythonshell else DEFAULT_GLUE_VERSION
    )
    result.setdefault("Timeout", default_timeout(result["GlueVersion"]))
    result.setdefault("MaxRetries", 0)
    execution = dict(result.get("ExecutionProperty", {}))
    execution.setdefault("MaxConcurrentRuns", 1)
    result["ExecutionProperty"] = execution
    result.setdefault("JobMode", "SCRIPT")
    result.setdefault("ExecutionClass", "STANDARD")
    if "Command" in result:
        command = dict(result["Command"])
        command.setdefault("PythonVersion", DEFAULT_PYTHON_VERSION)
        result["Command"] = command
    allocated, dpus = _capacity(result)
    result.setdefault("AllocatedCapacity", allocated)
    result.setdefault("MaxCapacity", dpus)
    return result
