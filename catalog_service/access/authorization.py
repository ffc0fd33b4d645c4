"""Authorization: each operation checked against the caller's IAM policy, on both front doors.

The action is ``glue:<Operation>`` for every operation, ours included (``glue:GetJobRunLog``,
``glue:FireTrigger``, ``glue:GetTriggerFires``), so ``glue:Get*`` and ``glue:*`` cover them as
a Glue user would expect. The resource is the job's or the trigger's ARN,
``arn:aws:glue:<REGION>:<ACCOUNT>:job/<name>`` (or ``trigger/<name>``), as IAM's "Actions,
resources, and condition keys for AWS Glue" page names them; a tag operation is checked on the
resource its ``ResourceArn`` names.

- Operations on one named job or trigger are refused with AccessDeniedException, before
  anything is read or changed.
- Get*/List* over many (GetJobs, ListJobs, GetTriggers, ListTriggers, GetRecentJobRuns - each
  run judged by its job's ARN) return only what the caller may see with that action;
  BatchGet* report what it may not see as not found (its existence is not disclosed). A page
  may therefore hold fewer items than MaxResults.
- CreateTrigger and UpdateTrigger also need ``glue:StartJobRun`` on every job the trigger's
  actions start: a trigger runs jobs for whoever made it, so it must not be a way to run
  another team's jobs (a rule of this service; AWS leaves it to IAM's PassRole on the job).

CloudWatch Logs operations (``check_logs``) are ``logs:<Operation>`` on CloudWatch's ARNs:
GetLogEvents on the stream, ``arn:aws:logs:<REGION>:<ACCOUNT>:log-group:<group>:log-stream:
<run id>``; FilterLogEvents, DescribeLogStreams and DescribeLogGroups on the group, written
``...:log-group:<group>:*`` as DescribeLogGroups' ``arn`` gives it (so a policy's
``log-group:/aws-glue/jobs/output:*`` covers the group and every stream in it). They need no
``glue:`` action: a key allowed to read a group reads every run's output in it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from google.protobuf.message import Message

from catalog_service.identity import Caller, caller
from catalog_service.tags import resource_of
from catalog_service.validation import validate_request
from glue.v1 import glue_pb2
from glue_vocabulary.shapes import GlueDict
from servicekit.errors import AccessDeniedException

# One region and one account per deployment (the ones GlueClient.resource_arn uses);
# policies usually write them as `*`.
REGION = "us-east-1"
ACCOUNT = "000000000000"
_PREFIX = f"arn:aws:glue:{REGION}:{ACCOUNT}:"
_LOGS_PREFIX = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:"

# Operations on one job named by this member of the request.
_ON_JOB = {
    "CreateJob": "Name",
    "UpdateJob": "JobName",
    "DeleteJob": "JobName",
    "GetJob": "JobName",
    "StartJobRun": "JobName",
    "GetJobRun": "JobName",
    "GetJobRuns": "JobName",
    "BatchStopJobRun": "JobName",
    "GetJobBookmark": "JobName",
    "ResetJobBookmark": "JobName",
    "GetJobRunLog": "JobName",
}
_ON_TRIGGER = dict.fromkeys(
    (
        "CreateTrigger",
        "UpdateTrigger",
        "DeleteTrigger",
        "GetTrigger",
        "StartTrigger",
        "StopTrigger",
        "FireTrigger",
        "GetTriggerFires",
    ),
    "Name",
)
_ON_ARN = ("TagResource", "UntagResource", "GetTags")
# Operations over many resources: the response is filtered instead.
_FILTERED = (
    *("GetJobs", "ListJobs", "BatchGetJobs"),
    *("GetTriggers", "ListTriggers", "BatchGetTriggers"),
    "GetRecentJobRuns",
)


def job_arn(name: str) -> str:
    """The ARN a policy names a job by."""
    return f"{_PREFIX}job/{name}"


def trigger_arn(name: str) -> str:
    """The ARN a policy names a trigger by."""
    return f"{_PREFIX}trigger/{name}"


def log_group_arn(group: str) -> str:
    """A log group's ARN as DescribeLogGroups' ``logGroupArn`` gives it (no ``:*``)."""
    return f"{_LOGS_PREFIX}{group}"


def log_stream_arn(group: str, stream: str) -> str:
    """The ARN a policy names one run's log stream by."""
    return f"{_LOGS_PREFIX}{group}:log-stream:{stream}"


def check_logs(operation: str, resource: str) -> None:
    """Refuse CloudWatch Logs' ``operation`` on ``resource`` (an ARN) unless the current
    caller's policy allows ``logs:<operation>`` on it.

    Raises:
        AccessDeniedException: the policy does not allow it.
    """
    who = caller.get()
    if who is not None and who.policy is not None:
        _require(who, f"logs:{operation}", resource)


def logs_allowed(operation: str, resource: str) -> bool:
    """Whether the current caller may do CloudWatch Logs' ``operation`` on ``resource``."""
    who = caller.get()
    return who is None or who.policy is None or who.policy.allows(f"logs:{operation}", resource)


def _denied(who: Caller, action: str, resource: str, *, explicit: bool) -> AccessDeniedException:
    reason = (
        "with an explicit deny in an identity-based policy"
        if explicit
        else f"because no identity-based policy allows the {action} action"
    )
    return AccessDeniedException(
        f"User: {who.name} is not authorized to perform: {action} on resource: {resource} {reason}"
    )


def _require(who: Caller, action: str, resource: str) -> None:
    assert who.policy is not None
    if not who.policy.allows(action, resource):
        explicit = any(not s.allow and s.applies(action, resource) for s in who.policy.statements)
        raise _denied(who, action, resource, explicit=explicit)


def _name(operation: str, params: GlueDict, member: str) -> str:
    """The name a request's ``member`` holds; a request without one is refused by validation
    before the policy is consulted (it could not name a resource anyway)."""
    value = params.get(member)
    if not isinstance(value, str) or not value:
        validate_request(operation, params)
        raise AccessDeniedException(f"{operation}: {member} is required")
    return value


def check(operation: str, params: GlueDict) -> None:
    """Refuse ``operation`` on ``params`` unless the current caller's policy allows it.

    Raises:
        AccessDeniedException: the policy does not allow it.
        InvalidInputException: the request names no resource.
    """
    who = caller.get()
    if who is None or who.policy is None:
        return
    action = f"glue:{operation}"
    if operation in _ON_JOB:
        _require(who, action, job_arn(_name(operation, params, _ON_JOB[operation])))
    elif operation in _ON_TRIGGER:
        _require(who, action, trigger_arn(_name(operation, params, _ON_TRIGGER[operation])))
        if operation in ("CreateTrigger", "UpdateTrigger"):
            for job in _action_jobs(operation, params):
                _require(who, "glue:StartJobRun", job_arn(job))
    elif operation in _ON_ARN:
        _, kind, name = resource_of(_name(operation, params, "ResourceArn"))
        arn = job_arn(name) if kind == "Job" else trigger_arn(name)
        _require(who, action, arn)
    elif operation not in _FILTERED:
        # A new operation must be placed in one of the tables above: refuse until it is.
        raise _denied(who, action, "*", explicit=False)


def _action_jobs(operation: str, params: GlueDict) -> Iterable[str]:
    """The jobs a CreateTrigger's or UpdateTrigger's actions would start."""
    holder = params if operation == "CreateTrigger" else params.get("TriggerUpdate")
    actions = holder.get("Actions") if isinstance(holder, dict) else None
    for action in actions if isinstance(actions, list) else ():
        if isinstance(action, dict) and isinstance(action.get("JobName"), str):
            yield action["JobName"]


def filter_response(operation: str, response: Message) -> Message:
    """Leave in a Get*/List*/BatchGet* response only what the current caller may see."""
    who = caller.get()
    if who is None or who.policy is None or operation not in _FILTERED:
        return response
    policy = who.policy
    action = f"glue:{operation}"
    jobs: Callable[[str], bool] = lambda name: policy.allows(action, job_arn(name))  # noqa: E731
    triggers: Callable[[str], bool] = lambda name: policy.allows(action, trigger_arn(name))  # noqa: E731
    if isinstance(response, glue_pb2.GetJobsResponse):
        _keep(response.jobs, lambda job: jobs(job.name))
    elif isinstance(response, glue_pb2.ListJobsResponse):
        _keep(response.job_names, jobs)
    elif isinstance(response, glue_pb2.BatchGetJobsResponse):
        hidden = [job.name for job in response.jobs if not jobs(job.name)]
        _keep(response.jobs, lambda job: jobs(job.name))
        response.jobs_not_found.extend(hidden)
    elif isinstance(response, glue_pb2.GetTriggersResponse):
        _keep(response.triggers, lambda trigger: triggers(trigger.name))
    elif isinstance(response, glue_pb2.ListTriggersResponse):
        _keep(response.trigger_names, triggers)
    elif isinstance(response, glue_pb2.GetRecentJobRunsResponse):
        _keep(response.job_runs, lambda run: jobs(run.job_name))
    elif isinstance(response, glue_pb2.BatchGetTriggersResponse):
        hidden = [trigger.name for trigger in response.triggers if not triggers(trigger.name)]
        _keep(response.triggers, lambda trigger: triggers(trigger.name))
        response.triggers_not_found.extend(hidden)
    return response


def _keep(items: Any, wanted: Callable[[Any], bool]) -> None:
    """Keep the items of a repeated field ``wanted`` accepts, in order."""
    kept = [item for item in items if wanted(item)]
    del items[:]
    items.extend(kept)
