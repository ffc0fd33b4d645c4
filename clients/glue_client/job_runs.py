"""GlueClient's job-run operations: StartJobRun, GetJobRun(s), GetRecentJobRuns, BatchStopJobRun,
the run log stream, and waiting for a run to end.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

import grpc

from clients.glue_client.jobs import JobOperations
from clients.glue_client.requests import _follow_pages, build_request
from glue.v1 import glue_pb2
from glue_vocabulary.run_states import TERMINAL

TERMINAL_STATES: Final = TERMINAL
"""JobRunState values a run never leaves."""

# GetJobRuns' largest page (Glue's model): where find_retry looks for a run's retry.
_NEWEST_RUNS: Final = 200
# How long a FAILED run's retry may take to become visible in the catalog (its event may come
# in the batch after the failed run's end).
_RETRY_APPEARS_SECONDS: Final = 10.0


class WaitTimeoutError(TimeoutError):
    """``wait_job_run`` gave up before the run reached a terminal state."""

    def __init__(self, run: glue_pb2.JobRun, waited: float) -> None:
        super().__init__(
            f"Job run {run.id} of job {run.job_name} is still {run.job_run_state} "
            f"after waiting {waited:g}s."
        )
        self.run = run
        """The run as last seen."""


class JobRunOperations(JobOperations):
    """GlueClient's job-run operations (on top of the job operations ``find_retry`` uses)."""

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
