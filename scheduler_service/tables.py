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
    # The static part of the run in Glue form (Arguments, Timeout, LogGroupName, echoes ...).
    Column("record", Text, nullable=False),
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
    Index("ix_scheduler_outbox_run", "run_id"),
)

counters = Table(
    "scheduler_counters",
    metadata,
    Column("name", Text, primary_key=True),
    Column("value", BigInteger, nullable=False),
)
