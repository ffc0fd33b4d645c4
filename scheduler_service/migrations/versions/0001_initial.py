"""The scheduler's initial schema: jobs, triggers, runs, outbox, counters.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scheduler_jobs",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("incarnation", sa.Text, nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("definition", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
    )
    op.create_table(
        "scheduler_triggers",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("deleted", sa.Boolean, nullable=False),
        sa.Column("definition", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
    )
    op.create_table(
        "scheduler_runs",
        sa.Column("run_id", sa.Text, primary_key=True),
        sa.Column("job_name", sa.Text, nullable=False),
        sa.Column("job_incarnation", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("max_retries", sa.Integer, nullable=False),
        sa.Column("timeout_minutes", sa.Integer, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
        sa.Column("completed_at", sa.Double),
        sa.Column("deadline", sa.Double),
        sa.Column("error_message", sa.Text),
        sa.Column("execution_time", sa.Integer),
        sa.Column("record", sa.Text, nullable=False),
    )
    op.create_index("ix_scheduler_runs_job_state", "scheduler_runs", ["job_name", "state"])
    op.create_index("ix_scheduler_runs_state_created", "scheduler_runs", ["state", "created_at"])
    op.create_table(
        "scheduler_outbox",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("run_id", sa.Text, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("job_incarnation", sa.Text, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
    )
    op.create_index("ix_scheduler_outbox_run", "scheduler_outbox", ["run_id"])
    op.create_table(
        "scheduler_counters",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(
        sa.table(
            "scheduler_counters", sa.column("name", sa.Text), sa.column("value", sa.BigInteger)
        ),
        [{"name": "outbox", "value": 0}],
    )


def downgrade() -> None:
    for table in ("scheduler_counters", "scheduler_outbox", "scheduler_runs"):
        op.drop_table(table)
    op.drop_table("scheduler_triggers")
    op.drop_table("scheduler_jobs")
