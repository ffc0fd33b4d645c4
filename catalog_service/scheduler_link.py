"""The catalog's connection to the scheduler: one channel, typed calls, narrow retries.

Only UNAVAILABLE and DEADLINE_EXCEEDED are retried, and only on calls that are idempotent
(all of the scheduler's are: registrations carry versions, StartRun carries its run id, and a
repeated ResetJobBookmark leaves the same bookmark).
Errors leave this module as GlueError values.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc

from glue.scheduler.v1 import scheduler_pb2, scheduler_pb2_grpc
from glue.v1 import glue_pb2
from servicekit.errors import GlueError, ServiceUnavailableException, from_reason, from_rpc_error
from servicekit.internal_auth import MutualTls, secret_metadata
from servicekit.internal_rules import MAX_MESSAGE_BYTES

log = logging.getLogger(__name__)
T = TypeVar("T")

_TRANSIENT = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED})
# Spans about two seconds: long enough to ride out a scheduler restart, short enough that a
# caller learns soon that the scheduler is really down.
_BACKOFF = (0.1, 0.3, 0.6, 1.0)


class SchedulerLink:
    """Calls the scheduler service; owns its channel."""

    def __init__(
        self,
        address: str,
        *,
        timeout: float = 10.0,
        secret: str | None = None,
        mutual_tls: MutualTls | None = None,
    ) -> None:
        """Open the channel; ``secret`` goes with every call, ``mutual_tls`` makes it TLS with
        the catalog's client certificate.

        Raises:
            ValueError: a mutual TLS file cannot be read.
        """
        self.address = address
        self._timeout = timeout
        # Sent with every call below, the event stream included.
        self._metadata = secret_metadata(secret)
        options: list[tuple[str, Any]] = [
            # Reconnect quickly after a scheduler restart (gRPC's default backoff grows to
            # two minutes, during which every call would fail fast).
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.min_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 1000),
            ("grpc.keepalive_time_ms", 20_000),
            ("grpc.keepalive_timeout_ms", 10_000),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ]
        if mutual_tls is None:
            self._channel = grpc.aio.insecure_channel(address, options=options)
        else:
            ca, cert, key = mutual_tls.read()
            credentials = grpc.ssl_channel_credentials(
                root_certificates=ca, private_key=key, certificate_chain=cert
            )
            self._channel = grpc.aio.secure_channel(address, credentials, options=options)
        self.stub = scheduler_pb2_grpc.SchedulerStub(self._channel)

    async def close(self) -> None:
        """Close the channel."""
        await self._channel.close()

    async def _call(
        self, what: str, call: Callable[[], Awaitable[T]], *, retries: bool = True
    ) -> T:
        attempts = len(_BACKOFF) + 1 if retries else 1
        for attempt in range(attempts):
            try:
                return await call()
            except grpc.aio.AioRpcError as exc:
                if exc.code() in _TRANSIENT and attempt + 1 < attempts:
                    await asyncio.sleep(_BACKOFF[attempt])
                    continue
                error = from_rpc_error(exc)
                if isinstance(error, ServiceUnavailableException):
                    error = ServiceUnavailableException(
                        f"the scheduler service at {self.address} is unreachable ({what} was "
                        "not done); retry shortly"
                    )
                raise error from None
        raise AssertionError("unreachable")

    async def add_job(self, registration: scheduler_pb2.JobRegistration) -> bool:
        """Register or replace a job (if the version is newer)."""
        request = scheduler_pb2.AddJobRequest(registration=registration)
        response = await self._call(
            "AddJob",
            lambda: self.stub.AddJob(request, timeout=self._timeout, metadata=self._metadata),
        )
        return response.applied

    async def add_jobs(self, registrations: list[scheduler_pb2.JobRegistration]) -> list[bool]:
        """Register or replace several jobs in one call (each only if its version is newer)."""
        request = scheduler_pb2.AddJobsRequest(registrations=registrations)
        response = await self._call(
            "AddJobs",
            lambda: self.stub.AddJobs(request, timeout=self._timeout, metadata=self._metadata),
        )
        return list(response.applied)

    async def delete_job(self, name: str, version: int) -> bool:
        """Unregister a job (versioned)."""
        request = scheduler_pb2.DeleteJobRequest(job_name=name, version=version)
        response = await self._call(
            "DeleteJob",
            lambda: self.stub.DeleteJob(request, timeout=self._timeout, metadata=self._metadata),
        )
        return response.applied

    async def list_registrations(self) -> scheduler_pb2.ListRegistrationsResponse:
        """What the scheduler holds."""
        request = scheduler_pb2.ListRegistrationsRequest()
        return await self._call(
            "ListRegistrations",
            lambda: self.stub.ListRegistrations(
                request, timeout=self._timeout, metadata=self._metadata
            ),
        )

    async def add_trigger(self, registration: scheduler_pb2.TriggerRegistration) -> bool:
        """Register or replace a trigger (if the version is newer); its State says whether the
        scheduler fires it (ACTIVATED) or only holds it (CREATED, DEACTIVATED)."""
        request = scheduler_pb2.AddTriggerRequest(registration=registration)
        response = await self._call(
            "AddTrigger",
            lambda: self.stub.AddTrigger(request, timeout=self._timeout, metadata=self._metadata),
        )
        return response.applied

    async def unschedule(self, name: str, version: int, *, delete: bool) -> bool:
        """Stop scheduling a trigger; with ``delete``, forget it (versioned)."""
        request = scheduler_pb2.UnscheduleRequest(trigger_name=name, version=version, delete=delete)
        response = await self._call(
            "Unschedule",
            lambda: self.stub.Unschedule(request, timeout=self._timeout, metadata=self._metadata),
        )
        return response.applied

    async def fire_trigger(
        self, registration: scheduler_pb2.TriggerRegistration, fire_id: str, reason: str
    ) -> glue_pb2.TriggerFire:
        """Fire a trigger's actions once, now (idempotent by ``fire_id``)."""
        request = scheduler_pb2.FireTriggerRequest(
            registration=registration, fire_id=fire_id, reason=reason
        )
        response = await self._call(
            "FireTrigger",
            lambda: self.stub.FireTrigger(request, timeout=self._timeout, metadata=self._metadata),
        )
        return response.fire

    async def list_trigger_fires(self, name: str, max_results: int) -> list[glue_pb2.TriggerFire]:
        """A trigger's fire ledger, newest first."""
        request = scheduler_pb2.ListTriggerFiresRequest(trigger_name=name, max_results=max_results)
        response = await self._call(
            "GetTriggerFires",
            lambda: self.stub.ListTriggerFires(
                request, timeout=self._timeout, metadata=self._metadata
            ),
        )
        return list(response.fires)

    async def start_runs(
        self, requests: list[scheduler_pb2.StartRunRequest]
    ) -> list[scheduler_pb2.RunEvent | GlueError]:
        """Admit several runs in one call; each one's event, or the error StartRun would have
        raised for it, in order."""
        request = scheduler_pb2.StartRunsRequest(runs=requests)
        response = await self._call(
            "StartJobRun",
            lambda: self.stub.StartRuns(request, timeout=self._timeout, metadata=self._metadata),
        )
        return [
            outcome.event
            if outcome.HasField("event")
            else from_reason(outcome.refusal.reason, outcome.refusal.message)
            for outcome in response.outcomes
        ]

    async def stop_run(self, job_name: str, run_id: str) -> scheduler_pb2.RunEvent:
        """Ask a run to stop."""
        request = scheduler_pb2.StopRunRequest(job_name=job_name, run_id=run_id)
        response = await self._call(
            "BatchStopJobRun",
            lambda: self.stub.StopRun(request, timeout=self._timeout, metadata=self._metadata),
        )
        return response.event

    async def get_job_bookmark(
        self, job_name: str, incarnation: str, run_id: str | None
    ) -> glue_pb2.JobBookmarkEntry:
        """A job's bookmark entry: the current one, or the one run ``run_id``'s commit left."""
        request = scheduler_pb2.GetJobBookmarkRequest(
            job_name=job_name, incarnation=incarnation, run_id=run_id
        )
        response = await self._call(
            "GetJobBookmark",
            lambda: self.stub.GetJobBookmark(
                request, timeout=self._timeout, metadata=self._metadata
            ),
        )
        return response.entry

    async def reset_job_bookmark(
        self, job_name: str, incarnation: str, run_id: str | None
    ) -> glue_pb2.JobBookmarkEntry:
        """Clear a job's bookmark, or rewind it to before run ``run_id`` committed.

        Retried like the rest: a repeated reset leaves the same bookmark (Version counts each).
        """
        request = scheduler_pb2.ResetJobBookmarkRequest(
            job_name=job_name, incarnation=incarnation, run_id=run_id
        )
        response = await self._call(
            "ResetJobBookmark",
            lambda: self.stub.ResetJobBookmark(
                request, timeout=self._timeout, metadata=self._metadata
            ),
        )
        return response.entry

    def watch_run_events(self, after: int) -> RunEventStream:
        """The scheduler's event stream after sequence ``after`` (no deadline: it never ends)."""
        return RunEventStream(
            self.stub.WatchRunEvents(
                scheduler_pb2.WatchRunEventsRequest(after_sequence=after),
                metadata=self._metadata,
            )
        )

    async def acknowledge_run_events(self, sequence: int) -> None:
        """Tell the scheduler every event through ``sequence`` is applied (one try: advisory)."""
        request = scheduler_pb2.AcknowledgeRunEventsRequest(sequence=sequence)
        await self._call(
            "AcknowledgeRunEvents",
            lambda: self.stub.AcknowledgeRunEvents(
                request, timeout=self._timeout, metadata=self._metadata
            ),
            retries=False,
        )

    async def read_run_log(
        self, run_id: str, offset: int, follow: bool, *, stream: str = ""
    ) -> AsyncIterator[scheduler_pb2.ReadRunLogResponse]:
        """A run's log from ``offset`` (of one ``stream``, or both); with ``follow``, until the
        run ends."""
        request = scheduler_pb2.ReadRunLogRequest(
            run_id=run_id, offset=offset, follow=follow, stream=stream
        )
        async for chunk in self.read_run_log_request(request):
            yield chunk

    async def read_run_log_request(
        self, request: scheduler_pb2.ReadRunLogRequest
    ) -> AsyncIterator[scheduler_pb2.ReadRunLogResponse]:
        """ReadRunLog as asked (lines with their times, a time range, backward ...)."""
        call = self.stub.ReadRunLog(request, metadata=self._metadata)
        try:
            async for chunk in call:
                yield chunk
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from None
        finally:
            call.cancel()


class RunEventStream:
    """One WatchRunEvents call; like the rest of the link, its errors are GlueError values."""

    def __init__(
        self,
        call: grpc.aio.UnaryStreamCall[scheduler_pb2.WatchRunEventsRequest, scheduler_pb2.RunEvent],
    ) -> None:
        self._call = call

    async def connected(self) -> None:
        """Return once the scheduler answered (its headers arrived)."""
        try:
            await self._call.wait_for_connection()
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from None

    async def events(self) -> AsyncIterator[scheduler_pb2.RunEvent]:
        """The events, in order; the stream never ends on its own, so an end is an error.

        Raises:
            GlueError: the call failed (ServiceUnavailableException when the scheduler went
                away), or the scheduler closed the stream (it restarted or is shutting down).
        """
        try:
            async for event in self._call:
                yield event
        except grpc.aio.AioRpcError as exc:
            raise from_rpc_error(exc) from None
        code = await self._call.code()
        raise ServiceUnavailableException(f"the run-event stream ended ({code.name})")

    def close(self) -> None:
        """End the call (idempotent)."""
        self._call.cancel()


__all__ = ["GlueError", "RunEventStream", "SchedulerLink"]
