"""Outbox quarantine: an event that cannot be streamed keeps its original beside a small
replacement, with the reason.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("scheduler_outbox", sa.Column("quarantined", sa.Text))
    op.add_column("scheduler_outbox", sa.Column("original_payload", sa.LargeBinary))


def downgrade() -> None:
    op.drop_column("scheduler_outbox", "original_payload")
    op.drop_column("scheduler_outbox", "quarantined")
