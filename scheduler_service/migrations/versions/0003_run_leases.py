"""Run ownership for several replicas: each in-flight run's owner, lease and site.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch_alter_table: SQLite cannot ALTER much in place (here it only adds columns, which
    # SQLite does directly, but the batch form keeps both dialects on one code path).
    with op.batch_alter_table("scheduler_runs") as batch:
        batch.add_column(sa.Column("owner", sa.Text))
        batch.add_column(sa.Column("lease_until", sa.Double))
        batch.add_column(sa.Column("site", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("scheduler_runs") as batch:
        for column in ("site", "lease_until", "owner"):
            batch.drop_column(column)
