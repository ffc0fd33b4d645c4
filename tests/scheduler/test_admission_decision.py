"""The MaxConcurrentRuns admission decision, over every combination of its inputs.

``concurrency.decide`` is pure, so it is checked against the rule as Glue documents it,
case by case, for MaxConcurrentRuns 1..3 (and unset), 0..4 active runs, the job's and the
run's JobRunQueuingEnabled each on, off or unset, and 0..2 free process slots.
"""

from __future__ import annotations

import itertools

import pytest

from glue_vocabulary.shapes import GlueDict
from scheduler_service.concurrency import (
    Decision,
    Verdict,
    decide,
    has_room,
    max_concurrent_runs,
    refusal_text,
)
from servicekit.errors import ConcurrentRunsExceededException

LIMITS: tuple[int | None, ...] = (None, 1, 2, 3)
ACTIVE = range(5)
FLAGS: tuple[bool | None, ...] = (None, False, True)
FREE_SLOTS = range(3)


def job_of(limit: int | None, queuing: bool | None) -> GlueDict:
    """A job definition with the given MaxConcurrentRuns and JobRunQueuingEnabled (None:
    the member is absent)."""
    job: GlueDict = {"Name": "j", "Command": {"Name": "pythonshell"}}
    if limit is not None:
        job["ExecutionProperty"] = {"MaxConcurrentRuns": limit}
    if queuing is not None:
        job["JobRunQueuingEnabled"] = queuing
    return job


def expected(
    limit: int | None, active: int, job_q: bool | None, run_q: bool | None, free: int
) -> Verdict:
    """The rule, written out from Glue's documentation (botocore's model: MaxConcurrentRuns
    default 1; the run's JobRunQueuingEnabled overrides the job's) rather than from the code
    under test."""
    full = active >= (1 if limit is None else limit)
    if run_q is True:
        queues = True
    elif run_q is False:
        queues = False
    else:
        queues = job_q is True
    if full:
        return Verdict.WAIT if queues else Verdict.REFUSE
    return Verdict.START if free > 0 else Verdict.WAIT


CASES = list(itertools.product(LIMITS, ACTIVE, FLAGS, FLAGS, FREE_SLOTS))


def decide_case(
    limit: int | None,
    active: int,
    job_q: bool | None,
    run_q: bool | None,
    free: int,
    job_name: str = "nightly",
) -> Decision:
    """``decide`` for one combination of inputs."""
    return decide(
        job_name=job_name,
        job=job_of(limit, job_q),
        active_runs=active,
        run_queuing=run_q,
        free_process_slots=free,
    )


def test_every_combination_follows_the_rule() -> None:
    assert len(CASES) == 4 * 5 * 3 * 3 * 3
    seen: set[Verdict] = set()
    for limit, active, job_q, run_q, free in CASES:
        decision = decide_case(limit, active, job_q, run_q, free)
        want = expected(limit, active, job_q, run_q, free)
        case = (limit, active, job_q, run_q, free)
        assert decision.verdict is want, case
        # A refusal, and only a refusal, carries the error StartRun raises.
        assert (decision.refusal is not None) == (want is Verdict.REFUSE), case
        seen.add(decision.verdict)
    assert seen == set(Verdict)


@pytest.mark.parametrize(
    ("limit", "active", "job_q", "run_q", "free", "verdict"),
    [
        # Written out by hand: the cases the issue names.
        (1, 0, None, None, 1, Verdict.START),
        (1, 0, None, None, 0, Verdict.WAIT),  # room, but no process slot yet
        (1, 1, None, None, 2, Verdict.REFUSE),
        (1, 1, True, None, 2, Verdict.WAIT),  # the job queues
        (1, 1, True, False, 2, Verdict.REFUSE),  # the run's value overrides the job's
        (1, 1, False, True, 0, Verdict.WAIT),  # ... both ways
        (3, 2, None, None, 1, Verdict.START),
        (3, 3, None, None, 1, Verdict.REFUSE),
        (3, 4, True, None, 2, Verdict.WAIT),  # over the limit (lowered since): queues
        (None, 1, None, None, 1, Verdict.REFUSE),  # MaxConcurrentRuns defaults to 1
    ],
)
def test_named_cases(
    limit: int | None,
    active: int,
    job_q: bool | None,
    run_q: bool | None,
    free: int,
    verdict: Verdict,
) -> None:
    assert decide_case(limit, active, job_q, run_q, free).verdict is verdict


def test_refusal_has_aws_text_for_both_callers() -> None:
    decision = decide_case(2, 2, None, None, 1, job_name="nightly-etl")
    assert isinstance(decision.refusal, ConcurrentRunsExceededException)
    # StartRun raises this; a fire records the same text on its FAILED run.
    assert decision.refusal.message == "Concurrent runs exceeded for nightly-etl"
    assert refusal_text(decision.refusal) == (
        "ConcurrentRunsExceededException: Concurrent runs exceeded for nightly-etl"
    )


@pytest.mark.parametrize(("limit", "running"), list(itertools.product(LIMITS, ACTIVE)))
def test_promotion_room(limit: int | None, running: int) -> None:
    assert has_room(job_of(limit, None), running) is (running < (limit or 1))
    # An unknown or deleted job promotes one run at a time.
    assert has_room(None, running) is (running < 1)


def test_max_concurrent_runs_default() -> None:
    assert max_concurrent_runs({}) == 1
    assert max_concurrent_runs({"ExecutionProperty": {}}) == 1
    assert max_concurrent_runs({"ExecutionProperty": {"MaxConcurrentRuns": 7}}) == 7
