"""Retry backoff: the time before which a WAITING run (an automatic retry) may not start.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL for every existing row: runs queued before this revision may start at once.
    op.add_column("scheduler_runs", sa.Column("not_before", sa.Double))


def downgrade() -> None:
    with op.batch_alter_table("scheduler_runs") as batch:
        batch.drop_column("not_before")
