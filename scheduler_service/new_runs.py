"""A new run's record: what a StartJobRun request or a trigger's action makes of a job.

Built in memory only (the store inserts it): the job's definition and the request, merged as
Glue merges them (``merge_arguments``: DefaultArguments, then the run's, then
NonOverridableArguments), fixed at admission, so a later UpdateJob does not change a run
already admitted. A retry's id is ``retry_run_id``'s. ``NewRuns`` is a base of
``runs.RunStore``.
"""

from __future__ import annotations

import time

from glue_vocabulary import log_groups
from glue_vocabulary.run_states import JobRunState
from glue_vocabulary.shapes import GlueDict
from scheduler_service import registry
from scheduler_service.run_record import RunRecord

DEFAULT_TIMEOUT_MINUTES = 2880

# Run members copied from the job unless the StartJobRun request sets them.
_FROM_JOB_OR_REQUEST = (
    "AllocatedCapacity",
    "MaxCapacity",
    "WorkerType",
    "NumberOfWorkers",
    "SecurityConfiguration",
    "NotificationProperty",
    "ExecutionClass",
    "JobRunQueuingEnabled",
)
_FROM_JOB = ("JobMode", "GlueVersion", "MaintenanceWindow", "ProfileName")
_FROM_REQUEST = ("ExecutionRoleSessionPolicy",)


def merge_arguments(job: GlueDict, overrides: dict[str, str]) -> dict[str, str]:
    """Glue's precedence: DefaultArguments, then the run's, then NonOverridableArguments."""
    return {
        **job.get("DefaultArguments", {}),
        **overrides,
        **job.get("NonOverridableArguments", {}),
    }


def retry_run_id(run_id: str, attempt: int) -> str:
    """Glue's form for automatic retries: ``<first run id>_attempt_<n>``."""
    return f"{run_id.split('_attempt_', 1)[0]}_attempt_{attempt}"


class NewRuns:
    """Builds new runs' records (part of ``runs.RunStore``)."""

    def new_run(
        self,
        *,
        run_id: str,
        job: registry.RegisteredJob,
        request: GlueDict,
        state: JobRunState,
    ) -> RunRecord:
        """A new run of ``job`` as a StartJobRun-shaped ``request`` describes it (not stored)."""
        return self._new_run(run_id=run_id, job=job, request=request, attempt=0, state=state)

    def _new_run(
        self,
        *,
        run_id: str,
        job: registry.RegisteredJob,
        request: GlueDict,
        attempt: int,
        state: JobRunState,
    ) -> RunRecord:
        definition = job.definition
        now = time.time()
        timeout = int(
            request.get("Timeout") or definition.get("Timeout") or DEFAULT_TIMEOUT_MINUTES
        )
        record: GlueDict = {
            "Id": run_id,
            "JobName": job.name,
            "Arguments": merge_arguments(definition, request.get("Arguments", {})),
            "Timeout": timeout,
            # Glue's group prefix for the job type, as AWS answers it; the log itself is
            # output.log in the run's directory (log_path).
            "LogGroupName": log_groups.group_prefix(definition.get("Command", {}).get("Name")),
            # What the process runs, fixed at admission: a later UpdateJob does not change a
            # run already admitted. Private members (leading "_") never leave the scheduler.
            "_Command": definition.get("Command", {}),
        }
        if request.get("JobRunId"):
            record["PreviousRunId"] = request["JobRunId"]
        for key in ("TriggerName", "PredecessorRuns"):
            if request.get(key):
                record[key] = request[key]
        for key in _FROM_JOB_OR_REQUEST:
            value = request.get(key, definition.get(key))
            if value is not None:
                record[key] = value
        for key in _FROM_JOB:
            if definition.get(key) is not None:
                record[key] = definition[key]
        for key in _FROM_REQUEST:
            if request.get(key) is not None:
                record[key] = request[key]
        return RunRecord(
            run_id=run_id,
            job_name=job.name,
            job_incarnation=job.incarnation,
            state=state,
            attempt=attempt,
            max_retries=int(definition.get("MaxRetries") or 0),
            timeout_minutes=timeout,
            created_at=now,
            updated_at=now,
            completed_at=None,
            deadline=None,
            error_message=None,
            execution_time=None,
            record=record,
        )
