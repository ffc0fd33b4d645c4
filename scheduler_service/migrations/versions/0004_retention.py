"""History retention: the catalog's acknowledged outbox position, and a ledger age index.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    counters = sa.table("scheduler_counters", sa.column("name", sa.Text), sa.column("value"))
    op.bulk_insert(counters, [{"name": "outbox_acked", "value": 0}])
    op.create_index("ix_scheduler_trigger_fires_age", "scheduler_trigger_fires", ["recorded_at"])


def downgrade() -> None:
    op.drop_index("ix_scheduler_trigger_fires_age", "scheduler_trigger_fires")
    op.execute("DELETE FROM scheduler_counters WHERE name = 'outbox_acked'")
