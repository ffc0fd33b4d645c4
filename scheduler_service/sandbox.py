"""The job sandbox's policy: who a run's job runs as, its cgroups and its limits.

The supervisor (``supervisor``) applies it; this module decides it once at start-up
(``Sandbox.from_settings``: which cgroup hierarchies this process may use, found by
``cgroups.detect_cgroups``, which identity runs get) and per run (``run_limits``: memory
from the job's capacity), and turns it into the supervisor's flags
(``Sandbox.supervisor_args``).

What is in force, and when:

- Identity: only when the scheduler runs as root. ``run_as`` gives every run one user;
  ``run_uids`` gives each run a uid of its own from a range (like systemd's DynamicUser),
  taken by its supervisor for the run's life, with the gid of the same number or
  ``run_uids_group``. The supervisor stays root and drops privileges for the job only.
  Without root, jobs run as the service's user and nothing here changes that.
- Cgroups: one per run per hierarchy, under ``<this process's cgroup>/glue-runs`` (named by
  ``run_cgroup_name``: the run id after a tag of the run directory), where this
  process can create them (cgroup v1: the memory, pids and cpu hierarchies; cgroup v2: one
  directory, if its controllers can be enabled there). They hold the memory, process and CPU
  limits, and let the supervisor kill every process of the run.
- Rlimits, always: open files (RLIMIT_NOFILE), file size (RLIMIT_FSIZE); processes
  (RLIMIT_NPROC) only with ``run_uids`` (it counts per uid); a pythonshell job's memory as
  its address space (RLIMIT_AS) only without a memory cgroup (never a JVM's, which reserves
  far more address space than it uses).
- The output log cap, always.
"""

from __future__ import annotations

import grp
import hashlib
import logging
import os
import pwd
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scheduler_service.cgroups import CgroupSupport, detect_cgroups
from scheduler_service.commands import LOCAL_MASTER, CommandSettings, capacity
from servicekit.errors import InvalidInputException

log = logging.getLogger(__name__)

DEFAULT_MAX_RUN_PROCESSES = 1024
DEFAULT_MAX_RUN_OPEN_FILES = 65536
DEFAULT_MAX_RUN_FILE_BYTES = 64 * 2**30
DEFAULT_MAX_LOG_BYTES = 64 * 2**20
DEFAULT_CPU_WEIGHT = 100
# AWS: "A single DPU provides 4 vCPU and 16 GB of memory"; a pythonshell job has 0.0625 DPU
# (1 GB) unless MaxCapacity says 1.
DPU_BYTES = 16 * 2**30
PYTHONSHELL_DEFAULT_DPU = 0.0625
# Under the runs directory (no run id starts with a dot): one lock file per uid of
# ``run_uids`` (see the supervisor).
UID_LOCKS_DIR = ".uids"


def parse_run_as(spec: str) -> tuple[int, int]:
    """``USER[:GROUP]`` (names or numbers) as (uid, gid); the user's group if none is given.

    Raises:
        InvalidInputException: no such user or group.
    """
    user, _, group = spec.partition(":")
    try:
        entry = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
    except (KeyError, ValueError):
        if not user.isdigit():
            raise InvalidInputException(f"--run-as: no user {user!r}") from None
        uid, gid = int(user), int(user)
    else:
        uid, gid = entry.pw_uid, entry.pw_gid
    if group:
        gid = parse_group(group, "--run-as")
    return uid, gid


def parse_group(group: str, flag: str) -> int:
    """A group name or number as a gid.

    Raises:
        InvalidInputException: no such group.
    """
    if group.isdigit():
        return int(group)
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise InvalidInputException(f"{flag}: no group {group!r}") from None


def parse_uid_range(spec: str) -> tuple[int, int]:
    """``LOW-HIGH`` as a pair of uids.

    Raises:
        InvalidInputException: not two numbers, or not 0 < LOW <= HIGH < 2**31.
    """
    low, sep, high = spec.partition("-")
    if not (sep and low.isdigit() and high.isdigit()):
        raise InvalidInputException(f"--run-uids {spec!r} is not LOW-HIGH")
    pair = (int(low), int(high))
    if not 0 < pair[0] <= pair[1] < 2**31:
        raise InvalidInputException(f"--run-uids {spec!r} needs 0 < LOW <= HIGH < 2147483648")
    return pair


def protect_data_dir(data_dir: Path) -> None:
    """Keep jobs that run as other users out of the service's files: the data directory
    becomes 0711 (they pass through to their run's ``job/``, they list nothing) and its files
    lose every permission for group and others (the SQLite database, whose ``-wal`` and
    ``-shm`` files SQLite then creates with the same mode). Subdirectories are left alone:
    the runs directory guards itself (``runner``), and a script root must stay readable.
    """
    data_dir.chmod(0o711)
    for entry in os.scandir(data_dir):
        if entry.is_file(follow_symlinks=False):
            mode = entry.stat(follow_symlinks=False).st_mode
            if mode & 0o077:
                os.chmod(entry.path, stat.S_IMODE(mode) & 0o700)


def run_cgroup_name(runs_dir: Path, run_id: str) -> str:
    """A run's cgroup directory: its run id after a tag of the scheduler's run directory.

    Every scheduler in one cgroup makes its runs' cgroups in the same ``glue-runs`` directory
    (two installations on one host, the test suite's stacks). Named by run id alone, two runs
    of the same id in two of them shared one cgroup, and the first to end killed the other's
    job with everything else in it. Replicas of one site share the run directory, so each run
    still has exactly one name.
    """
    tag = hashlib.sha256(os.fsencode(os.path.abspath(runs_dir))).hexdigest()[:8]
    return f"{tag}-{run_id}"


@dataclass(frozen=True, slots=True, kw_only=True)
class RunLimits:
    """One run's limits that depend on its job."""

    memory_bytes: int | None = None
    """The run's memory (all its processes), from the job's capacity."""
    memory_note: str = ""
    """What the memory comes from, for the error message (``MaxCapacity 0.0625``)."""
    address_space_fallback: bool = False
    """Without a memory cgroup, cap the job's address space instead (pythonshell only)."""


def run_limits(record: Mapping[str, Any], commands: CommandSettings) -> RunLimits:
    """The memory a run may use, from its job's capacity as AWS sizes it.

    pythonshell: MaxCapacity DPUs of 16 GB (0.0625 by default: 1 GB). glueetl in local mode:
    everything of the job in one JVM and its Python workers, so the whole capacity
    (NumberOfWorkers x the WorkerType's memory), which is always above the JVM's heap
    (``commands`` gives it at most 10/16 of the executors' memory); on a cluster only the
    driver runs here, so one worker's memory.
    """
    command = record.get("_Command", {}).get("Name")
    if command == "pythonshell":
        try:
            dpu = float(record.get("MaxCapacity") or PYTHONSHELL_DEFAULT_DPU)
        except (TypeError, ValueError):
            dpu = PYTHONSHELL_DEFAULT_DPU
        return RunLimits(
            memory_bytes=max(1, int(dpu * DPU_BYTES)),
            memory_note=f"MaxCapacity {dpu:g}",
            address_space_fallback=True,
        )
    if command == "glueetl":
        size = capacity(record)
        workers = size.workers if commands.spark_master == LOCAL_MASTER else 1
        note = (
            f"MaxCapacity {size.workers}"
            if size.worker_type == "Standard"
            else f"{workers} x WorkerType {size.worker_type}"
        )
        return RunLimits(memory_bytes=workers * size.memory_gib * 2**30, memory_note=note)
    return RunLimits()


@dataclass(frozen=True, slots=True, kw_only=True)
class Sandbox:
    """The sandbox every run gets (see the module docstring); tests build it directly."""

    run_as: tuple[int, int] | None = None
    """(uid, gid) every job runs as; None: the service's own (or ``run_uids``)."""
    run_uids: tuple[int, int] | None = None
    """A uid of its own for each run, from this inclusive range (wins over ``run_as``)."""
    run_uids_gid: int | None = None
    """The gid of ``run_uids`` runs; None: the same number as the uid."""
    cgroups: CgroupSupport = field(default_factory=CgroupSupport)
    """Where run cgroups are made; none by default."""
    max_processes: int | None = DEFAULT_MAX_RUN_PROCESSES
    """Processes and threads per run (pids cgroup; RLIMIT_NPROC with ``run_uids``)."""
    max_open_files: int | None = DEFAULT_MAX_RUN_OPEN_FILES
    """RLIMIT_NOFILE of each job process."""
    max_file_bytes: int | None = DEFAULT_MAX_RUN_FILE_BYTES
    """RLIMIT_FSIZE: the largest file a job may write."""
    max_log_bytes: int | None = DEFAULT_MAX_LOG_BYTES
    """output.log's cap: the first and the last half are kept."""
    cpu_weight: int | None = DEFAULT_CPU_WEIGHT
    """CPU share of a run against the others (cgroup v2 weight, 1-10000; v1 shares x1024/100)."""

    @classmethod
    def from_settings(
        cls,
        *,
        run_as: str | None,
        run_uids: tuple[int, int] | None,
        run_uids_group: str | None,
        cgroups: bool,
        max_processes: int,
        max_open_files: int,
        max_file_bytes: int,
        max_log_bytes: int,
        cpu_weight: int,
    ) -> Sandbox:
        """The sandbox for these settings on this machine; logs which mechanisms are in force.

        Raises:
            InvalidInputException: ``run_as`` or ``run_uids_group`` names no user or group.
        """
        root = os.geteuid() == 0
        identity = parse_run_as(run_as) if run_as and root else None
        if (run_as or run_uids) and not root:
            log.warning(
                "--run-as and --run-uids need root; jobs run as this service's user",
                extra={"uid": os.geteuid()},
            )
        sandbox = cls(
            run_as=identity,
            run_uids=run_uids if root else None,
            run_uids_gid=parse_group(run_uids_group, "--run-uids-group")
            if run_uids_group
            else None,
            cgroups=detect_cgroups() if cgroups else CgroupSupport(reason="turned off"),
            max_processes=max_processes,
            max_open_files=max_open_files,
            max_file_bytes=max_file_bytes,
            max_log_bytes=max_log_bytes,
            cpu_weight=cpu_weight,
        )
        log.info("job sandbox", extra=sandbox.describe())
        return sandbox

    @property
    def changes_identity(self) -> bool:
        """Whether jobs run as a user other than the service's (then they get a ``WORK_DIR``)."""
        if self.run_uids is not None:
            return True
        return self.run_as is not None and self.run_as != (os.geteuid(), os.getegid())

    def describe(self) -> dict[str, object]:
        """Which mechanisms are in force, for the start-up log line."""
        if self.run_uids is not None:
            identity = f"a uid per run from {self.run_uids[0]}-{self.run_uids[1]}"
        elif self.run_as is not None:
            identity = f"uid {self.run_as[0]} gid {self.run_as[1]}"
        else:
            identity = f"the service's (uid {os.geteuid()})"
        cgroups = self.cgroups
        return {
            "identity": identity,
            "cgroups": f"v{cgroups.version} ({', '.join(cgroups.controllers)})"
            if cgroups.version
            else "none",
            "cgroups_note": cgroups.reason,
            # The supervisor sets it for every run; only a kernel before 3.4 lacks it.
            "subreaper": "every run",
            "memory": "cgroup"
            if "memory" in cgroups.controllers
            else "pythonshell: RLIMIT_AS; glueetl: none",
            "processes": " + ".join(
                name
                for name, on in (
                    ("pids cgroup", "pids" in cgroups.controllers),
                    ("RLIMIT_NPROC", self.run_uids is not None),
                )
                if on
            )
            or "none (needs a pids cgroup or --run-uids)",
            "max_run_processes": self.max_processes,
            "max_run_open_files": self.max_open_files,
            "max_run_file_bytes": self.max_file_bytes,
            "max_log_bytes": self.max_log_bytes,
        }

    def supervisor_args(
        self, run_id: str, runs_dir: Path, work_dir: Path, limits: RunLimits | None
    ) -> list[str]:
        """The supervisor's sandbox flags for one run (see ``supervisor``)."""
        args: list[str] = []
        if self.run_uids is not None:
            args += ["--uid-range", f"{self.run_uids[0]}-{self.run_uids[1]}"]
            args += ["--uid-locks", str(runs_dir / UID_LOCKS_DIR)]
            if self.run_uids_gid is not None:
                args += ["--gid", str(self.run_uids_gid)]
        elif self.run_as is not None:
            args += ["--uid", str(self.run_as[0]), "--gid", str(self.run_as[1])]
        if self.changes_identity:
            args += ["--job-dir", str(work_dir)]
        for parent in self.cgroups.parents:
            args += ["--cgroup", os.path.join(parent, run_cgroup_name(runs_dir, run_id))]
        if limits is not None and limits.memory_bytes is not None:
            args += ["--memory", str(limits.memory_bytes), "--memory-note", limits.memory_note]
            if limits.address_space_fallback:
                args += ["--memory-fallback", "as"]
        for flag, value in (
            ("--max-processes", self.max_processes),
            ("--max-open-files", self.max_open_files),
            ("--max-file-bytes", self.max_file_bytes),
            ("--cpu-weight", self.cpu_weight),
            ("--max-log-bytes", self.max_log_bytes),
        ):
            if value is not None:
                args += [flag, str(value)]
        return args
