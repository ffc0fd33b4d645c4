"""Registration versions from a PostgreSQL sequence instead of a locked counter row.

The counter row serialised every catalog write on PostgreSQL until commit (half of all
CreateJob time was spent waiting for it); a sequence hands out increasing values without a
lock. SQLite keeps the counter row: it has a single writer anyway.

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
    if op.get_bind().dialect.name == "postgresql":
        start = (
            op.get_bind()
            .execute(sa.text("SELECT value FROM catalog_counters WHERE name = 'registration'"))
            .scalar_one()
        )
        op.execute(f"CREATE SEQUENCE catalog_registration_version START WITH {int(start) + 1}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP SEQUENCE catalog_registration_version")
