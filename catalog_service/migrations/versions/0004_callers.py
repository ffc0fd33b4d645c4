"""Who created each job and trigger and who started each run (the gateway's caller identity).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TABLES = {
    "catalog_jobs": "created_by",
    "catalog_triggers": "created_by",
    "catalog_job_runs": "started_by",
}


def upgrade() -> None:
    for table, column in TABLES.items():
        op.add_column(table, sa.Column(column, sa.Text, nullable=True))


def downgrade() -> None:
    for table, column in TABLES.items():
        op.drop_column(table, column)
