"""StartRun admission with group commit: the calls waiting are written in one transaction.

Admitting a run is one short transaction, but every one of them queues for the same lock:
SQLite's single writer, or on PostgreSQL the outbox counter's row (see ``outbox``), held to the
commit. One admission at a time, throughput was one transaction's latency per run. Here the
calls that arrive while a batch is being written wait, and go together in the next one: one
lock hold, one counter bump, one commit for all of them. A lone call is written at once, as
before; under load a batch is as large as the calls that came meanwhile.

Each caller is answered only after the commit that records its run (docs/invariants.md §1), and a
refused admission (ConcurrentRunsExceededException, EntityNotFoundException) records nothing
while the others of its batch go ahead. The batch, not the caller, hands each new run to the
executor, so a caller that gives up (its deadline passed) leaves no admitted run unlaunched.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from glue.scheduler.v1 import scheduler_pb2
from glue_vocabulary.run_states import JobRunState
from glue_vocabulary.shapes import GlueDict
from scheduler_service.executor import Executor
from scheduler_service.run_admission import Admission, Admitted
from scheduler_service.runs import RunStore
from scheduler_service.slots import ProcessSlots
from servicekit.batches import MAX_BATCH, Batches
from servicekit.errors import GlueError, ServiceUnavailableException


class Admissions:
    """Admits StartRun calls, batching those that wait into one transaction."""

    def __init__(
        self,
        store: RunStore,
        executor: Executor,
        slots: ProcessSlots,
        *,
        writers: int = 1,
        max_batch: int = MAX_BATCH,
    ) -> None:
        """Args:
        writers: Batches written at once. On PostgreSQL two: most of a batch's time is round
            trips (reads, row locks) outside the counter lock, which the other batch can use.
            SQLite has one writer: one.
        """
        self._store = store
        self._executor = executor
        self._slots = slots
        self._batches: Batches[Admission, Admitted] = Batches(
            self._admit,
            stopping=partial(ServiceUnavailableException.stopping, "scheduler"),
            writers=writers,
            max_batch=max_batch,
            settle=self._settle,
            # Something unexpected (a database error) fails only the admission that caused it.
            write_alone=self._admit_alone,
            noun="admissions",
        )

    async def close(self) -> None:
        """Refuse new admissions and cancel the writers (their callers are told to retry)."""
        await self._batches.close()

    async def admit(
        self, registration: scheduler_pb2.JobRegistration, run_id: str, request: GlueDict
    ) -> scheduler_pb2.RunEvent:
        """Admit a run (idempotent by ``run_id``); its event once committed.

        Raises:
            EntityNotFoundException: the job was deleted.
            ConcurrentRunsExceededException: the job is at MaxConcurrentRuns (nothing recorded).
            ServiceUnavailableException: the scheduler is stopping.
        """
        if self._batches.closed:
            raise ServiceUnavailableException.stopping("scheduler")
        admitted = await self._batches.submit(
            Admission(
                registration=registration,
                run_id=run_id,
                request=request,
                process_slot_reserved=self._slots.reserve() == 1,
            )
        )
        return admitted.event

    async def _admit(self, admissions: Sequence[Admission]) -> list[Admitted | GlueError]:
        return await self._store.admit_many(admissions)

    async def _admit_alone(self, admission: Admission) -> Admitted | GlueError:
        [result] = await self._store.admit_many([admission])
        return result

    def _settle(self, admission: Admission, result: Admitted | BaseException) -> None:
        """Hand a new run to the executor, or give back its slot (before its caller is
        answered, and whether or not the caller still waits)."""
        if (
            isinstance(result, Admitted)
            and result.created
            and result.run.state is JobRunState.STARTING
        ):
            self._executor.launch(result.run)
            return
        if admission.process_slot_reserved:
            self._slots.release()
        if (
            isinstance(result, Admitted)
            and result.created
            and result.run.state is JobRunState.WAITING
        ):
            self._executor.note_waiting()
