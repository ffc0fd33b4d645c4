"""The scheduler's settings: one frozen value built by ``cli`` (or directly by tests)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from scheduler_service.commands import CommandSettings
from scheduler_service.job_env import inherited_environment
from scheduler_service.leases import DEFAULT_LEASE_SECONDS, default_replica_id
from scheduler_service.run_access import run_identity
from scheduler_service.sandbox import (
    DEFAULT_CPU_WEIGHT,
    DEFAULT_MAX_LOG_BYTES,
    DEFAULT_MAX_RUN_FILE_BYTES,
    DEFAULT_MAX_RUN_OPEN_FILES,
    DEFAULT_MAX_RUN_PROCESSES,
    Sandbox,
)
from servicekit.db import sqlite_url
from servicekit.server import is_loopback


@dataclass(frozen=True, slots=True, kw_only=True)
class SchedulerSettings:
    """How one scheduler process runs."""

    listen: str = "127.0.0.1:50052"
    """gRPC listen address, HOST:PORT (port 0 picks a free port)."""
    data_dir: Path = Path("var")
    """Where the SQLite database (by default) and each run's directory and log live."""
    database_url: str | None = None
    """SQLAlchemy URL; default: a SQLite file ``scheduler.db`` in the data directory."""
    max_processes: int = 16
    """Job processes that may run at once; further runs wait in WAITING, oldest first."""
    stop_grace_seconds: float = 10.0
    """After SIGTERM (stop or timeout), how long a job has before SIGKILL."""
    python: str = field(default=sys.executable)
    """The interpreter that runs pythonshell scripts and Spark's Python driver and workers."""
    spark_master: str = "local"
    """Where glueetl runs go: ``local`` (one JVM on this machine, sized from the job and capped
    by the machine), ``spark://HOST:PORT`` (a standalone cluster) or ``k8s://...``."""
    spark_master_ui: str | None = None
    """A standalone master's web UI, ``http://HOST:PORT``: checked before each glueetl run so a
    run whose executors no worker can hold ends FAILED instead of waiting forever."""
    s3_root: Path | None = None
    """The directory that stands for S3 (``s3://bucket/key`` is ``<s3_root>/bucket/key``);
    default ``<data-dir>/s3``."""
    misfire_grace_seconds: float = 60.0
    """A due time missed while no scheduler ran still fires (once) if it is at most this old."""
    shutdown_grace_seconds: float = 5.0
    """On SIGTERM, how long in-flight calls get to finish; running jobs are never killed."""
    replica_id: str = field(default_factory=default_replica_id)
    """This replica's name in the run table (``scheduler_runs.owner``); unique among live
    replicas. Default ``<hostname>-<pid>-<random>``; a stable id lets a restarted replica
    re-adopt its runs at once instead of after their leases expire (see ``leases``)."""
    lease_seconds: float = DEFAULT_LEASE_SECONDS
    """How long a replica's claim on its in-flight runs lasts unrenewed (renewed every third of
    it): after a replica dies, another takes its runs over within about this long."""

    # -- automatic retries (scheduler_service.retries) -------------------------------------------
    retry_backoff_seconds: float = 1.0
    """How long a failed run's first automatic retry waits; each further one waits twice as
    long as the one before, up to ``retry_backoff_max_seconds``."""
    retry_backoff_max_seconds: float = 60.0
    """The longest wait before an automatic retry."""
    # ----------------------------------------------------------------------------------------

    history_days: float = 30.0
    """How long the scheduler keeps its own history - fire-ledger rows, finished runs with
    their run directories (logs), outbox events the catalog no longer needs; 0 keeps all."""
    # -- who may call the internal API (servicekit.internal_auth) ------------------------------
    internal_secret: Path | None = None
    """A file (mode 0600) holding the secret every internal API call must carry; the catalog
    gets the same file. None: calls need no secret (then only loopback is allowed)."""
    internal_ca: Path | None = None
    """Mutual TLS: the CA whose client certificates (the catalog's) are admitted."""
    internal_cert: Path | None = None
    """Mutual TLS: this scheduler's server certificate (PEM)."""
    internal_key: Path | None = None
    """Mutual TLS: the private key of ``internal_cert`` (PEM)."""
    insecure: bool = False
    """Serve a non-loopback address with neither secret nor mutual TLS (anyone may call)."""

    # -- metrics and health over HTTP (servicekit.metrics) -------------------------------------
    http_listen: str | None = None
    """Address of the HTTP listener for /metrics, /healthz and /readyz, HOST:PORT; None: off."""
    http_public: bool = False
    """Allow ``http_listen`` beyond loopback: it has no authentication (operational data only)."""

    # -- what a job sees and may read (job_env, run_access) ------------------------------------
    job_env: Mapping[str, str] = field(default_factory=dict)
    """Variables added to every run's environment (``--job-env``, ``--job-env-file``); a run
    otherwise sees only an allow-list, never the scheduler's own variables (``job_env``)."""
    passed_env: Mapping[str, str] = field(default_factory=inherited_environment)
    """The scheduler's values of the allow-listed variables (PATH, locale, JAVA_HOME ...)."""
    script_roots: tuple[Path, ...] = ()
    """Directories every ScriptLocation and ``--extra-py-files``/``--extra-jars`` entry must
    lie in, after resolving symlinks and ``..``; () allows any file the run can read."""

    class_archives: Path | None = None
    """Where the glueetl drivers' shared class-data archive is kept (``class_archive``); None:
    ``<data-dir>/class-archives``. Not a command-line option: the test suite's schedulers share
    one directory, so the warm-up that writes the archive runs once per test session."""

    caretaker: bool = False
    """On a shared database (PostgreSQL), start a watcher that brings up a caretaker for this
    data directory's runs when this process ends (see ``leases``). Set by the command line;
    off for a scheduler embedded in another process, whose end is not the scheduler's."""

    # -- the job sandbox: identity, cgroups and limits of each run (sandbox, supervisor) -----
    run_as: str | None = None
    """``USER[:GROUP]`` every job runs as; needs root (without root jobs run as the service's
    user). None: the service's user, unless ``run_uids``."""
    run_uids: tuple[int, int] | None = None
    """``(LOW, HIGH)``: each run gets a uid of its own from this range, free while it runs
    (like systemd's DynamicUser); needs root. Wins over ``run_as``."""
    run_uids_group: str | None = None
    """The group of ``run_uids`` runs (name or gid); None: the gid of the same number."""
    run_cgroups: bool = True
    """Give each run cgroups of its own (memory, pids, cpu) where this process can make them."""
    max_run_processes: int = DEFAULT_MAX_RUN_PROCESSES
    """Processes and threads one run may have at once (pids cgroup; RLIMIT_NPROC with
    ``run_uids``)."""
    max_run_open_files: int = DEFAULT_MAX_RUN_OPEN_FILES
    """Open files per job process (RLIMIT_NOFILE)."""
    max_run_file_bytes: int = DEFAULT_MAX_RUN_FILE_BYTES
    """The largest file a job may write (RLIMIT_FSIZE)."""
    max_log_bytes: int = DEFAULT_MAX_LOG_BYTES
    """A run's output.log cap: its first and last halves are kept, the middle cut."""
    run_cpu_weight: int = DEFAULT_CPU_WEIGHT
    """A run's CPU weight against the other runs (1-10000, 100 normal; cgroup cpu)."""

    def make_sandbox(self) -> Sandbox:
        """The job sandbox on this machine (detects cgroups, logs what is in force).

        Raises:
            InvalidInputException: ``run_as`` or ``run_uids_group`` names no user or group.
        """
        return Sandbox.from_settings(
            run_as=self.run_as,
            run_uids=self.run_uids,
            run_uids_group=self.run_uids_group,
            cgroups=self.run_cgroups,
            max_processes=self.max_run_processes,
            max_open_files=self.max_run_open_files,
            max_file_bytes=self.max_run_file_bytes,
            max_log_bytes=self.max_log_bytes,
            cpu_weight=self.run_cpu_weight,
        )

    def http_exposure_problem(self) -> str | None:
        """Why ``http_listen`` must not be served, or None."""
        if self.http_listen is None or self.http_public or is_loopback(self.http_listen):
            return None
        return (
            f"--http-listen {self.http_listen} is reachable from the network, and /metrics has "
            "no authentication: listen on a loopback address, or add --http-public to serve "
            "the metrics and health endpoints (operational data only) to anyone who can connect"
        )

    @property
    def effective_database_url(self) -> str:
        """The database URL actually used."""
        return self.database_url or sqlite_url(self.data_dir.resolve() / "scheduler.db")

    @property
    def effective_s3_root(self) -> Path:
        """The directory S3 paths map to."""
        return (self.s3_root or self.data_dir / "s3").resolve()

    @property
    def commands(self) -> CommandSettings:
        """What shapes a run's command line (``commands``)."""
        return CommandSettings(
            python=self.python,
            spark_master=self.spark_master,
            s3_root=self.effective_s3_root,
            spark_master_ui=self.spark_master_ui,
            passed_env=self.passed_env,
            job_env=self.job_env,
            script_roots=tuple(root.resolve() for root in self.script_roots),
            private_paths=self.private_paths,
            run_identity=run_identity(
                self.run_as, self.run_uids, self.run_uids_group, euid=os.geteuid()
            ),
            class_archives=(self.class_archives or self.data_dir / "class-archives").resolve(),
        )

    @property
    def private_paths(self) -> tuple[Path, ...]:
        """The scheduler's own files, never a job's script: the data directory (but its S3
        root) and the internal secret and TLS key."""
        paths = [self.data_dir, self.internal_secret, self.internal_key]
        return tuple(Path(os.path.realpath(path)) for path in paths if path is not None)

    @property
    def runs_dir(self) -> Path:
        """Each run's directory (supervisor record, exit status, output.log)."""
        return self.data_dir.resolve() / "runs"
