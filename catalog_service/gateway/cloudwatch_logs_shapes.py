"""CloudWatch Logs' side of the wire for ``cloudwatch_logs``: requests checked against botocore's
logs model, its errors (``LogsError``), opaque tokens, the entries its answers list, page
sizes, and FilterLogEvents' plain-term filterPattern.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.model import ServiceModel

from catalog_service.access import authorization
from catalog_service.validation.model import ModelValidator, builtin_model
from glue.scheduler.v1 import scheduler_pb2
from glue.v1 import glue_pb2
from glue_vocabulary import log_groups

# What AWS counts per event in a page's bytes, besides the message's UTF-8 bytes.
EVENT_OVERHEAD_BYTES = 26
BAD_TOKEN = "The specified nextToken is invalid."


class LogsError(Exception):
    """An error CloudWatch Logs would answer: its code and message (HTTP 400)."""

    def __init__(self, code: str, message: str) -> None:
        """Code is AWS's exception name, e.g. ResourceNotFoundException."""
        super().__init__(message)
        self.code = code
        self.message = message


def _invalid(message: str) -> LogsError:
    return LogsError("InvalidParameterException", message)


@functools.cache
def logs_model() -> ServiceModel:
    """botocore's CloudWatch Logs model, from the pinned botocore's own data only."""
    return builtin_model("logs")


@functools.cache
def _validator() -> ModelValidator:
    # Glue's validator, given the logs model: the same checks and messages.
    return ModelValidator(logs_model())


def validate(operation: str, params: Mapping[str, Any]) -> None:
    """Check a request against the logs model (types, lengths, patterns, ranges, enums).

    Raises:
        LogsError: InvalidParameterException naming the first member at fault.
    """
    found = _validator().check(operation, params)
    if found:
        first = found[0]
        raise _invalid(f"{'.'.join(str(p) for p in first.path) or operation}: {first.text}")


@dataclass(frozen=True, slots=True)
class _Group:
    """A log group: its name, the group prefix (a LogGroupName), and the run stream it holds."""

    name: str
    prefix: str
    stream: str

    @property
    def arn(self) -> str:
        """The group as policies and DescribeLogGroups' ``arn`` name it."""
        return authorization.log_group_arn(self.name) + ":*"


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def _run_prefix(run: glue_pb2.JobRun) -> str:
    # Runs from before LogGroupName held the prefix hold a file path: Spark's by default.
    name = run.log_group_name
    return name if name in log_groups.GROUP_PREFIXES else log_groups.SPARK_GROUP_PREFIX


def _encode(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


def _decode(token: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, binascii.Error):
        raise _invalid(BAD_TOKEN) from None


def _stream_entry(group: _Group, run: glue_pb2.JobRun) -> dict[str, Any]:
    started = run.started_on.ToMilliseconds()
    last = (
        run.completed_on.ToMilliseconds()
        if run.HasField("completed_on")
        else run.last_modified_on.ToMilliseconds() or started
    )
    return {
        "logStreamName": run.id,
        "creationTime": started,
        "firstEventTimestamp": started,
        "lastEventTimestamp": last,
        "lastIngestionTime": last,
        "arn": authorization.log_stream_arn(group.name, run.id),
        "storedBytes": 0,
    }


def _page_bytes(events: list[scheduler_pb2.RunLogEvent]) -> int:
    return sum(len(e.message.encode()) + EVENT_OVERHEAD_BYTES for e in events)


_TERM = re.compile(r'"([^"]*)"|(\S+)')


def _filter(pattern: str) -> Callable[[str], bool] | None:
    """FilterLogEvents' filterPattern for plain terms: every term must occur in the message.

    Raises:
        LogsError: a JSON (``{``), space-delimited (``[``), optional (``?``) or excluded
            (``-``) term, which this service does not evaluate.
    """
    if not pattern.strip():
        return None
    terms = []
    for quoted, bare in _TERM.findall(pattern):
        term = quoted if quoted else bare
        if not quoted and term[:1] in ("{", "[", "?", "-", "%"):
            raise _invalid(
                f"filterPattern {pattern!r}: only plain terms and quoted phrases are "
                "supported here (no JSON, space-delimited, ?, - or regular-expression terms)."
            )
        terms.append(term)
    return lambda message: all(term in message for term in terms)
