"""StartRun admission: which of a batch of StartRun calls become runs, in one transaction.

``admissions`` batches the calls; this decides them. Each admission is decided as if alone, in
the order given, by ``concurrency.decide`` (the rule trigger fires use too) against the job's
active runs counted under its row lock, so neither concurrent transactions nor a batch
overshoot MaxConcurrentRuns. A refusal is returned as the GlueError StartRun raises.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from glue.scheduler.v1 import scheduler_pb2
from glue_vocabulary.run_states import JobRunState
from glue_vocabulary.shapes import GlueDict
from scheduler_service import concurrency, registry
from scheduler_service.run_record import NewRun, RunRecord
from scheduler_service.tables import runs
from servicekit.errors import EntityNotFoundException, GlueError

if TYPE_CHECKING:
    from scheduler_service.runs import RunStore

_LOAD_MANY = select(runs).where(runs.c.run_id.in_(bindparam("run_ids", expanding=True)))
_LOAD_MANY_LOCKED = _LOAD_MANY.with_for_update()


@dataclass(frozen=True, slots=True, kw_only=True)
class Admission:
    """A StartRun to admit (``admit_many``)."""

    registration: scheduler_pb2.JobRegistration
    """The job as the catalog holds it; stored first if newer than the scheduler's."""
    run_id: str
    """The run's id, chosen by the catalog: admitting it twice admits it once."""
    request: GlueDict
    """The StartJobRun request, in Glue form."""
    process_slot_reserved: bool
    """Whether a process slot is held for the run, so that it may start at once."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Admitted:
    """What an admission recorded (or found recorded before)."""

    event: scheduler_pb2.RunEvent
    """The run's latest event."""
    run: RunRecord
    created: bool
    """False if the run already existed (a repeated call): it must not be launched again."""


async def admit_many(
    store: RunStore, admissions: Sequence[Admission]
) -> list[Admitted | GlueError]:
    """Record new runs whose jobs have room, in one transaction; idempotent by run id.

    Returns, for each admission in order, what it admitted or the error that refused it
    (EntityNotFoundException: the job was deleted; ConcurrentRunsExceededException: the job
    is at MaxConcurrentRuns and does not queue). A refused admission records nothing.
    The jobs' active runs (WAITING, STARTING, RUNNING, STOPPING) are counted under their
    row locks, taken in name order, and admissions are decided in the order given, so
    neither concurrent transactions nor a batch can overshoot MaxConcurrentRuns.
    """
    async with store.write() as conn:
        existing = await _load_many(conn, [a.run_id for a in admissions])
        # Repeated calls (retries) get the run's latest event, as recorded.
        events = {
            run.run_id: scheduler_pb2.RunEvent(
                sequence=await store.latest_sequence(conn, run.run_id),
                run=run.to_proto(),
                job_incarnation=run.job_incarnation,
            )
            for run in existing.values()
        }
        fresh = [a for a in admissions if a.run_id not in existing]
        jobs = await _lock_jobs(conn, fresh)
        active = await concurrency.count_active(conn, sorted(jobs))
        decided: list[RunRecord | GlueError] = []
        created: dict[str, RunRecord] = {}
        for admission in admissions:
            known = existing.get(admission.run_id) or created.get(admission.run_id)
            if known is not None:
                decided.append(known)
                continue
            outcome = _decide(store, admission, jobs, active)
            if isinstance(outcome, RunRecord):
                created[outcome.run_id] = outcome
            decided.append(outcome)
        protos = {run_id: run.to_proto() for run_id, run in created.items()}
        new_runs = [
            NewRun(run, json.dumps(run.record, default=str), protos[run_id].SerializeToString())
            for run_id, run in created.items()
        ]
        # Last: from here to the commit every other writer waits (see ``outbox``).
        sequences = await store.insert_many(conn, new_runs)
        for new, seq in zip(new_runs, sequences, strict=True):
            events[new.run.run_id] = scheduler_pb2.RunEvent(
                sequence=seq,
                run=protos[new.run.run_id],
                job_incarnation=new.run.job_incarnation,
            )
    results: list[Admitted | GlueError] = []
    reported: set[str] = set()
    for outcome in decided:
        if isinstance(outcome, GlueError):
            results.append(outcome)
            continue
        # A run is new to the first admission that names it; a repeat (a retried call)
        # finds it existing, as it would in a later transaction.
        first = outcome.run_id in created and outcome.run_id not in reported
        reported.add(outcome.run_id)
        results.append(Admitted(event=events[outcome.run_id], run=outcome, created=first))
    return results


def _decide(
    store: RunStore,
    admission: Admission,
    jobs: dict[str, registry.RegisteredJob],
    active: dict[str, int],
) -> RunRecord | GlueError:
    """The new run an admission makes, or why it is refused; counts it in ``active``."""
    request = admission.request
    name = request["JobName"]
    job = jobs.get(name)
    if job is None or job.deleted:
        return EntityNotFoundException.job(name)
    running = active.get(name, 0)
    decision = concurrency.decide(
        job_name=name,
        job=job.definition,
        active_runs=running,
        run_queuing=request.get("JobRunQueuingEnabled"),
        free_process_slots=1 if admission.process_slot_reserved else 0,
    )
    if decision.refusal is not None:
        return decision.refusal
    active[name] = running + 1
    # A manual retry (StartJobRun with JobRunId) is a new run with its own retry budget:
    # Attempt 0 (``new_run``'s), PreviousRunId set.
    run = store.new_run(
        run_id=admission.run_id, job=job, request=request, state=JobRunState.WAITING
    )
    if decision.verdict is concurrency.Verdict.START:
        # Its slot is held and this replica launches it as soon as the batch commits: the
        # launch is recorded here, not in a transaction of its own (``launched_here``).
        return store.launched_here(run, run.created_at)
    return run


async def _load_many(conn: AsyncConnection, run_ids: Sequence[str]) -> dict[str, RunRecord]:
    query = _LOAD_MANY_LOCKED if conn.dialect.name == "postgresql" else _LOAD_MANY
    rows = await conn.execute(query, {"run_ids": sorted(set(run_ids))})
    return {row.run_id: RunRecord.from_row(row) for row in rows}


async def _lock_jobs(
    conn: AsyncConnection, admissions: Sequence[Admission]
) -> dict[str, registry.RegisteredJob]:
    """The admissions' jobs, row-locked in name order, each stored first from the newest
    registration among the admissions if that is newer than the one held (its AddJob was
    lost or is still on its way). Almost always the versions match and nothing is written.
    """
    newest: dict[str, scheduler_pb2.JobRegistration] = {}
    for admission in admissions:
        name = admission.request["JobName"]
        held = newest.get(name)
        if held is None or admission.registration.version > held.version:
            newest[name] = admission.registration
    jobs = await registry.get_jobs(conn, sorted(newest), lock=True)
    stale = [
        registration
        for name, registration in sorted(newest.items())
        if registration.version and (name not in jobs or jobs[name].version < registration.version)
    ]
    for registration in stale:
        await registry.upsert_job(conn, registration)
    if stale:
        jobs.update(await registry.get_jobs(conn, [r.job.name for r in stale], lock=True))
    return jobs
