"""The catalog's settings: one frozen value built by ``cli`` (or directly by tests)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from servicekit.db import sqlite_url


@dataclass(frozen=True, slots=True, kw_only=True)
class CatalogSettings:
    """How one catalog process runs."""

    listen: str = "127.0.0.1:50051"
    """gRPC listen address of the public API, HOST:PORT (port 0 picks a free port)."""
    data_dir: Path = Path("var")
    """Where the SQLite database lives by default."""
    database_url: str | None = None
    """SQLAlchemy URL; default: a SQLite file ``catalog.db`` in the data directory."""
    scheduler: str = "127.0.0.1:50052"
    """The scheduler service's gRPC address."""
    reconcile_interval_seconds: float = 30.0
    """How often the reconciler compares registrations with the scheduler's."""
    scheduler_timeout_seconds: float = 10.0
    """Deadline of each call to the scheduler."""
    http_listen: str | None = None
    """Address of the AWS-compatible HTTP gateway, HOST:PORT; None: no gateway."""
    access_keys: Path | None = None
    """JSON file of SigV4 access keys the gateway verifies; None: any signature (loopback only)."""
    shutdown_grace_seconds: float = 5.0
    """On SIGTERM, how long in-flight calls get to finish."""

    @property
    def effective_database_url(self) -> str:
        """The database URL actually used."""
        return self.database_url or sqlite_url(self.data_dir.resolve() / "catalog.db")
