"""Alembic environment of the catalog's migrations."""

from alembic import context

from catalog_service.tables import metadata
from servicekit.migrations import run_migrations_online

run_migrations_online(context, metadata)
