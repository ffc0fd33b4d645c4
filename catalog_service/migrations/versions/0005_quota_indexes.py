"""Indexes for the per-identity quotas: each create counts its caller's jobs, triggers or
waiting runs, and without these the count would scan the whole table (runs: all history).

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

WAITING = sa.text("state IN ('WAITING', 'STARTING')")


def upgrade() -> None:
    op.create_index("ix_catalog_jobs_created_by", "catalog_jobs", ["created_by"])
    op.create_index("ix_catalog_triggers_created_by", "catalog_triggers", ["created_by"])
    # Partial: only runs not yet running are in it, so it stays small and cheap to update.
    op.create_index(
        "ix_catalog_job_runs_waiting_by",
        "catalog_job_runs",
        ["started_by"],
        sqlite_where=WAITING,
        postgresql_where=WAITING,
    )


def downgrade() -> None:
    op.drop_index("ix_catalog_job_runs_waiting_by", "catalog_job_runs")
    op.drop_index("ix_catalog_triggers_created_by", "catalog_triggers")
    op.drop_index("ix_catalog_jobs_created_by", "catalog_jobs")
