"""The catalog's settings: one frozen value built by ``cli`` (or directly by tests)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from catalog_service.limits import Limits
from servicekit.db import sqlite_url
from servicekit.server import is_loopback


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
    """The scheduler service's gRPC address: HOST:PORT, a gRPC target (``dns:///name:port``
    resolving to every replica), or several IP:PORT separated by commas; with several the
    catalog uses the first that answers and fails over in order (see ``scheduler_target``)."""
    reconcile_interval_seconds: float = 30.0
    """How often the reconciler compares registrations with the scheduler's."""
    scheduler_timeout_seconds: float = 10.0
    """Deadline of each call to the scheduler."""
    http_listen: str | None = None
    """Address of the AWS-compatible HTTP gateway, HOST:PORT; None: no gateway."""
    access_keys: Path | None = None
    """JSON file of SigV4 access keys the gateway verifies; None: any signature (loopback only)."""
    tls_cert: Path | None = None
    """PEM certificate (chain) both front doors serve TLS with; with ``tls_key``."""
    tls_key: Path | None = None
    """PEM private key of ``tls_cert``."""
    insecure: bool = False
    """Allow listening beyond loopback without authentication or without TLS (see
    ``exposure_problem``): for a network that is itself private and trusted."""
    shutdown_grace_seconds: float = 5.0
    """On SIGTERM, how long in-flight calls get to finish."""
    limits: Limits = field(default_factory=Limits)
    """Input caps, calls and streams per caller, quotas per identity (README: Limits and quotas)."""

    # -- how the catalog proves itself to the scheduler (servicekit.internal_auth) -----------
    internal_secret: Path | None = None
    """A file (mode 0600) holding the secret sent on every scheduler call; the scheduler gets
    the same file. None: no secret is sent."""
    internal_ca: Path | None = None
    """Mutual TLS: the CA that signed the scheduler's certificate."""
    internal_cert: Path | None = None
    """Mutual TLS: the catalog's client certificate (PEM)."""
    internal_key: Path | None = None
    """Mutual TLS: the private key of ``internal_cert`` (PEM)."""

    @property
    def scheduler_target(self) -> str:
        """The gRPC channel target for ``scheduler`` (raises ValueError if it is malformed)."""
        return scheduler_target(self.scheduler)

    def exposure_problem(self) -> str | None:
        """Why these settings must not serve, or None.

        A door on a non-loopback address needs access keys (else anyone on the network may do
        anything), and the gRPC door also TLS (its bearer secret would cross the network in
        clear text; SigV4 never sends the secret). ``insecure`` waives both.
        """
        if (self.tls_cert is None) != (self.tls_key is None):
            return "--tls-cert and --tls-key go together"
        if self.insecure:
            return None
        doors = [("--listen", self.listen), ("--http-listen", self.http_listen)]
        for flag, address in doors:
            if address is not None and not is_loopback(address) and self.access_keys is None:
                return (
                    f"{flag} {address} is reachable from the network but no caller is "
                    "authenticated: set --access-keys (CATALOG_ACCESS_KEYS), or --insecure "
                    "to serve anyone who can connect"
                )
        if not is_loopback(self.listen) and self.tls_cert is None:
            return (
                f"--listen {self.listen} is reachable from the network but not encrypted, so "
                "bearer secrets would cross it in clear text: set --tls-cert and --tls-key "
                "(CATALOG_TLS_CERT, CATALOG_TLS_KEY), or --insecure"
            )
        return None

    @property
    def effective_database_url(self) -> str:
        """The database URL actually used."""
        return self.database_url or sqlite_url(self.data_dir.resolve() / "catalog.db")


def scheduler_target(addresses: str) -> str:
    """A gRPC target for one scheduler address or a comma-separated list of replicas' IP:PORT.

    A list becomes gRPC's static-address form (``ipv4:a:p,b:q``), which the channel's default
    pick-first policy walks in order: the catalog talks to one replica and moves to the next
    when it stops answering. Host names cannot go in such a list (gRPC resolves them only as
    a single target), so a list of them is refused with the alternative spelled out.
    """
    parts = [part.strip() for part in addresses.split(",")]
    if len(parts) == 1:
        if not parts[0]:
            raise ValueError("the scheduler address is empty")
        return parts[0]
    families = set()
    for part in parts:
        host, _, port = part.rpartition(":")
        try:
            ip = ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
        except ValueError:
            raise ValueError(
                f"scheduler address {part!r}: a list of scheduler replicas must be IP:PORT "
                "entries; for host names use one DNS name that resolves to every replica, "
                "e.g. dns:///scheduler.internal:50052"
            ) from None
        if not port.isdigit():
            raise ValueError(f"scheduler address {part!r}: no port")
        families.add(f"ipv{ip.version}")
    if len(families) > 1:
        raise ValueError("a list of scheduler replicas must be all IPv4 or all IPv6")
    return f"{families.pop()}:{','.join(parts)}"
