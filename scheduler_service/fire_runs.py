"""A fire's runs: drafted from the trigger's actions and their jobs, settled in the state each
job allows, and recorded with the fire's ledger row.

What a fire does with each action:
- the job exists and has room under MaxConcurrentRuns: a run (STARTING, launched by this
  replica once the fire commits, when a process slot is free, else WAITING) with TriggerName
  set, the action's Arguments over the job's defaults and its Timeout, SecurityConfiguration
  and NotificationProperty over the job's;
- the job is at MaxConcurrentRuns: a FAILED run carrying ConcurrentRunsExceededException's
  message (a direct StartJobRun would be refused instead; docs/glue-semantics.md §6);
- the job does not exist (deleted since the trigger was made): an ERROR run naming it.
The fire's other actions start regardless.

``FireRuns`` is the base of ``firing.Firing`` that every kind of fire (schedule, predicate,
fire-now) uses.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from glue_vocabulary import log_groups
from glue_vocabulary.run_states import JobRunState
from glue_vocabulary.shapes import GlueDict
from scheduler_service import bulk, concurrency, registry
from scheduler_service.bad_rows import TALLY
from scheduler_service.fire_ledger import _LEDGER_COLUMNS, _ledger_row
from scheduler_service.metrics import SchedulerMetrics
from scheduler_service.run_record import NewRun, RunDraft, RunRecord
from scheduler_service.runs import RunStore
from scheduler_service.tables import jobs, trigger_fires

JobKey = tuple[int, str] | None
"""Which state of a job a run was drafted from: (version, incarnation); None: no such job."""


def _job_key(job: registry.RegisteredJob | None) -> JobKey:
    return None if job is None or job.deleted else (job.version, job.incarnation)


@dataclass(frozen=True, slots=True)
class _ActionRun:
    """The run one action of a fire creates, drafted from one state of its job."""

    job_name: str
    job_key: JobKey
    draft: RunDraft


@dataclass
class _JobSlots:
    """Jobs and their in-flight run counts for one fire transaction (loaded once, updated)."""

    jobs: dict[str, registry.RegisteredJob | None]
    active: dict[str, int]


class FireRuns:
    """Drafts, admits and records a fire's runs (part of ``firing.Firing``)."""

    _store: RunStore
    _metrics: SchedulerMetrics

    async def _read_jobs(
        self, conn: AsyncConnection, names: set[str], *, lock: bool
    ) -> dict[str, registry.RegisteredJob | None]:
        """The jobs ``names`` (None for those never registered); ``lock`` takes their rows'
        locks, in name order."""
        ordered = sorted(names)
        found: dict[str, registry.RegisteredJob | None] = dict.fromkeys(ordered)
        for start in range(0, len(ordered), 500):
            query = (
                select(jobs)
                .where(jobs.c.name.in_(ordered[start : start + 500]))
                .order_by(jobs.c.name)
            )
            if lock and conn.dialect.name == "postgresql":
                query = query.with_for_update()
            # A job whose row cannot be read counts as never registered (logged once).
            for job in TALLY.decode(await conn.execute(query), registry.registered_job):
                found[job.name] = job
        return found

    async def _load_jobs(self, conn: AsyncConnection, names: set[str]) -> _JobSlots:
        """The jobs named by a batch of actions, locked, with their in-flight run counts."""
        # Same lock StartJobRun takes: admissions and fires cannot overshoot the limit.
        found = await self._read_jobs(conn, names, lock=True)
        active = await concurrency.count_active(conn, list(found))
        return _JobSlots(jobs=found, active=active)

    def _draft_runs(
        self,
        trigger: registry.RegisteredTrigger,
        run_ids: Sequence[str],
        jobs_by_name: Mapping[str, registry.RegisteredJob | None],
        predecessors: Sequence[tuple[str, str]] = (),
    ) -> list[_ActionRun]:
        """One run per job action, named by ``run_ids`` in order, built from the jobs as
        given; an action whose job does not exist gets an ERROR run (module docstring)."""
        now = time.time()
        drafted = []
        for action, run_id in zip(_job_actions(trigger), run_ids, strict=True):
            name = action["JobName"]
            request: GlueDict = {
                "JobName": name,
                "TriggerName": trigger.name,
                "Arguments": action.get("Arguments", {}),
            }
            for key in ("Timeout", "SecurityConfiguration", "NotificationProperty"):
                if action.get(key) is not None:
                    request[key] = action[key]
            if predecessors:
                request["PredecessorRuns"] = [
                    {"JobName": job, "RunId": run} for job, run in predecessors
                ]
            job = jobs_by_name.get(name)
            if job is None or job.deleted:
                run = self._error_run(run_id, name, trigger.name, request, now)
            else:
                run = self._store.new_run(
                    run_id=run_id, job=job, request=request, state=JobRunState.WAITING
                )
            drafted.append(_ActionRun(name, _job_key(job), RunDraft.of(run)))
        return drafted

    def _admit(
        self, action: _ActionRun, slots: _JobSlots, free_slots: list[int], now: float
    ) -> NewRun:
        """Settle a drafted run in the state its job allows now (see module docstring). Takes a
        job slot from ``slots`` and a process slot from ``free_slots`` if it starts."""
        name, draft = action.job_name, action.draft
        job = slots.jobs.get(name)
        if job is None or job.deleted:
            return draft.settle(JobRunState.ERROR, now, draft.run.error_message)
        # A fire gives no run-level JobRunQueuingEnabled: the job's applies.
        decision = concurrency.decide(
            job_name=name,
            job=job.definition,
            active_runs=slots.active[name],
            run_queuing=None,
            free_process_slots=free_slots[0],
        )
        if decision.refusal is not None:
            # The exception's AWS text (docs/glue-fidelity.md); AWS's ErrorMessage for a
            # trigger-started run refused this way is not known.
            return draft.settle(JobRunState.FAILED, now, concurrency.refusal_text(decision.refusal))
        slots.active[name] += 1
        if decision.verdict is concurrency.Verdict.START:
            free_slots[0] -= 1
            # This replica launches it once the fire commits: the launch is recorded with it.
            new = draft.settle(JobRunState.STARTING, now)
            return NewRun(self._store.launched_here(new.run, now), new.record_json, new.payload)
        return draft.settle(JobRunState.WAITING, now)

    def _plan_runs(
        self,
        trigger: registry.RegisteredTrigger,
        run_ids: Sequence[str],
        slots: _JobSlots,
        free_slots: list[int],
        now: float,
        drafts: Sequence[_ActionRun] | None = None,
        predecessors: Sequence[tuple[str, str]] = (),
    ) -> list[NewRun]:
        """A fire's runs, created at ``now``. ``drafts`` made from other versions of the jobs
        than the locked ones in ``slots`` are not used: the runs are drafted again."""
        if drafts is None or any(_job_key(slots.jobs.get(d.job_name)) != d.job_key for d in drafts):
            drafts = self._draft_runs(trigger, run_ids, slots.jobs, predecessors)
        return [self._admit(action, slots, free_slots, now) for action in drafts]

    def _error_run(
        self, run_id: str, job_name: str, trigger_name: str, request: GlueDict, now: float
    ) -> RunRecord:
        record: GlueDict = {
            "Id": run_id,
            "JobName": job_name,
            "TriggerName": trigger_name,
            "Arguments": dict(request.get("Arguments", {})),
            # The job may be gone: Glue's default group prefix (Spark's).
            "LogGroupName": log_groups.SPARK_GROUP_PREFIX,
        }
        if request.get("PredecessorRuns"):
            record["PredecessorRuns"] = request["PredecessorRuns"]
        return RunRecord(
            run_id=run_id,
            job_name=job_name,
            job_incarnation="",
            state=JobRunState.ERROR,
            attempt=0,
            max_retries=0,
            timeout_minutes=int(request.get("Timeout") or 0) or 2880,
            created_at=now,
            updated_at=now,
            completed_at=now,
            deadline=None,
            error_message=(
                f"Job {job_name} does not exist (it was deleted or never created); trigger "
                f"{trigger_name} could not start it."
            ),
            execution_time=0,
            record=record,
        )

    async def _insert_fires(
        self, conn: AsyncConnection, rows: Sequence[tuple[Any, ...]]
    ) -> set[tuple[Any, ...]]:
        """Write ledger rows (see ``_ledger_row``); returns the (trigger, fire key) of those
        that are new. A fire already recorded (by another replica, an earlier attempt) is not
        in the answer: nothing of it may be created again."""
        return await bulk.insert_new(
            conn, trigger_fires, _LEDGER_COLUMNS, rows, ("trigger_name", "fire_key")
        )

    async def _fire(
        self,
        conn: AsyncConnection,
        trigger: registry.RegisteredTrigger,
        slots: _JobSlots,
        *,
        fire_key: str,
        scheduled_at: float,
        reason: str,
        free_slots: list[int],
        predecessors: Sequence[tuple[str, str]] = (),
    ) -> list[RunRecord] | None:
        """Record one fire and create its runs; None if this fire already happened."""
        run_ids = _new_run_ids(trigger)
        row = _ledger_row(
            trigger.name,
            fire_key,
            scheduled_at=scheduled_at,
            outcome="FIRED",
            reason=reason,
            run_ids_json=json.dumps(run_ids),
        )
        if not await self._insert_fires(conn, [row]):
            return None
        self._metrics.fired(trigger.type, "FIRED")
        planned = self._plan_runs(
            trigger, run_ids, slots, free_slots, time.time(), predecessors=predecessors
        )
        await self._store.insert_many(conn, planned)
        return [new.run for new in planned]


def _job_actions(trigger: registry.RegisteredTrigger) -> list[GlueDict]:
    """The actions that start a job (each makes one run when the trigger fires)."""
    return [a for a in trigger.definition.get("Actions", []) if a.get("JobName")]


def _new_run_ids(trigger: registry.RegisteredTrigger) -> list[str]:
    """Fresh run ids for a fire of ``trigger``, one per job action."""
    return ["jr_" + secrets.token_hex(32) for _ in _job_actions(trigger)]
