"""StartJobRun's admissions by the scheduler, sent in batches (StartRuns).

Each StartJobRun hands its StartRun request here and waits for its own outcome. A request
made while fewer than ``MAX_IN_FLIGHT`` calls are in flight goes at once (a lone run waits for
nothing); those made meanwhile go together in the next call. The scheduler writes the
admissions that arrive together in one transaction anyway (its ``Admissions``); what the batch
saves is the gRPC call per run on both sides, under load the largest part of an admission's
cost after the database work.

A refusal (ConcurrentRunsExceededException, EntityNotFoundException ...) is that run's alone;
a call that fails (the scheduler unreachable) fails every run it carried, as StartRun would
have failed each, and the call is idempotent by run id, so ``SchedulerLink`` retries it.
"""

from __future__ import annotations

from functools import partial

from catalog_service.scheduler_link import SchedulerLink
from glue.scheduler.v1 import scheduler_pb2
from servicekit.batches import MAX_BATCH, Batches
from servicekit.errors import ServiceUnavailableException

# StartRuns calls in flight at once: two, so that one call's marshalling and answer overlap
# the other's admission transaction.
MAX_IN_FLIGHT = 2
# The serialized requests one call carries at most (each holds its job's registration; the
# internal API's messages are capped at 16 MiB). A larger request still goes, alone.
BATCH_BYTES = 4 * 1024 * 1024


class RunStarts:
    """Admits runs through the scheduler, batching the requests that wait."""

    def __init__(
        self,
        link: SchedulerLink,
        *,
        in_flight: int = MAX_IN_FLIGHT,
        max_batch: int = MAX_BATCH,  # the scheduler's admissions use the same bound
        batch_bytes: int = BATCH_BYTES,
    ) -> None:
        self._calls: Batches[scheduler_pb2.StartRunRequest, scheduler_pb2.RunEvent] = Batches(
            link.start_runs,
            stopping=partial(ServiceUnavailableException.stopping, "catalog service"),
            writers=in_flight,
            max_batch=max_batch,
            size=scheduler_pb2.StartRunRequest.ByteSize,
            max_size=batch_bytes,
        )

    @property
    def calls(self) -> int:
        """StartRuns calls made (for tests)."""
        return self._calls.batches

    async def start(self, request: scheduler_pb2.StartRunRequest) -> scheduler_pb2.RunEvent:
        """Admit a run; its admission event once the scheduler committed it.

        Raises:
            GlueError: what StartRun would have raised for this run (a refusal, the scheduler
                unreachable, the catalog stopping).
        """
        return await self._calls.submit(request)

    async def close(self) -> None:
        """Refuse new runs; let calls in flight finish (briefly), then cancel them."""
        await self._calls.close(grace=2.0)
