"""Command line of the scheduler service; the only module of the service that reads the environment.

Every flag has an environment variable of the same name: ``--database-url`` is
``SCHEDULER_DATABASE_URL``. Flags win over the environment.

Longer than the ~400 lines the team aims for, and one job: ``parse_settings`` declares every
flag with its help and checks in one place, and ``settings_environment``, its inverse, must
stay beside it so the two name the same flags.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

from scheduler_service.job_env import parse_assignment, parse_assignments, read_env_file
from scheduler_service.run_access import root_policy_problem
from scheduler_service.sandbox import parse_uid_range
from scheduler_service.settings import SchedulerSettings
from servicekit.errors import InvalidInputException
from servicekit.logs import configure_logging
from servicekit.service_main import run_service

PREFIX = "SCHEDULER_"
# Below this a lease is renewed more often than a busy replica can be relied on to manage.
MIN_LEASE_SECONDS = 1.0
MAX_REPLICA_ID_LENGTH = 200
# Below this a capped log keeps too little of either end to be of use.
MIN_LOG_BYTES = 4096


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(PREFIX + name.upper().replace("-", "_"), default)


def parse_settings(argv: list[str] | None = None) -> tuple[SchedulerSettings, str]:
    """Settings from flags, then environment variables, then defaults; and the log level."""
    defaults = SchedulerSettings()
    parser = argparse.ArgumentParser(
        prog="scheduler-service",
        description="Runs Glue job runs and fires triggers; the catalog service drives it.",
    )
    parser.add_argument(
        "--listen",
        default=_env("listen", defaults.listen),
        help="gRPC address HOST:PORT [SCHEDULER_LISTEN; %(default)s]",
    )
    parser.add_argument(
        "--data-dir",
        default=_env("data-dir", str(defaults.data_dir)),
        help="data directory [SCHEDULER_DATA_DIR; %(default)s]",
    )
    parser.add_argument(
        "--database-url",
        default=_env("database-url"),
        help="SQLAlchemy URL [SCHEDULER_DATABASE_URL; SQLite in the data dir]",
    )
    parser.add_argument(
        "--max-processes",
        type=int,
        default=int(_env("max-processes", str(defaults.max_processes)) or 0),
        help="job processes at once [SCHEDULER_MAX_PROCESSES; %(default)s]",
    )
    parser.add_argument(
        "--stop-grace",
        type=float,
        default=float(_env("stop-grace", str(defaults.stop_grace_seconds)) or 0),
        help="seconds between SIGTERM and SIGKILL [SCHEDULER_STOP_GRACE; %(default)s]",
    )
    parser.add_argument(
        "--misfire-grace",
        type=float,
        default=float(_env("misfire-grace", str(defaults.misfire_grace_seconds)) or 0),
        help="seconds a missed due time may be late and still fire once "
        "[SCHEDULER_MISFIRE_GRACE; %(default)s]",
    )
    parser.add_argument(
        "--replica-id",
        default=_env("replica-id"),
        help="this replica's unique name among replicas sharing the database "
        "[SCHEDULER_REPLICA_ID; HOSTNAME-PID-RANDOM]",
    )
    parser.add_argument(
        "--lease-seconds",
        type=float,
        default=float(_env("lease-seconds", str(defaults.lease_seconds)) or 0),
        help="how long a replica's claim on its running jobs lasts unrenewed; another replica "
        "takes them over about this long after it dies [SCHEDULER_LEASE_SECONDS; %(default)s]",
    )
    # -- automatic retries (scheduler_service.retries) -------------------------------------------
    parser.add_argument(
        "--retry-backoff",
        type=float,
        default=float(_env("retry-backoff", str(defaults.retry_backoff_seconds)) or 0),
        help="seconds a failed run's first automatic retry (MaxRetries) waits; each further "
        "one waits twice as long [SCHEDULER_RETRY_BACKOFF; %(default)s]",
    )
    parser.add_argument(
        "--retry-backoff-max",
        type=float,
        default=float(_env("retry-backoff-max", str(defaults.retry_backoff_max_seconds)) or 0),
        help="the longest wait before an automatic retry, seconds "
        "[SCHEDULER_RETRY_BACKOFF_MAX; %(default)s]",
    )
    # ----------------------------------------------------------------------------------------
    parser.add_argument(
        "--history-days",
        type=float,
        default=float(_env("history-days", str(defaults.history_days)) or 0),
        help="days the scheduler keeps fire-ledger rows, finished runs' directories and logs, "
        "and spent outbox events; 0 keeps everything [SCHEDULER_HISTORY_DAYS; %(default)s]",
    )
    parser.add_argument(
        "--python",
        default=_env("python", defaults.python),
        help="interpreter for job scripts [SCHEDULER_PYTHON; %(default)s]",
    )
    parser.add_argument(
        "--spark-master",
        default=_env("spark-master", defaults.spark_master),
        help="where glueetl runs go: local, spark://HOST:PORT or k8s://... "
        "[SCHEDULER_SPARK_MASTER; %(default)s]",
    )
    parser.add_argument(
        "--spark-master-ui",
        default=_env("spark-master-ui"),
        help="a standalone master's web UI, http://HOST:PORT: each glueetl run first checks "
        "that some worker can hold its executors [SCHEDULER_SPARK_MASTER_UI; none]",
    )
    parser.add_argument(
        "--s3-root",
        default=_env("s3-root"),
        help="directory standing for S3: s3://bucket/key is DIR/bucket/key "
        "[SCHEDULER_S3_ROOT; DATA_DIR/s3]",
    )
    # -- who may call the internal API (servicekit.internal_auth) ------------------------------
    parser.add_argument(
        "--internal-secret",
        default=_env("internal-secret"),
        help="file (mode 0600) with the secret the catalog sends on every call; the catalog "
        "gets the same file [SCHEDULER_INTERNAL_SECRET; none: loopback only]",
    )
    parser.add_argument(
        "--internal-ca",
        default=_env("internal-ca"),
        help="mutual TLS: CA that signed the catalog's client certificate "
        "[SCHEDULER_INTERNAL_CA; none]",
    )
    parser.add_argument(
        "--internal-cert",
        default=_env("internal-cert"),
        help="mutual TLS: this scheduler's certificate [SCHEDULER_INTERNAL_CERT; none]",
    )
    parser.add_argument(
        "--internal-key",
        default=_env("internal-key"),
        help="mutual TLS: this scheduler's private key [SCHEDULER_INTERNAL_KEY; none]",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        default=_env("insecure", "") not in ("", "0", "false"),
        help="serve a non-loopback address without secret or mutual TLS: anyone who can "
        "connect may register jobs and start runs [SCHEDULER_INSECURE; off]",
    )
    # -- metrics and health over HTTP (servicekit.metrics) -------------------------------------
    parser.add_argument(
        "--http-listen",
        default=_env("http-listen"),
        help="HTTP address HOST:PORT for /metrics (Prometheus), /healthz and /readyz "
        "[SCHEDULER_HTTP_LISTEN; off]",
    )
    parser.add_argument(
        "--http-public",
        action="store_true",
        default=_env("http-public", "") not in ("", "0", "false"),
        help="allow --http-listen on a non-loopback address; it has no authentication and "
        "serves operational data only [SCHEDULER_HTTP_PUBLIC; off]",
    )
    # -- what a job sees and may read (job_env, run_access) ------------------------------------
    parser.add_argument(
        "--job-env",
        action="append",
        metavar="KEY=VALUE",
        help="add a variable to every run's environment (repeatable); runs otherwise see "
        "only PATH, the locale, JAVA_HOME/SPARK_HOME, TZ=UTC and HOME=their run directory "
        "[SCHEDULER_JOB_ENV: KEY=VALUE lines, one per line; none]",
    )
    parser.add_argument(
        "--job-env-file",
        default=_env("job-env-file"),
        metavar="FILE",
        help="KEY=VALUE lines (# comments) added to every run's environment; --job-env wins "
        "[SCHEDULER_JOB_ENV_FILE; none]",
    )
    parser.add_argument(
        "--script-roots",
        default=_env("script-roots"),
        metavar="DIR[,DIR]",
        help="directories ScriptLocation, --extra-py-files and --extra-jars must lie in "
        "(symlinks resolved); other runs end in ERROR [SCHEDULER_SCRIPT_ROOTS; any file]",
    )
    # -- the job sandbox (scheduler_service.sandbox) ------------------------------------------
    parser.add_argument(
        "--run-as",
        default=_env("run-as"),
        help="USER[:GROUP] every job runs as; needs root [SCHEDULER_RUN_AS; the service's user]",
    )
    parser.add_argument(
        "--run-uids",
        default=_env("run-uids"),
        help="LOW-HIGH: each run gets a free uid of its own from this range; needs root "
        "[SCHEDULER_RUN_UIDS; none]",
    )
    parser.add_argument(
        "--run-uids-group",
        default=_env("run-uids-group"),
        help="group of --run-uids runs [SCHEDULER_RUN_UIDS_GROUP; gid = uid]",
    )
    parser.add_argument(
        "--run-cgroups",
        default=_env("run-cgroups", "on" if defaults.run_cgroups else "off"),
        choices=["on", "off"],
        help="a cgroup per run where this process can make one [SCHEDULER_RUN_CGROUPS; "
        "%(default)s]",
    )
    for flag, value, what in (
        ("max-run-processes", defaults.max_run_processes, "processes and threads per run"),
        ("max-run-open-files", defaults.max_run_open_files, "open files per job process"),
        ("max-run-file-bytes", defaults.max_run_file_bytes, "largest file a job may write"),
        ("max-log-bytes", defaults.max_log_bytes, "cap of a run's output.log (head + tail)"),
        ("run-cpu-weight", defaults.run_cpu_weight, "CPU weight of a run, 1-10000"),
    ):
        env_name = PREFIX + flag.upper().replace("-", "_")
        parser.add_argument(
            f"--{flag}",
            type=int,
            default=int(_env(flag, str(value)) or 0),
            help=f"{what} [{env_name}; %(default)s]",
        )
    parser.add_argument(
        "--log-level",
        default=_env("log-level", "INFO"),
        help="DEBUG, INFO, WARNING ... [SCHEDULER_LOG_LEVEL; %(default)s]",
    )
    args = parser.parse_args(argv)
    for flag, value in (
        ("--retry-backoff", args.retry_backoff),
        ("--retry-backoff-max", args.retry_backoff_max),
    ):
        if not 0 <= value < math.inf:  # also rejects NaN
            parser.error(f"{flag} must be a finite number of seconds, 0 or more")
    if not args.history_days >= 0:  # also rejects NaN
        parser.error("--history-days must be 0 (keep everything) or more")
    if args.max_processes < 1:
        parser.error("--max-processes must be at least 1")
    if not args.lease_seconds >= MIN_LEASE_SECONDS:  # also rejects NaN
        parser.error(f"--lease-seconds must be at least {MIN_LEASE_SECONDS:g}")
    for flag in ("max_run_processes", "max_run_open_files", "max_run_file_bytes", "max_log_bytes"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag.replace('_', '-')} must be at least 1")
    if args.max_log_bytes < MIN_LOG_BYTES:
        parser.error(f"--max-log-bytes must be at least {MIN_LOG_BYTES}")
    if not 1 <= args.run_cpu_weight <= 10000:
        parser.error("--run-cpu-weight must be 1 to 10000")
    try:
        run_uids = parse_uid_range(args.run_uids) if args.run_uids else None
    except InvalidInputException as exc:
        parser.error(exc.message)
    replica_id = args.replica_id or defaults.replica_id
    if (
        len(replica_id) > MAX_REPLICA_ID_LENGTH
        or not replica_id.isprintable()
        or replica_id.strip() != replica_id
    ):
        parser.error(
            f"--replica-id must be 1 to {MAX_REPLICA_ID_LENGTH} printable characters, "
            "without leading or trailing spaces"
        )
    try:
        job_env = _job_env(args.job_env, args.job_env_file)
    except ValueError as exc:
        parser.error(str(exc))
    script_roots = tuple(Path(root) for root in (args.script_roots or "").split(",") if root)
    for root in script_roots:
        if not root.is_dir():
            parser.error(f"--script-roots: {root} is not a directory")
    try:
        problem = root_policy_problem(
            euid=os.geteuid(),
            run_as=args.run_as or None,
            run_uids=args.run_uids or None,
            script_roots=script_roots,
        )
    except ValueError as exc:  # an unknown --run-as user
        parser.error(f"--run-as: {exc}")
    if problem is not None:
        parser.error(problem)
    settings = SchedulerSettings(
        listen=args.listen,
        data_dir=Path(args.data_dir),
        database_url=args.database_url or None,
        max_processes=args.max_processes,
        stop_grace_seconds=args.stop_grace,
        python=args.python,
        misfire_grace_seconds=args.misfire_grace,
        replica_id=replica_id,
        lease_seconds=args.lease_seconds,
        history_days=args.history_days,
        retry_backoff_seconds=args.retry_backoff,
        retry_backoff_max_seconds=args.retry_backoff_max,
        spark_master=args.spark_master,
        spark_master_ui=args.spark_master_ui or None,
        s3_root=Path(args.s3_root) if args.s3_root else None,
        internal_secret=Path(args.internal_secret) if args.internal_secret else None,
        internal_ca=Path(args.internal_ca) if args.internal_ca else None,
        internal_cert=Path(args.internal_cert) if args.internal_cert else None,
        internal_key=Path(args.internal_key) if args.internal_key else None,
        insecure=args.insecure,
        http_listen=args.http_listen or None,
        http_public=args.http_public,
        job_env=job_env,
        script_roots=script_roots,
        run_as=args.run_as or None,
        run_uids=run_uids,
        run_uids_group=args.run_uids_group or None,
        run_cgroups=args.run_cgroups == "on",
        max_run_processes=args.max_run_processes,
        max_run_open_files=args.max_run_open_files,
        max_run_file_bytes=args.max_run_file_bytes,
        max_log_bytes=args.max_log_bytes,
        run_cpu_weight=args.run_cpu_weight,
        # This process is a scheduler of its own (not embedded in another program), so a
        # caretaker may take over its runs when it is gone.
        caretaker=True,
    )
    problem = settings.http_exposure_problem()
    if problem is not None:
        parser.error(problem)
    return settings, args.log_level


def _job_env(flags: list[str] | None, env_file: str | None) -> dict[str, str]:
    """The operator's job variables: the file's, then ``--job-env`` (else SCHEDULER_JOB_ENV).

    SCHEDULER_JOB_ENV holds one KEY=VALUE per line, like the file, because values (paths,
    JVM options, URLs) may hold commas.

    Raises:
        ValueError: a malformed assignment or an unreadable file; the message names it.
    """
    env = read_env_file(Path(env_file)) if env_file else {}
    if flags is not None:
        env |= dict(parse_assignment(flag, "--job-env") for flag in flags)
    else:
        env |= parse_assignments((_env("job-env") or "").splitlines(), PREFIX + "JOB_ENV")
    return env


def settings_environment(settings: SchedulerSettings, log_level: str) -> dict[str, str]:
    """This process's environment with ``settings`` as its SCHEDULER_* variables: what
    ``parse_settings([])`` in a child process (the caretaker) reads back as the same settings.

    Not written anywhere: it holds the database URL, credentials included.
    """
    values = {
        "data-dir": str(settings.data_dir.resolve()),
        "database-url": settings.effective_database_url,
        "max-processes": str(settings.max_processes),
        "stop-grace": repr(settings.stop_grace_seconds),
        "misfire-grace": repr(settings.misfire_grace_seconds),
        "replica-id": settings.replica_id,
        "lease-seconds": repr(settings.lease_seconds),
        "history-days": repr(settings.history_days),
        "retry-backoff": repr(settings.retry_backoff_seconds),
        "retry-backoff-max": repr(settings.retry_backoff_max_seconds),
        "python": settings.python,
        "spark-master": settings.spark_master,
        **({"spark-master-ui": settings.spark_master_ui} if settings.spark_master_ui else {}),
        "s3-root": str(settings.effective_s3_root),
        "log-level": log_level,
        **{
            name: str(path.resolve())
            for name, path in (
                ("internal-secret", settings.internal_secret),
                ("internal-ca", settings.internal_ca),
                ("internal-cert", settings.internal_cert),
                ("internal-key", settings.internal_key),
            )
            if path is not None
        },
        **({"insecure": "1"} if settings.insecure else {}),
        # Read back by the caretaker's parse_settings, which checks them (it serves no HTTP).
        "http-listen": settings.http_listen or "",
        **({"http-public": "1"} if settings.http_public else {}),
        # Already merged with the file's; values hold no newline (``job_env.value_problem``).
        "job-env": "\n".join(f"{key}={value}" for key, value in settings.job_env.items()),
        "script-roots": ",".join(str(root.resolve()) for root in settings.script_roots),
        # -- the job sandbox
        **({"run-as": settings.run_as} if settings.run_as else {}),
        **(
            {"run-uids": f"{settings.run_uids[0]}-{settings.run_uids[1]}"}
            if settings.run_uids
            else {}
        ),
        **({"run-uids-group": settings.run_uids_group} if settings.run_uids_group else {}),
        "run-cgroups": "on" if settings.run_cgroups else "off",
        "max-run-processes": str(settings.max_run_processes),
        "max-run-open-files": str(settings.max_run_open_files),
        "max-run-file-bytes": str(settings.max_run_file_bytes),
        "max-log-bytes": str(settings.max_log_bytes),
        "run-cpu-weight": str(settings.run_cpu_weight),
    }
    return {
        **os.environ,
        **{PREFIX + name.upper().replace("-", "_"): value for name, value in values.items()},
    }


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``scheduler-service``."""
    settings, level = parse_settings(argv)
    configure_logging(level)
    from scheduler_service.app import SchedulerApp

    return run_service(lambda: SchedulerApp(settings), "scheduler-service")
