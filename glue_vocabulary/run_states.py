"""Glue's JobRunState values and the one table of legal transitions between them."""

from __future__ import annotations

from enum import StrEnum


class JobRunState(StrEnum):
    """A run's state, with Glue's names."""

    WAITING = "WAITING"
    """Admitted, waiting for a process slot (or, with JobRunQueuingEnabled, for a job slot)."""
    STARTING = "STARTING"
    """Admitted and holding a slot; its process is not known to run yet. Its launch (the site
    that runs it, owner, lease, deadline) is recorded with the admission, fire or promotion
    that gave it the slot; a STARTING run without a site was never launched (any replica that
    takes it over may launch it), one with a site may have a supervisor there."""
    RUNNING = "RUNNING"
    """Its supervisor reported the job's process started (as in Glue: the job runs)."""
    STOPPING = "STOPPING"
    """A stop was requested; the process is being ended (TERM, grace, KILL)."""
    STOPPED = "STOPPED"
    """Ended by a stop request."""
    SUCCEEDED = "SUCCEEDED"
    """The process exited with status 0."""
    FAILED = "FAILED"
    """The process exited non-zero, was killed, or its outcome was lost; retried if allowed."""
    TIMEOUT = "TIMEOUT"
    """The process ran past the run's Timeout and was ended."""
    ERROR = "ERROR"
    """The process could not be started (bad script, interpreter, command or job)."""
    EXPIRED = "EXPIRED"
    """In Glue's model for queued runs that outlive the queue limit; never produced here."""


TERMINAL = frozenset(
    {
        JobRunState.STOPPED,
        JobRunState.SUCCEEDED,
        JobRunState.FAILED,
        JobRunState.TIMEOUT,
        JobRunState.ERROR,
        JobRunState.EXPIRED,
    }
)
"""States a run never leaves."""

HOLDS_JOB_SLOT = frozenset(
    {JobRunState.WAITING, JobRunState.STARTING, JobRunState.RUNNING, JobRunState.STOPPING}
)
"""States that count against the job's MaxConcurrentRuns at admission."""

HOLDS_PROCESS_SLOT = frozenset({JobRunState.STARTING, JobRunState.RUNNING, JobRunState.STOPPING})
"""States that occupy one of the scheduler's process slots."""

_S = JobRunState
TRANSITIONS: dict[JobRunState, frozenset[JobRunState]] = {
    _S.WAITING: frozenset({_S.STARTING, _S.STOPPED, _S.FAILED, _S.ERROR, _S.EXPIRED}),
    # ERROR: the process could not be started after its launch was recorded. A process that
    # ran and ended before its RUNNING write is recorded RUNNING then ended, in one commit.
    _S.STARTING: frozenset({_S.RUNNING, _S.STOPPING, _S.FAILED, _S.ERROR, _S.TIMEOUT}),
    _S.RUNNING: frozenset({_S.SUCCEEDED, _S.FAILED, _S.TIMEOUT, _S.STOPPING, _S.ERROR}),
    # A process may end on its own while a stop is on its way.
    _S.STOPPING: frozenset({_S.STOPPED, _S.SUCCEEDED, _S.FAILED, _S.TIMEOUT, _S.ERROR}),
    **{state: frozenset() for state in TERMINAL},
}


def can_transition(current: JobRunState, target: JobRunState) -> bool:
    """Whether a run in ``current`` may move to ``target``."""
    return target in TRANSITIONS[current]
