"""The scheduler's tables (all prefixed ``scheduler_``; the catalog never reads them).

Timestamps are epoch seconds (double precision) so that SQLite and PostgreSQL sort and compare
them identically; definitions and run records are Glue-form JSON text.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Double,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
)

metadata = MetaData()

jobs = Table(
    "scheduler_jobs",
    metadata,
    Column("name", Text, primary_key=True),
    # The catalog's registration version; an older one never overwrites a newer one.
    Column("version", BigInteger, nullable=False),
    Column("incarnation", Text, nullable=False),
    # A deleted job keeps its row as a versioned tombstone.
    Column("deleted", Boolean, nullable=False),
    Column("definition", Text, nullable=False),
    Column("updated_at", Double, nullable=False),
)

triggers = Table(
    "scheduler_triggers",
    metadata,
    Column("name", Text, primary_key=True),
    Column("version", BigInteger, nullable=False),
    Column("deleted", Boolean, nullable=False),
    Column("definition", Text, nullable=False),
    Column("updated_at", Double, nullable=False),
    # SCHEDULED, CONDITIONAL, ON_DEMAND or EVENT.
    Column("type", Text, nullable=False, server_default=""),
    # What the catalog wants: only ACTIVATED triggers fire by themselves.
    Column("state", Text, nullable=False, server_default="CREATED"),
    # The due-time index: the next instant an ACTIVATED SCHEDULED trigger fires (else NULL).
    Column("next_fire_at", Double),
    # When it was last activated (a conditional trigger's window starts there).
    Column("activated_at", Double),
    Index("ix_scheduler_triggers_next_fire", "next_fire_at"),
)

trigger_fires = Table(
    "scheduler_trigger_fires",
    metadata,
    Column("trigger_name", Text, primary_key=True),
    # Names the fire: the due instant of a schedule, the run that satisfied a predicate, or the
    # caller's id for an on-demand or manual fire. The key makes a fire happen at most once.
    Column("fire_key", Text, primary_key=True),
    Column("scheduled_at", Double, nullable=False),
    Column("recorded_at", Double, nullable=False),
    # FIRED, SKIPPED or COALESCED.
    Column("outcome", Text, nullable=False),
    Column("reason", Text, nullable=False),
    # JSON list of the run ids the fire started.
    Column("run_ids", Text, nullable=False),
    Column("due_times", Integer, nullable=False),
    Index("ix_scheduler_trigger_fires_recorded", "trigger_name", "recorded_at"),
    # History retention prunes by age across triggers.
    Index("ix_scheduler_trigger_fires_age", "recorded_at"),
)

trigger_observations = Table(
    "scheduler_trigger_observations",
    metadata,
    # The latest terminal run of each watched job since the conditional trigger was activated
    # or last fired.
    Column("trigger_name", Text, primary_key=True),
    Column("job_name", Text, primary_key=True),
    Column("run_id", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("observed_at", Double, nullable=False),
)

runs = Table(
    "scheduler_runs",
    metadata,
    Column("run_id", Text, primary_key=True),
    Column("job_name", Text, nullable=False),
    Column("job_incarnation", Text, nullable=False),
    Column("state", Text, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("max_retries", Integer, nullable=False),
    Column("timeout_minutes", Integer, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    Column("completed_at", Double),
    # Set when the process starts: when the supervisor times it out.
    Column("deadline", Double),
    Column("error_message", Text),
    Column("execution_time", Integer),
    # The static part of the run in Glue form (Arguments, Timeout, LogGroupName - the group
    # prefix, not a path -, echoes ...).
    Column("record", Text, nullable=False),
    # The replica responsible for an in-flight run (it started, promoted or adopted it); kept
    # after the run ends, as history. NULL for runs that never held a process slot.
    Column("owner", Text),
    # Until when the owner's claim holds, in epoch seconds on the DATABASE's clock (see
    # ``leases``); the owner's heartbeat renews it, and any replica may take an expired run.
    Column("lease_until", Double),
    # The id of the owner's data directory: a replica with the same site can see the run's
    # supervisor and adopt it; any other settles the run as lost.
    Column("site", Text),
    # An automatic retry's backoff: promotion leaves the WAITING run alone until this epoch
    # second (``retries``). NULL: it may start as soon as a slot is free.
    Column("not_before", Double),
    Index("ix_scheduler_runs_job_state", "job_name", "state"),
    Index("ix_scheduler_runs_state_created", "state", "created_at"),
)

outbox = Table(
    "scheduler_outbox",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("run_id", Text, nullable=False),
    # A serialized glue.v1.JobRun: the run's whole record after the change.
    Column("payload", LargeBinary, nullable=False),
    Column("job_incarnation", Text, nullable=False),
    Column("created_at", Double, nullable=False),
    # Why the event could not be streamed (too large, undecodable); NULL for every sound one.
    # Such an event's ``payload`` is then a small replacement, and the original is kept here.
    Column("quarantined", Text),
    Column("original_payload", LargeBinary),
    Index("ix_scheduler_outbox_run", "run_id"),
)

counters = Table(
    "scheduler_counters",
    metadata,
    # "outbox": the last event sequence handed out; "outbox_acked": the last sequence the
    # catalog acknowledged applying (history retention may prune events up to it).
    Column("name", Text, primary_key=True),
    Column("value", BigInteger, nullable=False),
)

job_bookmarks = Table(
    "scheduler_job_bookmarks",
    metadata,
    # The current JobBookmarkEntry of each job: what its next run resumes from.
    Column("job_name", Text, primary_key=True),
    # The job incarnation the entry belongs to (see ``registry``): an entry of an earlier job
    # of the same name is no bookmark of this one.
    Column("incarnation", Text, nullable=False),
    # Glue's Version: every commit and every reset adds one.
    Column("version", Integer, nullable=False),
    # Glue's Run: how many runs committed.
    Column("run", Integer, nullable=False),
    # Attempt, RunId and PreviousRunId of the run that last committed.
    Column("attempt", Integer, nullable=False),
    Column("run_id", Text, nullable=False),
    Column("previous_run_id", Text),
    # JSON text, verbatim; NULL after a reset to the beginning.
    Column("job_bookmark", Text),
    Column("updated_at", Double, nullable=False),
)

job_bookmark_history = Table(
    "scheduler_job_bookmark_history",
    metadata,
    # Every version of every entry (the current one included), so that a run's commit can be
    # read back and a reset can rewind to the state just before it.
    Column("job_name", Text, primary_key=True),
    Column("incarnation", Text, primary_key=True),
    Column("version", Integer, primary_key=True),
    # COMMIT (a run committed), RESET (to the beginning) or REWIND (to before a run).
    Column("change", Text, nullable=False),
    Column("run", Integer, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("run_id", Text, nullable=False),
    Column("previous_run_id", Text),
    Column("job_bookmark", Text),
    # For REWIND: the run whose commit was undone (with every later one).
    Column("rewound_run_id", Text),
    Column("recorded_at", Double, nullable=False),
    Index("ix_scheduler_job_bookmark_history_run", "job_name", "run_id"),
)
