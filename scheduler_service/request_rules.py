"""The scheduler's own check of every internal API request, before anything is stored.

The catalog validated the public request already; this checks again what the scheduler
relies on (see ``servicekit.internal_rules``), so that nothing else that reaches this API - a
caller other than the catalog, a catalog bug - can store a row that later stops start-up or
the event stream. Each check raises InvalidInputException naming the request's field.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.protobuf.message import Message

from glue.scheduler.v1 import scheduler_pb2
from glue.v1 import glue_pb2
from servicekit.errors import InvalidInputException
from servicekit.internal_rules import (
    check_arguments,
    check_name,
    check_new_run_id,
    check_run_id,
    check_script_location,
    check_token,
    check_version,
)

MAX_LIST_RESULTS = 1000
# StartRuns: runs per call at most (the catalog sends far fewer: servicekit.batches.MAX_BATCH).
MAX_STARTS_PER_CALL = 1000


def _job(job: glue_pb2.Job, field: str) -> None:
    check_name(job.name, f"{field}.name")
    check_script_location(job.command.script_location, f"{field}.command.script_location")
    check_arguments(job.default_arguments, f"{field}.default_arguments")
    check_arguments(job.non_overridable_arguments, f"{field}.non_overridable_arguments")


def _job_registration(registration: scheduler_pb2.JobRegistration, field: str) -> None:
    _job(registration.job, f"{field}.job")
    check_version(registration.version, f"{field}.version")
    if registration.incarnation:
        check_token(registration.incarnation, f"{field}.incarnation")


def _trigger_registration(registration: scheduler_pb2.TriggerRegistration, field: str) -> None:
    trigger = registration.trigger
    check_name(trigger.name, f"{field}.trigger.name")
    check_version(registration.version, f"{field}.version")
    for i, action in enumerate(trigger.actions):
        where = f"{field}.trigger.actions[{i}]"
        if action.job_name:
            check_name(action.job_name, f"{where}.job_name")
        check_arguments(action.arguments, f"{where}.arguments")
    for i, condition in enumerate(trigger.predicate.conditions):
        if condition.job_name:
            check_name(condition.job_name, f"{field}.trigger.predicate.conditions[{i}].job_name")


def _add_job(request: scheduler_pb2.AddJobRequest) -> None:
    _job_registration(request.registration, "registration")


def _delete_job(request: scheduler_pb2.DeleteJobRequest) -> None:
    check_name(request.job_name, "job_name")
    check_version(request.version, "version")


def _add_trigger(request: scheduler_pb2.AddTriggerRequest) -> None:
    _trigger_registration(request.registration, "registration")


def _unschedule(request: scheduler_pb2.UnscheduleRequest) -> None:
    check_name(request.trigger_name, "trigger_name")
    check_version(request.version, "version")


def _fire_trigger(request: scheduler_pb2.FireTriggerRequest) -> None:
    if request.registration.version:
        _trigger_registration(request.registration, "registration")
    else:
        check_name(request.registration.trigger.name, "registration.trigger.name")
    check_token(request.fire_id, "fire_id")


def _list_trigger_fires(request: scheduler_pb2.ListTriggerFiresRequest) -> None:
    check_name(request.trigger_name, "trigger_name")
    _max_results(request.max_results)


def _start_runs(request: scheduler_pb2.StartRunsRequest) -> None:
    # Each run is checked on its own (a bad one is refused alone); only the count here.
    if len(request.runs) > MAX_STARTS_PER_CALL:
        raise InvalidInputException(
            f"runs holds {len(request.runs)} runs; at most {MAX_STARTS_PER_CALL}", field="runs"
        )


def _start_run(request: scheduler_pb2.StartRunRequest) -> None:
    check_new_run_id(request.run_id, "run_id")
    if request.registration.version:
        _job_registration(request.registration, "registration")
        if request.registration.job.name != request.request.job_name:
            raise InvalidInputException(
                "registration.job.name must be request.job_name", field="registration.job.name"
            )
    check_name(request.request.job_name, "request.job_name")
    if request.request.job_run_id:
        check_run_id(request.request.job_run_id, "request.job_run_id")
    check_arguments(request.request.arguments, "request.arguments")


def _stop_run(request: scheduler_pb2.StopRunRequest) -> None:
    check_name(request.job_name, "job_name")
    check_run_id(request.run_id, "run_id")


def _sequence(request: Any) -> None:
    field = "after_sequence" if hasattr(request, "after_sequence") else "sequence"
    if getattr(request, field) < 0:
        raise InvalidInputException(f"{field} must not be negative", field=field)


def _read_run_log(request: scheduler_pb2.ReadRunLogRequest) -> None:
    check_run_id(request.run_id, "run_id")
    if request.offset < 0:
        raise InvalidInputException("offset must not be negative", field="offset")
    if request.stream not in ("", "stdout", "stderr"):
        raise InvalidInputException("stream must be stdout or stderr", field="stream")
    if request.limit < 0:
        raise InvalidInputException("limit must not be negative", field="limit")


def _bookmark(request: Any) -> None:
    check_name(request.job_name, "job_name")
    check_token(request.incarnation, "incarnation")
    if request.HasField("run_id"):
        check_run_id(request.run_id, "run_id")


def _max_results(value: int) -> None:
    if not 0 <= value <= MAX_LIST_RESULTS:
        raise InvalidInputException(
            f"max_results must be between 1 and {MAX_LIST_RESULTS} (0: the default)",
            field="max_results",
        )


_CHECKS: dict[type[Message], Callable[[Any], None]] = {
    scheduler_pb2.AddJobRequest: _add_job,
    scheduler_pb2.DeleteJobRequest: _delete_job,
    scheduler_pb2.AddTriggerRequest: _add_trigger,
    scheduler_pb2.UnscheduleRequest: _unschedule,
    scheduler_pb2.FireTriggerRequest: _fire_trigger,
    scheduler_pb2.ListTriggerFiresRequest: _list_trigger_fires,
    scheduler_pb2.ListRegistrationsRequest: lambda _request: None,
    scheduler_pb2.StartRunRequest: _start_run,
    scheduler_pb2.StartRunsRequest: _start_runs,
    scheduler_pb2.StopRunRequest: _stop_run,
    scheduler_pb2.WatchRunEventsRequest: _sequence,
    scheduler_pb2.AcknowledgeRunEventsRequest: _sequence,
    scheduler_pb2.ReadRunLogRequest: _read_run_log,
    scheduler_pb2.GetJobBookmarkRequest: _bookmark,
    scheduler_pb2.ResetJobBookmarkRequest: _bookmark,
}


def check_request(request: Message) -> None:
    """Check one internal API request by its type.

    Raises:
        InvalidInputException: the first rule it breaks, naming the field.
    """
    _CHECKS[type(request)](request)
