"""Trigger scheduling: the due-time index, the fire ledger, conditional observations.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("scheduler_triggers") as batch:
        batch.add_column(sa.Column("type", sa.Text, nullable=False, server_default=""))
        batch.add_column(sa.Column("state", sa.Text, nullable=False, server_default="CREATED"))
        batch.add_column(sa.Column("next_fire_at", sa.Double))
        batch.add_column(sa.Column("activated_at", sa.Double))
    op.create_index("ix_scheduler_triggers_next_fire", "scheduler_triggers", ["next_fire_at"])
    op.create_table(
        "scheduler_trigger_fires",
        sa.Column("trigger_name", sa.Text, primary_key=True),
        sa.Column("fire_key", sa.Text, primary_key=True),
        sa.Column("scheduled_at", sa.Double, nullable=False),
        sa.Column("recorded_at", sa.Double, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("run_ids", sa.Text, nullable=False),
        sa.Column("due_times", sa.Integer, nullable=False),
    )
    op.create_index(
        "ix_scheduler_trigger_fires_recorded",
        "scheduler_trigger_fires",
        ["trigger_name", "recorded_at"],
    )
    op.create_table(
        "scheduler_trigger_observations",
        sa.Column("trigger_name", sa.Text, primary_key=True),
        sa.Column("job_name", sa.Text, primary_key=True),
        sa.Column("run_id", sa.Text, nullable=False),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("observed_at", sa.Double, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("scheduler_trigger_observations")
    op.drop_table("scheduler_trigger_fires")
    op.drop_index("ix_scheduler_triggers_next_fire", "scheduler_triggers")
    with op.batch_alter_table("scheduler_triggers") as batch:
        for column in ("activated_at", "next_fire_at", "state", "type"):
            batch.drop_column(column)
