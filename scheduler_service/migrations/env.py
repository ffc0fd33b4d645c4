"""Alembic environment of the scheduler's migrations."""

from alembic import context

from scheduler_service.tables import metadata
from servicekit.migrations import run_migrations_online

run_migrations_online(context, metadata)
