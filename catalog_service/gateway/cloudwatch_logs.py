"""CloudWatch Logs' JSON operations over the runs' output, named as Glue names it on AWS.

The gateway routes ``X-Amz-Target: Logs_20140328.<Operation>`` here (signed for the ``logs``
service). Served: GetLogEvents, FilterLogEvents, DescribeLogStreams, DescribeLogGroups.

- Groups (``glue_vocabulary.log_groups``): ``<prefix>/output`` holds each run's stdout and
  ``<prefix>/error`` its stderr, where the prefix is the run's LogGroupName
  (``/aws-glue/jobs`` for Spark jobs, ``/aws-glue/python-jobs`` for Python shell jobs). All
  four groups always exist. A run from before LogGroupName held the prefix (it held a file
  path) is in the Spark groups.
- Streams: one per run in each group of its prefix, named by the run id (both exist from the
  run's admission, possibly empty). The catalog knows the run; the scheduler keeps its output
  (``ReadRunLog``), each line timed when the supervisor read it (milliseconds).
- Tokens: GetLogEvents' ``f/<offset>/s`` and ``b/<offset>/s`` (a byte offset in the run's
  output.log: forward continues after it, backward ends before it; at either end the token
  asked with comes back, as AWS does); FilterLogEvents' and DescribeLogStreams' ``nextToken``
  are opaque (base64 of where to continue), absent at the end.
- Limits from botocore's logs model (validated per request); a page holds at most 10,000
  events and 1 MB (a message's UTF-8 bytes plus 26 per event), as on AWS.

Not served: every other Logs operation (writing, subscriptions, Insights queries ...) is
answered UnknownOperationException naming what is served. FilterLogEvents' filterPattern
takes plain terms and "quoted phrases" (all must occur); CloudWatch's JSON and
space-delimited patterns are refused. Streams of several runs are searched one run after
another (by run id), not interleaved by time.

Request checks, errors, tokens and the shapes of the answers are in ``cloudwatch_logs_shapes``.
"""

from __future__ import annotations

import re
import time
import zlib
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from catalog_service.access import authorization
from catalog_service.gateway.cloudwatch_logs_shapes import (
    BAD_TOKEN,
    EVENT_OVERHEAD_BYTES,
    LogsError,
    _decode,
    _encode,
    _filter,
    _Group,
    _invalid,
    _ms,
    _page_bytes,
    _run_prefix,
    _stream_entry,
    logs_model,
    validate,
)
from catalog_service.job_runs import JobRunCatalog
from glue.scheduler.v1 import scheduler_pb2
from glue.v1 import glue_pb2
from glue_vocabulary import log_groups
from servicekit.errors import EntityNotFoundException

TARGET_PREFIX = "Logs_20140328."
SERVICE = "logs"
OPERATIONS = ("GetLogEvents", "FilterLogEvents", "DescribeLogStreams", "DescribeLogGroups")

# AWS's page limits: events per page (the model's limit max) and bytes per page.
MAX_EVENTS = 10_000
MAX_PAGE_BYTES = 1_048_576
# DescribeLogStreams / DescribeLogGroups: the model's limit max, also the default.
MAX_DESCRIBE = 50
# Runs looked at per database page when a search spans a whole group.
RUN_PAGE = 100

GROUP_NOT_FOUND = "The specified log group does not exist."
STREAM_NOT_FOUND = "The specified log stream does not exist."
_TOKEN = re.compile(r"([fb])/(\d{1,20})/s")
_LOG_GROUP_ARN = re.compile(r"arn:[^:]+:logs:[^:]*:[^:]*:log-group:([^:]+)(?::\*)?")


class CloudWatchLogs:
    """The served Logs operations over the catalog's runs and the scheduler's logs."""

    def __init__(self, runs: JobRunCatalog) -> None:
        """``runs`` finds runs by id and reads their output."""
        self._runs = runs
        self._groups = {
            name: _Group(name, prefix, stream)
            for name, (prefix, stream) in log_groups.log_groups().items()
        }
        self._created = _ms(time.time())
        self._operations: dict[str, Callable[[dict[str, Any]], Any]] = {
            "GetLogEvents": self.get_log_events,
            "FilterLogEvents": self.filter_log_events,
            "DescribeLogStreams": self.describe_log_streams,
            "DescribeLogGroups": self.describe_log_groups,
        }

    def serves(self, operation: str) -> bool:
        """Whether ``operation`` (a Logs operation name) is served."""
        return operation in self._operations

    @staticmethod
    def known(operation: str) -> bool:
        """Whether ``operation`` is a CloudWatch Logs operation at all."""
        return operation in logs_model().operation_names

    async def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """Run one served operation on a decoded JSON body.

        Raises:
            LogsError: bad input, unknown group or stream.
            AccessDeniedException: the caller's policy does not allow it.
        """
        validate(operation, params)
        result: dict[str, Any] = await self._operations[operation](params)
        return result

    # -- groups and streams --------------------------------------------------------------------

    def _group(self, params: Mapping[str, Any]) -> _Group:
        name = params.get("logGroupName")
        identifier = params.get("logGroupIdentifier")
        if name is not None and identifier is not None:
            raise _invalid("LogGroup name and LogGroup ARN are mutually exclusive parameters.")
        if identifier is not None:
            match = _LOG_GROUP_ARN.fullmatch(identifier)
            name = match.group(1) if match else identifier
        if name is None:
            raise _invalid("Either logGroupName or logGroupIdentifier is required.")
        group = self._groups.get(name)
        if group is None:
            raise LogsError("ResourceNotFoundException", GROUP_NOT_FOUND)
        return group

    async def _stream(self, group: _Group, name: str) -> glue_pb2.JobRun:
        run = await self._runs.run_by_id(name)
        if run is None or _run_prefix(run) != group.prefix:
            raise LogsError("ResourceNotFoundException", STREAM_NOT_FOUND)
        return run

    async def _group_runs(
        self, group: _Group, prefix: str, after: str | None
    ) -> AsyncIterator[glue_pb2.JobRun]:
        """The runs of a group whose id starts with ``prefix``, by id, after ``after``."""
        while True:
            page = await self._runs.runs_by_id(prefix, after, RUN_PAGE, descending=False)
            for run in page:
                if run.id.startswith(prefix) and _run_prefix(run) == group.prefix:
                    yield run
            if len(page) < RUN_PAGE:
                return
            after = page[-1].id

    # -- GetLogEvents --------------------------------------------------------------------------

    async def get_log_events(self, params: dict[str, Any]) -> dict[str, Any]:
        """One stream's events, forward or backward, with AWS's f/ and b/ tokens."""
        group = self._group(params)
        name = params.get("logStreamName")
        if not name:
            raise _invalid("logStreamName is required.")
        authorization.check_logs("GetLogEvents", authorization.log_stream_arn(group.name, name))
        await self._stream(group, name)
        limit = params.get("limit", MAX_EVENTS)
        start_time = params.get("startTime", 0)
        # GetLogEvents' endTime is exclusive; ReadRunLog's is inclusive.
        end_time = max(1, params["endTime"] - 1) if params.get("endTime") else 0
        token = params.get("nextToken")
        if token is not None:
            match = _TOKEN.fullmatch(token)
            if match is None:
                raise _invalid(BAD_TOKEN)
            backward, offset = match.group(1) == "b", int(match.group(2))
        else:
            backward, offset = not params.get("startFromHead", False), 0
        events: list[scheduler_pb2.RunLogEvent] = []
        if not (backward and token is not None and offset == 0):
            # (b/0 is the start of the stream: nothing is before it.)
            events, _ = await self._read(
                name, group.stream, offset, start_time, end_time, limit, backward=backward
            )
        if events:
            forward_at, backward_at = events[-1].end, events[0].offset
        else:
            forward_at = backward_at = offset
        return {
            "events": [
                {"timestamp": e.timestamp, "message": e.message, "ingestionTime": e.timestamp}
                for e in events
            ],
            "nextForwardToken": f"f/{forward_at:020d}/s",
            "nextBackwardToken": f"b/{backward_at:020d}/s",
        }

    async def _read(
        self,
        run_id: str,
        stream: str,
        offset: int,
        start_time: int,
        end_time: int,
        limit: int,
        *,
        backward: bool,
        keep: Callable[[str], bool] | None = None,
        room: int = MAX_PAGE_BYTES,
    ) -> tuple[list[scheduler_pb2.RunLogEvent], bool]:
        """Up to ``limit`` events (and ``room`` bytes) of one run's stream, and whether the
        page is full (more may follow)."""
        events: list[scheduler_pb2.RunLogEvent] = []
        size = 0
        reader = self._runs.read_log_events(
            run_id,
            stream=stream,
            offset=offset,
            start_time=start_time,
            end_time=end_time,
            # A filter pattern drops lines after the scheduler counted them: read on instead.
            limit=0 if keep is not None else limit,
            backward=backward,
        )
        try:
            async for message in reader:
                for event in message.events:
                    if keep is not None and not keep(event.message):
                        continue
                    events.append(event)
                    size += len(event.message.encode()) + EVENT_OVERHEAD_BYTES
                if len(events) >= limit or size > room:
                    break
        except EntityNotFoundException:
            # The scheduler no longer keeps the run (its --history-days): no stream any more.
            raise LogsError("ResourceNotFoundException", STREAM_NOT_FOUND) from None
        finally:
            await reader.aclose()
        full = len(events) >= limit or size > room
        if backward:
            # The newest events are kept: drop from the oldest end.
            events = events[-limit:]
            while events and _page_bytes(events) > room:
                events.pop(0)
        else:
            events = events[:limit]
            while events and _page_bytes(events) > room:
                events.pop()
        return events, full

    # -- FilterLogEvents -----------------------------------------------------------------------

    async def filter_log_events(self, params: dict[str, Any]) -> dict[str, Any]:
        """Events of a group's streams (named, by prefix, or all), by run id, then in order."""
        group = self._group(params)
        authorization.check_logs("FilterLogEvents", group.arn)
        names = params.get("logStreamNames")
        prefix = params.get("logStreamNamePrefix")
        if names is not None and prefix is not None:
            raise _invalid("logStreamNames and logStreamNamePrefix are mutually exclusive.")
        keep = _filter(params.get("filterPattern", ""))
        limit = params.get("limit", MAX_EVENTS)
        start_time, end_time = params.get("startTime", 0), params.get("endTime", 0)
        resume: tuple[str, int] | None = None
        if params.get("nextToken") is not None:
            decoded = _decode(params["nextToken"])
            if not (
                isinstance(decoded, list)
                and len(decoded) == 2
                and isinstance(decoded[0], str)
                and isinstance(decoded[1], int)
            ):
                raise _invalid(BAD_TOKEN)
            resume = (decoded[0], decoded[1])
        events: list[dict[str, Any]] = []
        searched: list[dict[str, Any]] = []
        room = MAX_PAGE_BYTES
        next_token: str | None = None
        async for run_id in self._filter_streams(group, names, prefix or "", resume):
            offset = resume[1] if resume is not None and resume[0] == run_id else 0
            found, full = await self._read(
                run_id,
                group.stream,
                offset,
                start_time,
                end_time,
                limit - len(events),
                backward=False,
                keep=keep,
                room=room,
            )
            searched.append({"logStreamName": run_id, "searchComplete": True})
            salt = zlib.crc32(run_id.encode())
            events.extend(
                {
                    "logStreamName": run_id,
                    "timestamp": event.timestamp,
                    "message": event.message,
                    "ingestionTime": event.timestamp,
                    "eventId": f"{event.offset:020d}{salt:010d}",
                }
                for event in found
            )
            room -= _page_bytes(found)
            if full:
                next_token = _encode([run_id, found[-1].end if found else offset])
                break
        answer: dict[str, Any] = {"events": events, "searchedLogStreams": searched}
        if next_token is not None:
            answer["nextToken"] = next_token
        return answer

    async def _filter_streams(
        self,
        group: _Group,
        names: list[str] | None,
        prefix: str,
        resume: tuple[str, int] | None,
    ) -> AsyncIterator[str]:
        """The run ids to search, in id order, from the token's run on."""
        start = resume[0] if resume is not None else None
        if names is not None:
            for name in sorted(set(names)):
                if start is not None and name < start:
                    continue
                run = await self._runs.run_by_id(name)
                # Streams that do not exist are skipped, as CloudWatch does.
                if run is not None and _run_prefix(run) == group.prefix:
                    yield name
            return
        if start is not None:
            yield start
        async for run in self._group_runs(group, prefix, start):
            yield run.id

    # -- DescribeLogStreams --------------------------------------------------------------------

    async def describe_log_streams(self, params: dict[str, Any]) -> dict[str, Any]:
        """A group's streams (its runs), by name, or by the run's start time (LastEventTime)."""
        group = self._group(params)
        authorization.check_logs("DescribeLogStreams", group.arn)
        prefix = params.get("logStreamNamePrefix", "")
        by_time = params.get("orderBy") == "LastEventTime"
        if by_time and prefix:
            raise _invalid("Cannot order by LastEventTime with a logStreamNamePrefix.")
        descending = bool(params.get("descending", False))
        limit = params.get("limit", MAX_DESCRIBE)
        after: Any = None
        if params.get("nextToken") is not None:
            after = _decode(params["nextToken"])
        if by_time:
            if after is not None and not (
                isinstance(after, list) and len(after) == 2 and isinstance(after[1], str)
            ):
                raise _invalid(BAD_TOKEN)
            keyed = await self._runs.runs_by_start(
                None if after is None else (float(after[0]), after[1]), limit, descending=descending
            )
            page = [run for _, run in keyed]
            last_key: Any = [keyed[-1][0], keyed[-1][1].id] if keyed else None
        else:
            if after is not None and not isinstance(after, str):
                raise _invalid(BAD_TOKEN)
            page = await self._runs.runs_by_id(prefix, after, limit, descending=descending)
            last_key = page[-1].id if page else None
        streams = [
            _stream_entry(group, run)
            for run in page
            if run.id.startswith(prefix) and _run_prefix(run) == group.prefix
        ]
        answer: dict[str, Any] = {"logStreams": streams}
        if len(page) == limit:
            answer["nextToken"] = _encode(last_key)
        return answer

    # -- DescribeLogGroups ---------------------------------------------------------------------

    async def describe_log_groups(self, params: dict[str, Any]) -> dict[str, Any]:
        """Glue's four groups, those the caller may describe, by name."""
        prefix = params.get("logGroupNamePrefix", "")
        pattern = params.get("logGroupNamePattern", "").lower()
        if prefix and pattern:
            raise _invalid("logGroupNamePrefix and logGroupNamePattern are mutually exclusive.")
        wanted_class = params.get("logGroupClass", "STANDARD")
        identifiers = params.get("logGroupIdentifiers")
        groups = [
            group
            for name, group in sorted(self._groups.items())
            if name.startswith(prefix)
            and pattern in name.lower()
            and wanted_class == "STANDARD"
            and (identifiers is None or name in identifiers or group.arn[:-2] in identifiers)
            and authorization.logs_allowed("DescribeLogGroups", group.arn)
        ]
        start = 0
        if params.get("nextToken") is not None:
            start = _decode(params["nextToken"])
            if not isinstance(start, int) or start < 0:
                raise _invalid(BAD_TOKEN)
        limit = params.get("limit", MAX_DESCRIBE)
        page = groups[start : start + limit]
        answer: dict[str, Any] = {
            "logGroups": [
                {
                    "logGroupName": group.name,
                    "creationTime": self._created,
                    "metricFilterCount": 0,
                    "arn": group.arn,
                    "logGroupArn": group.arn[:-2],
                    "storedBytes": 0,
                    "logGroupClass": "STANDARD",
                }
                for group in page
            ]
        }
        if start + limit < len(groups):
            answer["nextToken"] = _encode(start + limit)
        return answer
