"""Job bookmarks: each job's current entry, and every version of it.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scheduler_job_bookmarks",
        sa.Column("job_name", sa.Text, primary_key=True),
        sa.Column("incarnation", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("run", sa.Integer, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("run_id", sa.Text, nullable=False),
        sa.Column("previous_run_id", sa.Text),
        sa.Column("job_bookmark", sa.Text),
        sa.Column("updated_at", sa.Double, nullable=False),
    )
    op.create_table(
        "scheduler_job_bookmark_history",
        sa.Column("job_name", sa.Text, primary_key=True),
        sa.Column("incarnation", sa.Text, primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("change", sa.Text, nullable=False),
        sa.Column("run", sa.Integer, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("run_id", sa.Text, nullable=False),
        sa.Column("previous_run_id", sa.Text),
        sa.Column("job_bookmark", sa.Text),
        sa.Column("rewound_run_id", sa.Text),
        sa.Column("recorded_at", sa.Double, nullable=False),
    )
    op.create_index(
        "ix_scheduler_job_bookmark_history_run",
        "scheduler_job_bookmark_history",
        ["job_name", "run_id"],
    )


def downgrade() -> None:
    op.drop_table("scheduler_job_bookmark_history")
    op.drop_table("scheduler_job_bookmarks")
