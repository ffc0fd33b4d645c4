"""Command line of the catalog service; the only module of the service that reads the environment.

Every flag has an environment variable of the same name: ``--database-url`` is
``CATALOG_DATABASE_URL``. Flags win over the environment.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

from catalog_service.limits import Limits
from catalog_service.settings import CatalogSettings, scheduler_target
from servicekit.logs import configure_logging
from servicekit.service_main import run_service

PREFIX = "CATALOG_"


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(PREFIX + name.upper().replace("-", "_"), default)


def parse_settings(argv: list[str] | None = None) -> tuple[CatalogSettings, str]:
    """Settings from flags, then environment variables, then defaults; and the log level."""
    defaults = CatalogSettings()
    parser = argparse.ArgumentParser(
        prog="catalog-service",
        description="The public Glue-compatible API: jobs, runs and triggers over gRPC "
        "(and AWS JSON 1.1 over HTTP with --http-listen).",
    )
    parser.add_argument(
        "--listen",
        default=_env("listen", defaults.listen),
        help="gRPC address HOST:PORT [CATALOG_LISTEN; %(default)s]",
    )
    parser.add_argument(
        "--http-listen",
        default=_env("http-listen"),
        help="AWS-compatible HTTP gateway HOST:PORT (boto3, aws CLI) [CATALOG_HTTP_LISTEN; off]",
    )
    parser.add_argument(
        "--access-keys",
        default=_env("access-keys"),
        help="JSON file of access keys whose SigV4 signatures the gateway verifies "
        "[CATALOG_ACCESS_KEYS; none: any signature, loopback only]",
    )
    parser.add_argument(
        "--tls-cert",
        default=_env("tls-cert"),
        help="PEM certificate for TLS on the gRPC port and the HTTP gateway "
        "[CATALOG_TLS_CERT; off]",
    )
    parser.add_argument(
        "--tls-key",
        default=_env("tls-key"),
        help="PEM private key of --tls-cert [CATALOG_TLS_KEY]",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        default=_env("insecure", "") in ("1", "true", "yes"),
        help="serve a non-loopback address without --access-keys or without TLS "
        "[CATALOG_INSECURE=1; off]",
    )
    parser.add_argument(
        "--data-dir",
        default=_env("data-dir", str(defaults.data_dir)),
        help="data directory [CATALOG_DATA_DIR; %(default)s]",
    )
    parser.add_argument(
        "--database-url",
        default=_env("database-url"),
        help="SQLAlchemy URL [CATALOG_DATABASE_URL; SQLite in the data dir]",
    )
    parser.add_argument(
        "--scheduler",
        default=_env("scheduler", defaults.scheduler),
        help="scheduler service HOST:PORT, or replicas IP:PORT,IP:PORT,... (the first that "
        "answers; fails over in order) [CATALOG_SCHEDULER; %(default)s]",
    )
    parser.add_argument(
        "--reconcile-interval",
        type=float,
        default=float(_env("reconcile-interval", str(defaults.reconcile_interval_seconds)) or 0),
        help="seconds between reconciler passes [CATALOG_RECONCILE_INTERVAL; %(default)s]",
    )
    # Limits and quotas: one flag per Limits field, --max-jobs-per-identity for
    # max_jobs_per_identity (README "Limits and quotas" has the table).
    limit_flags = parser.add_argument_group("limits and quotas (README: Limits and quotas)")
    for each in dataclasses.fields(Limits):
        flag = each.name.replace("_", "-")
        env = PREFIX + each.name.upper()
        limit_flags.add_argument(
            f"--{flag}",
            dest=f"limit_{each.name}",
            type=int,
            default=int(_env(flag, str(getattr(defaults.limits, each.name))) or 0),
            metavar="N",
            help=f"{each.name.replace('_', ' ')} [{env}; %(default)s]",
        )
    # -- how the catalog proves itself to the scheduler (servicekit.internal_auth) -----------
    parser.add_argument(
        "--internal-secret",
        default=_env("internal-secret"),
        help="file (mode 0600) with the secret sent on every scheduler call; the scheduler "
        "gets the same file [CATALOG_INTERNAL_SECRET; none]",
    )
    parser.add_argument(
        "--internal-ca",
        default=_env("internal-ca"),
        help="mutual TLS: CA that signed the scheduler's certificate [CATALOG_INTERNAL_CA; none]",
    )
    parser.add_argument(
        "--internal-cert",
        default=_env("internal-cert"),
        help="mutual TLS: the catalog's client certificate [CATALOG_INTERNAL_CERT; none]",
    )
    parser.add_argument(
        "--internal-key",
        default=_env("internal-key"),
        help="mutual TLS: the catalog's private key [CATALOG_INTERNAL_KEY; none]",
    )
    parser.add_argument(
        "--log-level",
        default=_env("log-level", "INFO"),
        help="DEBUG, INFO, WARNING ... [CATALOG_LOG_LEVEL; %(default)s]",
    )
    args = parser.parse_args(argv)
    try:
        limits = Limits(
            **{f.name: getattr(args, f"limit_{f.name}") for f in dataclasses.fields(Limits)}
        )
    except ValueError as exc:
        parser.error(str(exc))
    settings = CatalogSettings(
        listen=args.listen,
        data_dir=Path(args.data_dir),
        database_url=args.database_url or None,
        scheduler=args.scheduler,
        http_listen=args.http_listen or None,
        access_keys=Path(args.access_keys) if args.access_keys else None,
        tls_cert=Path(args.tls_cert) if args.tls_cert else None,
        tls_key=Path(args.tls_key) if args.tls_key else None,
        insecure=args.insecure,
        reconcile_interval_seconds=args.reconcile_interval,
        limits=limits,
        internal_secret=Path(args.internal_secret) if args.internal_secret else None,
        internal_ca=Path(args.internal_ca) if args.internal_ca else None,
        internal_cert=Path(args.internal_cert) if args.internal_cert else None,
        internal_key=Path(args.internal_key) if args.internal_key else None,
    )
    try:
        scheduler_target(settings.scheduler)
    except ValueError as exc:
        parser.error(f"--scheduler: {exc}")
    problem = settings.exposure_problem()
    if problem is not None:
        parser.error(problem)
    return settings, args.log_level


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``catalog-service``."""
    settings, level = parse_settings(argv)
    configure_logging(level)
    from catalog_service.app import CatalogApp

    return run_service(lambda: CatalogApp(settings), "catalog-service")
