"""The catalog's triggers table.

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
    op.create_table(
        "catalog_triggers",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("definition", sa.LargeBinary, nullable=False),
        sa.Column("pending", sa.Text),
        sa.Column("tags", sa.Text, nullable=False),
        sa.Column("created_on", sa.Double, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("catalog_triggers")
