"""GlueClient: an async client for the public glue.v1.Glue API.

One method per Glue operation, named in snake_case (``CreateJob`` -> ``create_job``), taking and
returning glue.v1 messages; requests may also be given in Glue's JSON form (PascalCase member
names, as boto3 takes them), which ``glue_vocabulary.shapes`` converts::

    async with GlueClient("127.0.0.1:50051") as glue:
        await glue.create_job(
            Name="nightly",
            Role="arn:aws:iam::123456789012:role/etl",
            Command={"Name": "pythonshell", "ScriptLocation": "/srv/jobs/nightly.py"},
        )
        run_id = (await glue.start_job_run("nightly", Arguments={"--day": "mon"})).job_run_id
        run = await glue.wait_job_run("nightly", run_id)
        async for chunk in glue.get_job_run_log("nightly", run_id):
            sys.stdout.buffer.write(chunk)
        await glue.create_trigger(
            Name="nightly-2am",
            Type="SCHEDULED",
            Schedule="cron(0 2 * * ? *)",
            Actions=[{"JobName": "nightly"}],
            StartOnCreation=True,
        )
        await glue.tag_resource(resource_arn("job", "nightly"), {"team": "data"})

Errors are raised as the ``servicekit.errors.GlueError`` subclass the service named (through
``from_rpc_error``, the one translation point). Only UNAVAILABLE is retried, and only on calls
that change nothing (the Get/List/BatchGet operations, GetJobBookmark, GetTags, GetTriggerFires
and the log stream), so a retried call can never start a second run, fire a trigger twice or
apply an update twice.
"""

from __future__ import annotations

import asyncio
import enum
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol, Self, TypeVar, cast

import grpc
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

from clients.credentials import Credentials, metadata_interceptors
from glue.v1 import glue_pb2, glue_pb2_grpc
from glue_vocabulary.run_states import TERMINAL
from glue_vocabulary.shapes import from_glue, message_members, pascal, to_glue
from servicekit.errors import (
    GlueError,
    OperationTimeoutException,
    ServiceUnavailableException,
    error_reason,
    from_rpc_error,
)

if TYPE_CHECKING:
    from glue.v1.glue_pb2_grpc import GlueAsyncStub

__all__ = [
    "DEFAULT_ACCOUNT",
    "DEFAULT_REGION",
    "DEFAULT_TIMEOUT",
    "TAGGABLE_KINDS",
    "TERMINAL_STATES",
    "GlueClient",
    "WaitTimeoutError",
    "build_request",
    "check_members",
    "job_update_from_job",
    "resource_arn",
]

M = TypeVar("M", bound=Message)
T = TypeVar("T")

DEFAULT_TIMEOUT: Final = 30.0
"""Seconds each unary call may take before it fails with OperationTimeoutException."""

TERMINAL_STATES: Final = TERMINAL
"""JobRunState values a run never leaves."""

TAGGABLE_KINDS: Final = ("job", "trigger")
"""The resource types whose ARNs TagResource, UntagResource and GetTags take."""
DEFAULT_REGION: Final = "us-east-1"
DEFAULT_ACCOUNT: Final = "000000000000"
"""The region and account ``resource_arn`` names unless told: the service accepts any."""

# Two retries spanning under a second: enough to ride out a reconnect or a service restart that
# is already under way, short enough that a command line learns quickly that nothing listens.
_RETRY_DELAYS: Final = (0.2, 0.6)
# GetJobRuns' largest page (Glue's model): where find_retry looks for a run's retry.
_NEWEST_RUNS: Final = 200
# How long a FAILED run's retry may take to become visible in the catalog (its event may come
# in the batch after the failed run's end).
_RETRY_APPEARS_SECONDS: Final = 10.0

_CHANNEL_OPTIONS: Final = [
    # gRPC's default reconnect backoff starts at a second and grows to two minutes, during which
    # every call fails fast without trying; the retries above need a reconnect to be attempted.
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
    # GetJobs pages carry whole job definitions (scripts' arguments, code-gen node graphs).
    ("grpc.max_receive_message_length", 16 * 1024 * 1024),
]


class WaitTimeoutError(TimeoutError):
    """``wait_job_run`` gave up before the run reached a terminal state."""

    def __init__(self, run: glue_pb2.JobRun, waited: float) -> None:
        super().__init__(
            f"Job run {run.id} of job {run.job_name} is still {run.job_run_state} "
            f"after waiting {waited:g}s."
        )
        self.run = run
        """The run as last seen."""


class _State(enum.Enum):
    UNOPENED = enum.auto()
    OPENED = enum.auto()
    CLOSED = enum.auto()


def build_request(
    message_type: type[M], request: M | Mapping[str, Any] | None, fields: Mapping[str, Any]
) -> M:
    """A request message from a message or a Glue-form dict, with Glue-form ``fields`` on top.

    ``fields`` override members of ``request``; maps and nested structures are merged.

    Raises:
        TypeError: ``request`` is a message of another type.
        ValueError: a Glue-form dict names a member the message does not have (a typo would
            otherwise be dropped silently, and the call made without it), or holds a value of
            the wrong type or out of range.
    """
    if request is None:
        message = message_type()
    elif isinstance(request, Message):
        if not isinstance(request, message_type):
            raise TypeError(
                f"expected a {message_type.DESCRIPTOR.full_name}, "
                f"got a {request.DESCRIPTOR.full_name}"
            )
        message = message_type()
        message.CopyFrom(request)
    else:
        message = _from_glue(message_type, request)
    if fields:
        message.MergeFrom(_from_glue(message_type, fields))
    return message


def _from_glue(message_type: type[M], data: Mapping[str, Any]) -> M:
    check_members(message_type, data)
    try:
        return from_glue(dict(data), message_type)
    except (TypeError, ValueError) as exc:
        # protobuf's words do not name the member; find it (this is the error path only).
        where = message_type.DESCRIPTOR.name
        for key, value in data.items():
            try:
                from_glue({key: value}, message_type)
            except (TypeError, ValueError):
                where = f"{where}.{key}"
                break
        raise ValueError(f"{where}: {exc}") from None


def check_members(message_type: type[Message], data: Mapping[str, Any]) -> None:
    """Raise ValueError if a Glue-form dict (or a structure in it) names an unknown member."""
    # protobuf's stubs type DESCRIPTOR as a union of its pure-Python and upb classes.
    _check_members(cast("Descriptor", message_type.DESCRIPTOR), data, "")


def _check_members(descriptor: Descriptor, data: Mapping[str, Any], path: str) -> None:
    by_name = {pascal(f.name): f for f in descriptor.fields}
    for key, value in data.items():
        field = by_name.get(key)
        where = f"{path}.{key}" if path else key
        if field is None:
            known = ", ".join(sorted(by_name))
            raise ValueError(f"{descriptor.name} has no member {where!r} (members: {known})")
        nested = field.message_type
        if nested is None or value is None:
            continue
        if nested.GetOptions().map_entry or nested.full_name == "google.protobuf.Timestamp":
            continue
        if field.is_repeated:  # type: ignore[attr-defined]
            for index, item in enumerate(value):
                if isinstance(item, Mapping):
                    _check_members(nested, item, f"{where}[{index}]")
        elif isinstance(value, Mapping):
            _check_members(nested, value, where)


class _Page(Protocol):
    """A response of a paginated operation (GetJobs, ListTriggers...)."""

    next_token: str

    def HasField(self, field_name: Literal["next_token"]) -> bool: ...  # noqa: N802 - protobuf's


P = TypeVar("P", bound=_Page)


async def _follow_pages(
    fetch: Callable[[str | None], Awaitable[P]], items: Callable[[P], Iterable[T]]
) -> AsyncIterator[T]:
    """Every item of every page: ``fetch(token)`` gets the page after ``token`` (the first for
    None), ``items`` picks a page's items; it stops at the page without a NextToken."""
    token: str | None = None
    while True:
        page = await fetch(token)
        for item in items(page):
            yield item
        if not page.HasField("next_token"):
            return
        token = page.next_token


class GlueClient:
    """An async client for glue.v1.Glue; owns its channel (use it as an async context manager).

    Args:
        address: ``host:port`` of the catalog service.
        timeout: seconds each unary call may take (None: no deadline). Log streams that follow
            a run have no deadline, since a run may take hours.
        retry_delays: seconds to wait before each retry of a read-only call that failed with
            UNAVAILABLE; empty to never retry.
        credentials: the access key sent with every call (``clients.credentials``), needed
            when the catalog has ``--access-keys``.
        tls: TLS channel credentials (``clients.credentials.channel_credentials``) for a
            catalog serving TLS; None: plain text.
    """

    def __init__(
        self,
        address: str,
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
        retry_delays: Sequence[float] = _RETRY_DELAYS,
        credentials: Credentials | None = None,
        tls: grpc.ChannelCredentials | None = None,
    ) -> None:
        self.address = address
        self._credentials = credentials
        self._tls = tls
        self.timeout = timeout
        self._retry_delays = tuple(retry_delays)
        self._state = _State.UNOPENED
        self._channel: grpc.aio.Channel | None = None
        self._stub_instance: GlueAsyncStub | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._state is not _State.UNOPENED:
            raise RuntimeError("a GlueClient can be opened only once")
        # Created here rather than in __init__: a grpc.aio channel binds to the running loop.
        interceptors = (
            None if self._credentials is None else metadata_interceptors(self._credentials.metadata)
        )
        if self._tls is None:
            self._channel = grpc.aio.insecure_channel(
                self.address, options=_CHANNEL_OPTIONS, interceptors=interceptors
            )
        else:
            self._channel = grpc.aio.secure_channel(
                self.address, self._tls, options=_CHANNEL_OPTIONS, interceptors=interceptors
            )
        self._stub_instance = glue_pb2_grpc.GlueStub(self._channel)
        self._state = _State.OPENED
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the channel (calls in flight are cancelled)."""
        self._state = _State.CLOSED
        self._stub_instance = None
        if self._channel is not None:
            await self._channel.close()
            self._channel = None

    @property
    def _stub(self) -> GlueAsyncStub:
        if self._stub_instance is None:
            state = "closed" if self._state is _State.CLOSED else "not opened"
            raise RuntimeError(f"the GlueClient is {state}; use `async with GlueClient(...)`")
        return self._stub_instance

    # -- plumbing ----------------------------------------------------------------------------

    def _error(self, exc: grpc.aio.AioRpcError, *, read_only: bool = True) -> GlueError:
        error = from_rpc_error(exc)
        if isinstance(error, ServiceUnavailableException) and error_reason(exc) is None:
            # No ErrorInfo: the transport failed, not the service (which would have said why).
            return ServiceUnavailableException(
                f"the Glue service at {self.address} is unreachable: {exc.details()}"
            )
        if (
            isinstance(error, OperationTimeoutException)
            and error_reason(exc) is None
            and self.timeout is not None
        ):
            # Our own deadline expired (the service's errors carry an ErrorInfo). A change may
            # still be applied after the caller stopped waiting, so say so.
            maybe = "" if read_only else "; the change may still take effect"
            return OperationTimeoutException(
                f"no answer from the Glue service at {self.address} within {self.timeout:g}s{maybe}"
            )
        return error

    async def _call(self, call: Callable[[], Awaitable[T]], *, read_only: bool) -> T:
        delays = self._retry_delays if read_only else ()
        for attempt in range(len(delays) + 1):
            try:
                return await call()
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.UNAVAILABLE and attempt < len(delays):
                    await asyncio.sleep(delays[attempt])
                    continue
                raise self._error(exc, read_only=read_only) from None
        raise AssertionError("unreachable")

    # -- jobs --------------------------------------------------------------------------------

    async def create_job(
        self, request: glue_pb2.CreateJobRequest | Mapping[str, Any] | None = None, /, **fields: Any
    ) -> glue_pb2.CreateJobResponse:
        """CreateJob: ``fields`` are Glue members (``Name=``, ``Command={...}``) over ``request``.

        Raises:
            InvalidInputException: the definition breaks a rule.
            AlreadyExistsException: a job of that name exists.
        """
        message = build_request(glue_pb2.CreateJobRequest, request, fields)
        return await self._call(
            lambda: self._stub.CreateJob(message, timeout=self.timeout), read_only=False
        )

    async def update_job(
        self,
        job_name: str,
        job_update: glue_pb2.JobUpdate | Mapping[str, Any] | None = None,
        /,
        **fields: Any,
    ) -> glue_pb2.UpdateJobResponse:
        """UpdateJob: replaces the whole definition; members left out return to their defaults.

        ``fields`` are JobUpdate members in Glue form, laid over ``job_update``.

        Raises:
            InvalidInputException: the definition breaks a rule.
            EntityNotFoundException: no such job.
        """
        update = build_request(glue_pb2.JobUpdate, job_update, fields)
        message = glue_pb2.UpdateJobRequest(job_name=job_name, job_update=update)
        return await self._call(
            lambda: self._stub.UpdateJob(message, timeout=self.timeout), read_only=False
        )

    async def delete_job(self, job_name: str) -> glue_pb2.DeleteJobResponse:
        """DeleteJob (succeeds if the job does not exist, as in Glue)."""
        message = glue_pb2.DeleteJobRequest(job_name=job_name)
        return await self._call(
            lambda: self._stub.DeleteJob(message, timeout=self.timeout), read_only=False
        )

    async def get_job(self, job_name: str) -> glue_pb2.GetJobResponse:
        """GetJob.

        Raises:
            EntityNotFoundException: no such job.
        """
        message = glue_pb2.GetJobRequest(job_name=job_name)
        return await self._call(
            lambda: self._stub.GetJob(message, timeout=self.timeout), read_only=True
        )

    async def get_jobs(
        self, *, next_token: str | None = None, max_results: int | None = None
    ) -> glue_pb2.GetJobsResponse:
        """GetJobs: one page of job definitions in name order."""
        message = glue_pb2.GetJobsRequest(next_token=next_token, max_results=max_results)
        return await self._call(
            lambda: self._stub.GetJobs(message, timeout=self.timeout), read_only=True
        )

    async def list_jobs(
        self,
        *,
        tags: Mapping[str, str] | None = None,
        next_token: str | None = None,
        max_results: int | None = None,
    ) -> glue_pb2.ListJobsResponse:
        """ListJobs: one page of job names, only jobs having every tag in ``tags``."""
        message = glue_pb2.ListJobsRequest(
            tags=dict(tags or {}), next_token=next_token, max_results=max_results
        )
        return await self._call(
            lambda: self._stub.ListJobs(message, timeout=self.timeout), read_only=True
        )

    async def batch_get_jobs(self, job_names: Sequence[str]) -> glue_pb2.BatchGetJobsResponse:
        """BatchGetJobs: the jobs found and the names not found."""
        message = glue_pb2.BatchGetJobsRequest(job_names=list(job_names))
        return await self._call(
            lambda: self._stub.BatchGetJobs(message, timeout=self.timeout), read_only=True
        )

    async def iter_jobs(self, *, page_size: int | None = None) -> AsyncIterator[glue_pb2.Job]:
        """Every job definition, following GetJobs' NextToken."""
        async for job in _follow_pages(
            lambda token: self.get_jobs(next_token=token, max_results=page_size),
            lambda page: page.jobs,
        ):
            yield job

    async def iter_job_names(
        self, *, tags: Mapping[str, str] | None = None, page_size: int | None = None
    ) -> AsyncIterator[str]:
        """Every job name (having all of ``tags``), following ListJobs' NextToken."""
        async for name in _follow_pages(
            lambda token: self.list_jobs(tags=tags, next_token=token, max_results=page_size),
            lambda page: page.job_names,
        ):
            yield name

    # -- job runs ----------------------------------------------------------------------------

    async def start_job_run(
        self,
        job_name: str,
        request: glue_pb2.StartJobRunRequest | Mapping[str, Any] | None = None,
        /,
        **fields: Any,
    ) -> glue_pb2.StartJobRunResponse:
        """StartJobRun: ``fields`` are Glue members (``Arguments=``, ``Timeout=``) over ``request``.

        Never retried: a start whose answer was lost may have started a run.

        Raises:
            EntityNotFoundException: no such job (or no such run to retry, ``JobRunId``).
            ConcurrentRunsExceededException: the job is at MaxConcurrentRuns.
            ServiceUnavailableException: the service, or the scheduler behind it, is down.
        """
        message = build_request(glue_pb2.StartJobRunRequest, request, fields)
        message.job_name = job_name
        return await self._call(
            lambda: self._stub.StartJobRun(message, timeout=self.timeout), read_only=False
        )

    async def get_job_run(
        self, job_name: str, run_id: str, *, predecessors_included: bool = False
    ) -> glue_pb2.GetJobRunResponse:
        """GetJobRun.

        Raises:
            EntityNotFoundException: no such job or run.
        """
        message = glue_pb2.GetJobRunRequest(
            job_name=job_name, run_id=run_id, predecessors_included=predecessors_included
        )
        return await self._call(
            lambda: self._stub.GetJobRun(message, timeout=self.timeout), read_only=True
        )

    async def get_job_runs(
        self, job_name: str, *, next_token: str | None = None, max_results: int | None = None
    ) -> glue_pb2.GetJobRunsResponse:
        """GetJobRuns: one page of the job's runs, newest first.

        Raises:
            EntityNotFoundException: no such job.
        """
        message = glue_pb2.GetJobRunsRequest(
            job_name=job_name, next_token=next_token, max_results=max_results
        )
        return await self._call(
            lambda: self._stub.GetJobRuns(message, timeout=self.timeout), read_only=True
        )

    async def iter_job_runs(
        self, job_name: str, *, page_size: int | None = None
    ) -> AsyncIterator[glue_pb2.JobRun]:
        """Every run of a job, newest first, following GetJobRuns' NextToken."""
        async for run in _follow_pages(
            lambda token: self.get_job_runs(job_name, next_token=token, max_results=page_size),
            lambda page: page.job_runs,
        ):
            yield run

    async def get_recent_job_runs(
        self,
        *,
        job_name: str | None = None,
        states: Sequence[str] = (),
        trigger_name: str | None = None,
        started_after: datetime | None = None,
        latest_per_job: bool = False,
        max_results: int | None = None,
        next_token: str | None = None,
    ) -> glue_pb2.GetRecentJobRunsResponse:
        """GetRecentJobRuns (not a Glue operation): one page of runs across jobs, newest first,
        runs of deleted jobs included (``job_deleted``); with ``latest_per_job`` each job's
        newest run only. The filters combine.

        Raises:
            InvalidInputException: a filter or MaxResults breaks a rule.
        """
        message = glue_pb2.GetRecentJobRunsRequest(
            job_name=job_name,
            job_run_states=list(states),
            trigger_name=trigger_name,
            latest_per_job=latest_per_job or None,
            max_results=max_results,
            next_token=next_token,
        )
        if started_after is not None:
            message.started_after.FromDatetime(started_after)
        return await self._call(
            lambda: self._stub.GetRecentJobRuns(message, timeout=self.timeout), read_only=True
        )

    async def iter_recent_job_runs(
        self,
        *,
        job_name: str | None = None,
        states: Sequence[str] = (),
        trigger_name: str | None = None,
        started_after: datetime | None = None,
        latest_per_job: bool = False,
        page_size: int | None = None,
    ) -> AsyncIterator[glue_pb2.JobRun]:
        """Every run ``get_recent_job_runs`` lists with these filters, following NextToken."""
        async for run in _follow_pages(
            lambda token: self.get_recent_job_runs(
                job_name=job_name,
                states=states,
                trigger_name=trigger_name,
                started_after=started_after,
                latest_per_job=latest_per_job,
                max_results=page_size,
                next_token=token,
            ),
            lambda page: page.job_runs,
        ):
            yield run

    async def batch_stop_job_run(
        self, job_name: str, job_run_ids: Sequence[str]
    ) -> glue_pb2.BatchStopJobRunResponse:
        """BatchStopJobRun: each id lands in SuccessfulSubmissions or Errors.

        Raises:
            InvalidInputException: no ids, or more than Glue allows in one call.
        """
        message = glue_pb2.BatchStopJobRunRequest(job_name=job_name, job_run_ids=list(job_run_ids))
        return await self._call(
            lambda: self._stub.BatchStopJobRun(message, timeout=self.timeout), read_only=False
        )

    async def get_job_run_log(
        self,
        job_name: str,
        run_id: str,
        offset: int = 0,
        follow: bool = False,
        *,
        stream: str | None = None,
    ) -> AsyncIterator[bytes]:
        """A run's captured stdout and stderr from byte ``offset``, as it arrives.

        With ``follow``, keeps streaming until the run is terminal. A stream broken by
        UNAVAILABLE resumes from the last byte received, so no byte is repeated or lost.
        ``stream`` ("stdout" or "stderr") keeps only that stream's lines.

        Raises:
            EntityNotFoundException: no such job or run.
        """
        position = offset
        failures = 0
        while True:
            request = glue_pb2.GetJobRunLogRequest(
                job_name=job_name, run_id=run_id, offset=position, follow=follow, stream=stream
            )
            call = self._stub.GetJobRunLog(request, timeout=None if follow else self.timeout)
            try:
                async for chunk in call:
                    failures = 0
                    # next_offset skips the other stream's bytes; a catalog from before it
                    # sends none.
                    position = chunk.next_offset or chunk.offset + len(chunk.data)
                    if chunk.data:
                        yield chunk.data
                return
            except grpc.aio.AioRpcError as exc:
                if exc.code() == grpc.StatusCode.UNAVAILABLE and failures < len(self._retry_delays):
                    await asyncio.sleep(self._retry_delays[failures])
                    failures += 1
                    continue
                raise self._error(exc) from None
            finally:
                call.cancel()

    async def wait_job_run(
        self,
        job_name: str,
        run_id: str,
        *,
        timeout: float | None = None,
        poll_interval: float = 2.0,
        on_change: Callable[[glue_pb2.JobRun], None] | None = None,
    ) -> glue_pb2.JobRun:
        """Poll GetJobRun until the run is terminal; returns the run as it ended.

        Polls quickly at first and slows to ``poll_interval``, so short runs return promptly
        without a long run costing many calls. A retry after a failure is a new run (with
        this one as its PreviousRunId) and is not followed.

        Args:
            job_name: the job.
            run_id: the run to wait for.
            timeout: seconds to wait at most (None: as long as it takes).
            poll_interval: the longest pause between two polls, in seconds.
            on_change: called with the run each time its state changes (and first with the run
                as first seen).

        Raises:
            WaitTimeoutError: the run was not terminal after ``timeout`` seconds.
            EntityNotFoundException: no such job or run.
        """
        started = time.monotonic()
        delay = min(0.1, poll_interval)
        last_state: str | None = None
        while True:
            run = (await self.get_job_run(job_name, run_id)).job_run
            if run.job_run_state != last_state:
                last_state = run.job_run_state
                if on_change is not None:
                    on_change(run)
            if run.job_run_state in TERMINAL_STATES:
                return run
            waited = time.monotonic() - started
            if timeout is not None and waited >= timeout:
                raise WaitTimeoutError(run, timeout)
            pause = delay if timeout is None else min(delay, max(timeout - waited, 0.0))
            await asyncio.sleep(pause)
            delay = min(delay * 1.5, poll_interval)

    async def find_retry(self, job_name: str, run: glue_pb2.JobRun) -> glue_pb2.JobRun | None:
        """The automatic retry of ``run`` (the run whose PreviousRunId it is), or None.

        The scheduler stores a retry together with the failed run's end, but the catalog may
        apply the two events in different batches: a FAILED run with retries left is looked
        for again, for up to ``_RETRY_APPEARS_SECONDS``, before it counts as not retried (the
        job may have changed meanwhile). It is looked for among the job's newest runs (one
        GetJobRuns page): it was made at ``run``'s end, so only a job that started more runs
        than a page holds since then could hide it.

        Raises:
            EntityNotFoundException: no such job.
        """
        if run.job_run_state != "FAILED":
            return None  # STOPPED, TIMEOUT and ERROR runs are not retried
        if run.attempt >= (await self.get_job(job_name)).job.max_retries:
            return None  # its last attempt: no need to read the job's runs
        deadline = time.monotonic() + _RETRY_APPEARS_SECONDS
        while True:
            page = await self.get_job_runs(job_name, max_results=_NEWEST_RUNS)
            for candidate in page.job_runs:
                if candidate.previous_run_id == run.id and candidate.attempt == run.attempt + 1:
                    return candidate
            if time.monotonic() >= deadline:
                return None
            await asyncio.sleep(0.1)

    # -- job bookmarks -----------------------------------------------------------------------

    async def get_job_bookmark(
        self, job_name: str, *, run_id: str | None = None
    ) -> glue_pb2.GetJobBookmarkResponse:
        """GetJobBookmark: the job's bookmark entry; with ``run_id``, the one that run's commit
        left.

        Raises:
            EntityNotFoundException: no such job, none of its runs committed a bookmark, or
                ``run_id`` committed none.
        """
        message = glue_pb2.GetJobBookmarkRequest(job_name=job_name, run_id=run_id)
        return await self._call(
            lambda: self._stub.GetJobBookmark(message, timeout=self.timeout), read_only=True
        )

    async def reset_job_bookmark(
        self, job_name: str, *, run_id: str | None = None
    ) -> glue_pb2.ResetJobBookmarkResponse:
        """ResetJobBookmark: the next run starts from the beginning; with ``run_id``, from the
        bookmark as it was before that run committed. Returns the entry after the reset.

        Raises:
            EntityNotFoundException: no such job, none of its runs committed a bookmark, or
                ``run_id`` committed none.
        """
        message = glue_pb2.ResetJobBookmarkRequest(job_name=job_name, run_id=run_id)
        return await self._call(
            lambda: self._stub.ResetJobBookmark(message, timeout=self.timeout), read_only=False
        )

    # -- triggers ----------------------------------------------------------------------------

    async def create_trigger(
        self,
        request: glue_pb2.CreateTriggerRequest | Mapping[str, Any] | None = None,
        /,
        **fields: Any,
    ) -> glue_pb2.CreateTriggerResponse:
        """CreateTrigger: ``fields`` are Glue members (``Name=``, ``Type=``, ``Actions=[...]``).

        Raises:
            InvalidInputException: the definition breaks a rule (a bad Schedule names the
                cron field at fault).
            EntityNotFoundException: an action names a job that does not exist.
            AlreadyExistsException: a trigger of that name exists.
        """
        message = build_request(glue_pb2.CreateTriggerRequest, request, fields)
        return await self._call(
            lambda: self._stub.CreateTrigger(message, timeout=self.timeout), read_only=False
        )

    async def update_trigger(
        self,
        name: str,
        trigger_update: glue_pb2.TriggerUpdate | Mapping[str, Any] | None = None,
        /,
        **fields: Any,
    ) -> glue_pb2.UpdateTriggerResponse:
        """UpdateTrigger: only the members given change (Actions, when given, as a whole list).

        ``fields`` are TriggerUpdate members in Glue form, laid over ``trigger_update``. An
        ACTIVATED trigger is rescheduled before this returns: the old schedule never fires after.

        Raises:
            InvalidInputException: the merged definition breaks a rule, or a rename.
            EntityNotFoundException: no such trigger, or an action names a missing job.
        """
        update = build_request(glue_pb2.TriggerUpdate, trigger_update, fields)
        message = glue_pb2.UpdateTriggerRequest(name=name, trigger_update=update)
        return await self._call(
            lambda: self._stub.UpdateTrigger(message, timeout=self.timeout), read_only=False
        )

    async def delete_trigger(self, name: str) -> glue_pb2.DeleteTriggerResponse:
        """DeleteTrigger (succeeds if the trigger does not exist); runs in flight finish."""
        message = glue_pb2.DeleteTriggerRequest(name=name)
        return await self._call(
            lambda: self._stub.DeleteTrigger(message, timeout=self.timeout), read_only=False
        )

    async def get_trigger(self, name: str) -> glue_pb2.GetTriggerResponse:
        """GetTrigger.

        Raises:
            EntityNotFoundException: no such trigger.
        """
        message = glue_pb2.GetTriggerRequest(name=name)
        return await self._call(
            lambda: self._stub.GetTrigger(message, timeout=self.timeout), read_only=True
        )

    async def get_triggers(
        self,
        *,
        dependent_job_name: str | None = None,
        next_token: str | None = None,
        max_results: int | None = None,
    ) -> glue_pb2.GetTriggersResponse:
        """GetTriggers: one page of trigger definitions in name order.

        With ``dependent_job_name``, the triggers whose actions start that job - and, as AWS
        documents, every trigger when none does.
        """
        message = glue_pb2.GetTriggersRequest(
            dependent_job_name=dependent_job_name, next_token=next_token, max_results=max_results
        )
        return await self._call(
            lambda: self._stub.GetTriggers(message, timeout=self.timeout), read_only=True
        )

    async def list_triggers(
        self,
        *,
        dependent_job_name: str | None = None,
        tags: Mapping[str, str] | None = None,
        next_token: str | None = None,
        max_results: int | None = None,
    ) -> glue_pb2.ListTriggersResponse:
        """ListTriggers: one page of trigger names, only triggers having every tag in ``tags``.

        ``dependent_job_name`` filters as in ``get_triggers``.
        """
        message = glue_pb2.ListTriggersRequest(
            dependent_job_name=dependent_job_name,
            tags=dict(tags or {}),
            next_token=next_token,
            max_results=max_results,
        )
        return await self._call(
            lambda: self._stub.ListTriggers(message, timeout=self.timeout), read_only=True
        )

    async def batch_get_triggers(
        self, trigger_names: Sequence[str]
    ) -> glue_pb2.BatchGetTriggersResponse:
        """BatchGetTriggers: the triggers found and the names not found (TriggersNotFound)."""
        message = glue_pb2.BatchGetTriggersRequest(trigger_names=list(trigger_names))
        return await self._call(
            lambda: self._stub.BatchGetTriggers(message, timeout=self.timeout), read_only=True
        )

    async def iter_triggers(
        self, *, dependent_job_name: str | None = None, page_size: int | None = None
    ) -> AsyncIterator[glue_pb2.Trigger]:
        """Every trigger definition, following GetTriggers' NextToken."""
        async for trigger in _follow_pages(
            lambda token: self.get_triggers(
                dependent_job_name=dependent_job_name, next_token=token, max_results=page_size
            ),
            lambda page: page.triggers,
        ):
            yield trigger

    async def iter_trigger_names(
        self,
        *,
        dependent_job_name: str | None = None,
        tags: Mapping[str, str] | None = None,
        page_size: int | None = None,
    ) -> AsyncIterator[str]:
        """Every trigger name (having all of ``tags``), following ListTriggers' NextToken."""
        async for name in _follow_pages(
            lambda token: self.list_triggers(
                dependent_job_name=dependent_job_name,
                tags=tags,
                next_token=token,
                max_results=page_size,
            ),
            lambda page: page.trigger_names,
        ):
            yield name

    async def start_trigger(self, name: str) -> glue_pb2.StartTriggerResponse:
        """StartTrigger: activates a SCHEDULED or CONDITIONAL trigger; fires an ON_DEMAND one.

        Never retried: a start whose answer was lost may have fired an ON_DEMAND trigger.

        Raises:
            EntityNotFoundException: no such trigger.
            InvalidInputException: an EVENT trigger.
            ServiceUnavailableException: the scheduler is down (the reconciler finishes an
                activation when it is back).
        """
        message = glue_pb2.StartTriggerRequest(name=name)
        return await self._call(
            lambda: self._stub.StartTrigger(message, timeout=self.timeout), read_only=False
        )

    async def stop_trigger(self, name: str) -> glue_pb2.StopTriggerResponse:
        """StopTrigger: deactivates; runs already started keep running.

        Raises:
            EntityNotFoundException: no such trigger.
            InvalidInputException: a CREATED (never started) or EVENT trigger.
        """
        message = glue_pb2.StopTriggerRequest(name=name)
        return await self._call(
            lambda: self._stub.StopTrigger(message, timeout=self.timeout), read_only=False
        )

    async def fire_trigger(self, name: str) -> glue_pb2.FireTriggerResponse:
        """FireTrigger (not a Glue operation): fire the trigger's actions once, now.

        Works in any state but for EVENT triggers; the fire is a ledger entry like any other.
        Never retried: a fire whose answer was lost may have started runs.

        Raises:
            EntityNotFoundException: no such trigger.
            InvalidInputException: an EVENT trigger.
        """
        message = glue_pb2.FireTriggerRequest(name=name)
        return await self._call(
            lambda: self._stub.FireTrigger(message, timeout=self.timeout), read_only=False
        )

    async def get_trigger_fires(
        self, name: str, *, max_results: int | None = None
    ) -> glue_pb2.GetTriggerFiresResponse:
        """GetTriggerFires (not a Glue operation): the fire ledger, newest first.

        ``max_results``: at most this many entries (the service's default is 20, its limit 200).

        Raises:
            EntityNotFoundException: no such trigger.
        """
        message = glue_pb2.GetTriggerFiresRequest(name=name, max_results=max_results)
        return await self._call(
            lambda: self._stub.GetTriggerFires(message, timeout=self.timeout), read_only=True
        )

    # -- tags --------------------------------------------------------------------------------

    async def tag_resource(self, arn: str, tags: Mapping[str, str]) -> glue_pb2.TagResourceResponse:
        """TagResource: adds ``tags``, replacing the values of keys the resource already has.

        ``arn`` names a job or trigger (``resource_arn`` builds one).

        Raises:
            InvalidInputException: a malformed ARN, one of an untaggable type, a bad tag, or
                more tags than a resource may carry.
            EntityNotFoundException: no such job or trigger.
        """
        message = glue_pb2.TagResourceRequest(resource_arn=arn, tags_to_add=dict(tags))
        return await self._call(
            lambda: self._stub.TagResource(message, timeout=self.timeout), read_only=False
        )

    async def untag_resource(self, arn: str, keys: Sequence[str]) -> glue_pb2.UntagResourceResponse:
        """UntagResource: removes the tags with these keys (keys the resource lacks are ignored).

        Raises:
            InvalidInputException: a malformed ARN or one of an untaggable type.
            EntityNotFoundException: no such job or trigger.
        """
        message = glue_pb2.UntagResourceRequest(resource_arn=arn, tags_to_remove=list(keys))
        return await self._call(
            lambda: self._stub.UntagResource(message, timeout=self.timeout), read_only=False
        )

    async def get_tags(self, arn: str) -> glue_pb2.GetTagsResponse:
        """GetTags: the job's or trigger's tags.

        Raises:
            InvalidInputException: a malformed ARN or one of an untaggable type.
            EntityNotFoundException: no such job or trigger.
        """
        message = glue_pb2.GetTagsRequest(resource_arn=arn)
        return await self._call(
            lambda: self._stub.GetTags(message, timeout=self.timeout), read_only=True
        )


def job_update_from_job(job: glue_pb2.Job) -> glue_pb2.JobUpdate:
    """The JobUpdate that leaves ``job`` as it is: the base for a read-modify-UpdateJob."""
    # Job and JobUpdate name their shared members alike; Name, the timestamps and ProfileName
    # are the only Job members a JobUpdate lacks, and those are dropped here.
    wanted = set(message_members(glue_pb2.JobUpdate))
    return from_glue({k: v for k, v in to_glue(job).items() if k in wanted}, glue_pb2.JobUpdate)


def resource_arn(
    kind: str, name: str, *, region: str = DEFAULT_REGION, account: str = DEFAULT_ACCOUNT
) -> str:
    """A job's or trigger's ARN, as the tag operations take it.

    ``resource_arn("job", "nightly")`` is ``arn:aws:glue:us-east-1:000000000000:job/nightly``.
    The service accepts any region and account (there is one of each per deployment), so the
    defaults do unless an ARN must match one used elsewhere.

    Raises:
        ValueError: ``kind`` is not ``job`` or ``trigger``, or ``name`` is empty.
    """
    if kind not in TAGGABLE_KINDS:
        raise ValueError(f"kind must be one of {', '.join(TAGGABLE_KINDS)}, got {kind!r}")
    if not name:
        raise ValueError("name must not be empty")
    return f"arn:aws:glue:{region}:{account}:{kind}/{name}"
