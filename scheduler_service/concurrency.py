"""MaxConcurrentRuns: the one admission rule and the one count of a job's active runs.

StartRun (``RunStore.admit_many``) and trigger fires (``firing``) both ask ``decide`` what a
new run may do; each turns a refusal into its own outcome (StartRun raises the error, a fire
records a FAILED run with its text), so the rule and its message exist once. Promotion of
WAITING runs asks ``has_room``. Every count of active runs goes through ``count_active``.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from glue_vocabulary.run_states import HOLDS_JOB_SLOT, JobRunState
from glue_vocabulary.shapes import GlueDict
from scheduler_service.tables import runs
from servicekit.errors import ConcurrentRunsExceededException

DEFAULT_MAX_CONCURRENT_RUNS = 1
# Job names per counting statement (bound parameters per statement stay bounded).
_COUNT_CHUNK = 500


def max_concurrent_runs(job: GlueDict) -> int:
    """The job's MaxConcurrentRuns (default 1)."""
    value = job.get("ExecutionProperty", {}).get("MaxConcurrentRuns")
    return int(value) if value is not None else DEFAULT_MAX_CONCURRENT_RUNS


class Verdict(enum.Enum):
    """What a new run may do."""

    START = "START"
    """It holds a job slot and a process slot: it is created STARTING, its launch recorded with
    it (``RunStore.launched_here``); RUNNING follows once its process runs."""
    WAIT = "WAIT"
    """It holds a job slot but must wait (the job is full and queues, or no process slot)."""
    REFUSE = "REFUSE"
    """The job is at MaxConcurrentRuns and does not queue: no run may be admitted."""


@dataclass(frozen=True, slots=True)
class Decision:
    """``decide``'s answer; ``refusal`` is set exactly when the verdict is REFUSE."""

    verdict: Verdict
    refusal: ConcurrentRunsExceededException | None = None


def decide(
    *,
    job_name: str,
    job: GlueDict,
    active_runs: int,
    run_queuing: bool | None,
    free_process_slots: int,
) -> Decision:
    """Whether a new run of ``job`` starts, waits or is refused.

    ``active_runs`` counts the job's runs holding one of its MaxConcurrentRuns slots
    (``HOLDS_JOB_SLOT``: queued WAITING runs count too, so a queue cannot grow past what the
    job has already promised). ``run_queuing`` is the run's own JobRunQueuingEnabled (None:
    not given; a trigger fire never gives one). Which value wins: botocore's model documents
    Job.JobRunQueuingEnabled with "If this field does not match the value set in the job run,
    then the value from the job run field will be used", so the run's value, when given,
    decides; otherwise the job's; "false or not populated" means no queuing.

    The rule: at or over the limit without queuing -> REFUSE; under the limit with a free
    process slot -> START; otherwise -> WAIT (queued, or under the limit but no process slot:
    the housekeeping loop promotes it when one frees).
    """
    limit = max_concurrent_runs(job)
    queuing = run_queuing if run_queuing is not None else bool(job.get("JobRunQueuingEnabled"))
    if active_runs >= limit and not queuing:
        return Decision(Verdict.REFUSE, ConcurrentRunsExceededException.for_job(job_name))
    if active_runs < limit and free_process_slots > 0:
        return Decision(Verdict.START)
    return Decision(Verdict.WAIT)


def refusal_text(refusal: ConcurrentRunsExceededException) -> str:
    """The ErrorMessage of a trigger-started run refused at the limit: the error StartJobRun
    would have raised, named as Glue names run errors ("<Exception>: <message>")."""
    return f"{refusal.reason}: {refusal.message}"


def has_room(job: GlueDict | None, running: int) -> bool:
    """Whether a WAITING run of ``job`` may be promoted while ``running`` of its runs hold a
    process slot (a deleted or unknown job runs one at a time, the default)."""
    limit = max_concurrent_runs(job) if job is not None else DEFAULT_MAX_CONCURRENT_RUNS
    return running < limit


_COUNT = (
    select(runs.c.job_name, func.count().label("active"))
    .where(runs.c.job_name.in_(bindparam("names", expanding=True)))
    .where(runs.c.state.in_(bindparam("states", expanding=True)))
    .group_by(runs.c.job_name)
)


async def count_active(
    conn: AsyncConnection,
    names: Sequence[str],
    states: Collection[JobRunState] = HOLDS_JOB_SLOT,
) -> dict[str, int]:
    """How many runs of each job named are in one of ``states`` (every name is a key).

    The default counts what MaxConcurrentRuns limits at admission; promotion counts the runs
    holding a process slot. Callers hold the jobs' row locks, so the counts stay true until
    their transaction ends.
    """
    ordered = sorted(set(names))
    counts = dict.fromkeys(ordered, 0)
    values = sorted(state.value for state in states)
    for start in range(0, len(ordered), _COUNT_CHUNK):
        rows = await conn.execute(
            _COUNT, {"names": ordered[start : start + _COUNT_CHUNK], "states": values}
        )
        for row in rows:
            counts[row.job_name] = int(row.active)
    return counts
