"""GetRecentJobRuns: runs across jobs newest first, by trigger, and runs of deleted jobs.

Adds ``trigger_name`` (filled in from each stored snapshot) and ``job_deleted`` to the run
history, and the indexes the listing reads in order.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Rows read and updated per statement while filling in trigger_name.
BATCH = 1000


def upgrade() -> None:
    # Imported here: the generated stubs are needed only when this revision runs.
    from glue.v1 import glue_pb2

    op.add_column("catalog_job_runs", sa.Column("trigger_name", sa.Text, nullable=True))
    op.add_column(
        "catalog_job_runs",
        sa.Column("job_deleted", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    runs = sa.table(
        "catalog_job_runs",
        sa.column("run_id", sa.Text),
        sa.column("snapshot", sa.LargeBinary),
        sa.column("trigger_name", sa.Text),
    )
    bind = op.get_bind()
    after = ""
    while True:
        rows = bind.execute(
            sa.select(runs.c.run_id, runs.c.snapshot)
            .where(runs.c.run_id > after)
            .order_by(runs.c.run_id)
            .limit(BATCH)
        ).all()
        if not rows:
            break
        named = [
            {"id": row.run_id, "trigger": trigger}
            for row in rows
            if (trigger := glue_pb2.JobRun.FromString(row.snapshot).trigger_name)
        ]
        if named:
            bind.execute(
                runs.update()
                .where(runs.c.run_id == sa.bindparam("id"))
                .values(trigger_name=sa.bindparam("trigger")),
                named,
            )
        after = rows[-1].run_id
    op.create_index("ix_catalog_job_runs_started", "catalog_job_runs", ["started_on", "run_id"])
    op.create_index(
        "ix_catalog_job_runs_trigger_started",
        "catalog_job_runs",
        ["trigger_name", "started_on", "run_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_catalog_job_runs_trigger_started", "catalog_job_runs")
    op.drop_index("ix_catalog_job_runs_started", "catalog_job_runs")
    op.drop_column("catalog_job_runs", "job_deleted")
    op.drop_column("catalog_job_runs", "trigger_name")
