"""The catalog's tables (all prefixed ``catalog_``; the scheduler never reads them).

Jobs and runs are stored as serialized glue.v1 messages: GetJob and GetJobRun parse one blob
and answer, with no per-field mapping on the hot path. Timestamps used for ordering are epoch
seconds (double precision), identical on SQLite and PostgreSQL.
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
    false,
    text,
)

metadata = MetaData()

jobs = Table(
    "catalog_jobs",
    metadata,
    Column("name", Text, primary_key=True),
    # A new one per CreateJob: runs of a deleted job never attach to a re-created one.
    Column("incarnation", Text, nullable=False),
    # The registration version pushed to the scheduler (from the registration counter).
    Column("version", BigInteger, nullable=False),
    # A serialized glue.v1.Job, exactly what GetJob returns.
    Column("definition", LargeBinary, nullable=False),
    # Tags as JSON text (not part of the Job shape in Glue).
    Column("tags", Text, nullable=False),
    Column("created_on", Double, nullable=False),
    # The verified caller identity of the gateway request that created it; NULL otherwise.
    Column("created_by", Text),
    # The jobs quota counts per identity (migration 0005).
    Index("ix_catalog_jobs_created_by", "created_by"),
)

job_runs = Table(
    "catalog_job_runs",
    metadata,
    Column("run_id", Text, primary_key=True),
    Column("job_name", Text, nullable=False),
    Column("started_on", Double, nullable=False),
    Column("state", Text, nullable=False),
    # A serialized glue.v1.JobRun: the run as of event ``event_seq``.
    Column("snapshot", LargeBinary, nullable=False),
    # The scheduler's sequence number of the event this snapshot came from; an older event
    # never overwrites a newer snapshot.
    Column("event_seq", BigInteger, nullable=False),
    # The verified caller identity of the StartJobRun request; NULL for gRPC and trigger runs.
    Column("started_by", Text),
    # The trigger that started the run (the snapshot's TriggerName), for GetRecentJobRuns'
    # filter (migration 0006).
    Column("trigger_name", Text),
    # The run's job incarnation no longer exists: a run that ended (or was started by a
    # trigger) after its job was deleted. GetJobRun(s) never show such runs, GetRecentJobRuns
    # does, so an operator can see them (migration 0006).
    Column("job_deleted", Boolean, nullable=False, server_default=false()),
    Index("ix_catalog_job_runs_job_started", "job_name", "started_on", "run_id"),
    # GetRecentJobRuns: newest first across jobs, and by trigger (migration 0006).
    Index("ix_catalog_job_runs_started", "started_on", "run_id"),
    Index("ix_catalog_job_runs_trigger_started", "trigger_name", "started_on", "run_id"),
    # The waiting-runs quota counts per identity; partial, so it holds only runs not yet
    # running (migration 0005).
    Index(
        "ix_catalog_job_runs_waiting_by",
        "started_by",
        sqlite_where=text("state IN ('WAITING', 'STARTING')"),
        postgresql_where=text("state IN ('WAITING', 'STARTING')"),
    ),
)

triggers = Table(
    "catalog_triggers",
    metadata,
    Column("name", Text, primary_key=True),
    Column("version", BigInteger, nullable=False),
    # A serialized glue.v1.Trigger whose State is the settled state (CREATED, ACTIVATED,
    # DEACTIVATED).
    Column("definition", LargeBinary, nullable=False),
    # ACTIVATING, DEACTIVATING, UPDATING or DELETING while that change is on its way to the
    # scheduler (shown by GetTrigger instead of the settled state); NULL once acknowledged.
    Column("pending", Text),
    Column("tags", Text, nullable=False),
    Column("created_on", Double, nullable=False),
    Column("created_by", Text),
    Index("ix_catalog_triggers_created_by", "created_by"),
)

event_cursor = Table(
    "catalog_event_cursor",
    metadata,
    Column("id", Integer, primary_key=True),
    # The last scheduler event applied; stored in the same transaction as its effect.
    Column("last_seq", BigInteger, nullable=False),
)

counters = Table(
    "catalog_counters",
    metadata,
    Column("name", Text, primary_key=True),
    Column("value", BigInteger, nullable=False),
)
