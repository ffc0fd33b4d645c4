"""The catalog's initial schema: jobs, job runs, the event cursor, counters.

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
        "catalog_jobs",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("incarnation", sa.Text, nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("definition", sa.LargeBinary, nullable=False),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("created_on", sa.Double, nullable=False),
    )
    op.create_table(
        "catalog_job_runs",
        sa.Column("run_id", sa.Text, primary_key=True),
        sa.Column("job_name", sa.Text, nullable=False),
        sa.Column("started_on", sa.Double, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("snapshot", sa.LargeBinary, nullable=False),
        sa.Column("event_seq", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ix_catalog_job_runs_job_started", "catalog_job_runs", ["job_name", "started_on", "run_id"]
    )
    op.create_table(
        "catalog_event_cursor",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "catalog_counters",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(
        sa.table(
            "catalog_event_cursor",
            sa.column("id", sa.Integer),
            sa.column("last_seq", sa.BigInteger),
        ),
        [{"id": 1, "last_seq": 0}],
    )
    op.bulk_insert(
        sa.table("catalog_counters", sa.column("name", sa.Text), sa.column("value", sa.BigInteger)),
        [{"name": "registration", "value": 0}],
    )


def downgrade() -> None:
    for table in ("catalog_counters", "catalog_event_cursor", "catalog_job_runs", "catalog_jobs"):
        op.drop_table(table)
