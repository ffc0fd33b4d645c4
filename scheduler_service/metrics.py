"""The scheduler's Prometheus metrics: runs, process slots and trigger fires (docs/metrics.md).

Counters move when the change is written, inside its transaction (the outbox event is that
transaction's last statement, so a transaction that fails after it - a lost commit - is the
only overcount). Gauges about runs come from the database at scrape time, so every replica
reports the whole scheduler's queue.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy import func, select

from glue_vocabulary.run_states import TERMINAL, JobRunState
from scheduler_service.tables import runs
from servicekit.db import Database

# A run lasts from well under a second (a trivial pythonshell script) to a day (Glue's
# largest Timeout is 7 days; beyond a day the exact bucket matters little).
RUN_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 86400.0)
# A fire is due at a whole second and made within milliseconds when all is well; seconds mean
# a backlog (the 10k-trigger burst's p99 is ~0.64 s), minutes a scheduler that was down.
LATENESS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# Runs not yet ended, reported by state at each scrape.
_OPEN_STATES = (
    JobRunState.WAITING,
    JobRunState.STARTING,
    JobRunState.RUNNING,
    JobRunState.STOPPING,
)


class SchedulerMetrics:
    """Every scheduler metric, registered in one registry (a private one if none is given,
    for components built on their own, as unit tests do)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._runs_created = Counter(
            "glue_scheduler_runs_created",
            "Runs created (StartRun, trigger fires, automatic retries), by initial state",
            ["state"],
            registry=self.registry,
        )
        self._runs_started = Counter(
            "glue_scheduler_runs_started",
            "Runs whose process started: moved from STARTING to RUNNING",
            registry=self.registry,
        )
        self._runs_ended = Counter(
            "glue_scheduler_runs_ended",
            "Runs that reached a terminal state, by that state",
            ["state"],
            registry=self.registry,
        )
        self._run_duration = Histogram(
            "glue_scheduler_run_duration_seconds",
            "From a run's launch to its end, by final state",
            ["state"],
            registry=self.registry,
            buckets=RUN_BUCKETS,
        )
        self._fires = Counter(
            "glue_scheduler_trigger_fires",
            "Trigger fires by trigger type and outcome (FIRED, SKIPPED, COALESCED, failed)",
            ["type", "outcome"],
            registry=self.registry,
        )
        self._lateness = Histogram(
            "glue_scheduler_fire_lateness_seconds",
            "How long after its due time a scheduled fire was made",
            registry=self.registry,
            buckets=LATENESS_BUCKETS,
        )
        self._runs = Gauge(
            "glue_scheduler_runs",
            "Runs not yet ended, by state (all replicas; WAITING: waiting for a slot)",
            ["state"],
            registry=self.registry,
        )
        self.slots_in_use = Gauge(
            "glue_scheduler_process_slots_in_use",
            "Process slots this replica's runs hold (STARTING, RUNNING, STOPPING)",
            registry=self.registry,
        )
        self.slots = Gauge(
            "glue_scheduler_process_slots",
            "Process slots this replica has (--max-processes)",
            registry=self.registry,
        )
        # Label children made once: these are hit once per run or fire.
        self._ended = {state: self._runs_ended.labels(state.value) for state in TERMINAL}
        self._created = {state: self._runs_created.labels(state.value) for state in JobRunState}

    # -- runs ------------------------------------------------------------------------------

    def runs_created(self, states: Iterable[JobRunState]) -> None:
        """Runs were created in ``states``; those created already ended count as ended too."""
        for state in states:
            self._created[state].inc()
            if state in TERMINAL:
                self._ended[state].inc()

    def run_changed(self, state: JobRunState) -> None:
        """An existing run moved to ``state`` (its event is being written)."""
        if state is JobRunState.RUNNING:
            self._runs_started.inc()
        elif state in TERMINAL:
            self._ended[state].inc()

    def run_ended(self, state: JobRunState, seconds: float) -> None:
        """A launched run ended in ``state`` after running ``seconds``."""
        self._run_duration.labels(state.value).observe(max(0.0, seconds))

    # -- fires -----------------------------------------------------------------------------

    def fired(self, trigger_type: str, outcome: str, count: int = 1) -> None:
        """``count`` fires of a ``trigger_type`` trigger ended with ``outcome``."""
        if count:
            self._fires.labels(trigger_type, outcome).inc(count)

    def scheduled_fires(self, fires: Iterable[tuple[float | None, int, bool]], at: float) -> None:
        """A batch of due schedules was handled at ``at``: for each, the due time that fired
        (None: skipped), how many earlier due times it folded in, and whether this replica's
        fire was new."""
        for fire_at, missed, new in fires:
            if fire_at is None:
                self.fired("SCHEDULED", "SKIPPED")
                continue
            if missed:
                self.fired("SCHEDULED", "COALESCED")
            if new:
                self.fired("SCHEDULED", "FIRED")
                self._lateness.observe(max(0.0, at - fire_at))

    # -- gauges ----------------------------------------------------------------------------

    def watch_slots(self, in_use: Callable[[], float], total: int) -> None:
        """Read the slots in use from ``in_use`` at each scrape."""
        self.slots_in_use.set_function(in_use)
        self.slots.set(total)

    async def refresh_runs(self, db: Database) -> None:
        """Count the runs not yet ended, by state (one grouped query on an index)."""
        async with db.read() as conn:
            rows = (
                await conn.execute(
                    select(runs.c.state, func.count())
                    .where(runs.c.state.in_([state.value for state in _OPEN_STATES]))
                    .group_by(runs.c.state)
                )
            ).all()
        counts = {str(state): int(count) for state, count in rows}
        for state in _OPEN_STATES:
            self._runs.labels(state.value).set(counts.get(state.value, 0))
