"""One data directory as a *site*: its id, and which of its scheduler processes are alive.

Replicas and caretakers that share a data directory run on one machine (one PID namespace), so
they can tell for certain whether another of them is alive, which replicas on other machines
can only guess at from an expired lease (see ``leases``). Each process registers itself in
``<runs_dir>/.processes/`` when it starts: its replica id, its role, and its identity (pid,
process start time, boot id), the same identity that names a run's supervisor.
"""

from __future__ import annotations

import contextlib
import enum
import hashlib
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from scheduler_service import supervisor as _sv
from scheduler_service.run_outcome import is_process

SITE_FILE = ".data-dir-id"
PROCESSES_DIR = ".processes"
# Entries of processes that died this long ago are removed when a process registers; until then
# their runs can be taken at once rather than after their leases expire.
STALE_ENTRY_SECONDS = 86400.0


def site_id(runs_dir: Path) -> str:
    """The id of the data directory that holds ``runs_dir``, created on first use.

    Created by writing a temporary file and hard-linking it into place, so two replicas
    starting at once on a new directory agree on one id.
    """
    runs_dir.mkdir(parents=True, exist_ok=True)
    path = runs_dir / SITE_FILE
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    tmp = runs_dir / f".{SITE_FILE}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    tmp.write_text(secrets.token_hex(16) + "\n")
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass  # another replica won the race; use its id
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return path.read_text().strip()


class Role(enum.StrEnum):
    """What a registered process is."""

    REPLICA = "replica"
    """A scheduler replica: serves the API, fires triggers, launches runs."""
    CARETAKER = "caretaker"
    """Looks after a dead replica's runs until a replica of the site is alive again."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SiteProcess:
    """One registered process of the site."""

    replica_id: str
    role: Role
    pid: int
    start_time: int
    boot_id: str

    def is_alive(self) -> bool:
        """Whether this very process still runs (a reused pid is another process)."""
        return is_process(self.pid, self.start_time, self.boot_id)


class SiteProcesses:
    """The registry of a site's scheduler processes (``<runs_dir>/.processes/``)."""

    def __init__(self, runs_dir: Path) -> None:
        self._dir = runs_dir / PROCESSES_DIR

    def _path(self, replica_id: str) -> Path:
        # Replica ids are free text; the file name must not be.
        return self._dir / (hashlib.sha256(replica_id.encode()).hexdigest()[:32] + ".json")

    def register(self, replica_id: str, role: Role) -> None:
        """Record this process under ``replica_id``; prune entries of long-dead processes."""
        self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        pid = os.getpid()
        start_time = _sv.proc_start_time(pid)
        assert start_time is not None  # our own /proc entry
        entry = {
            "replica_id": replica_id,
            "role": role.value,
            "pid": pid,
            "start_time": start_time,
            "boot_id": _sv.boot_id(),
        }
        path = self._path(replica_id)
        tmp = path.with_suffix(f".{pid}.tmp")
        tmp.write_text(json.dumps(entry))
        tmp.replace(path)
        self._prune(keep=path)

    def _prune(self, keep: Path) -> None:
        now = time.time()
        for path in self._dir.glob("*.json"):
            if path == keep:
                continue
            found = self._read(path)
            with contextlib.suppress(OSError):
                if (found is None or not found.is_alive()) and (
                    now - path.stat().st_mtime > STALE_ENTRY_SECONDS
                ):
                    path.unlink()

    @staticmethod
    def _read(path: Path) -> SiteProcess | None:
        try:
            data = json.loads(path.read_bytes())
            return SiteProcess(
                replica_id=str(data["replica_id"]),
                role=Role(data["role"]),
                pid=int(data["pid"]),
                start_time=int(data["start_time"]),
                boot_id=str(data["boot_id"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def get(self, replica_id: str) -> SiteProcess | None:
        """The registered process of ``replica_id``; None if it never ran on this site."""
        found = self._read(self._path(replica_id))
        return found if found is not None and found.replica_id == replica_id else None

    def dead(self, replica_ids: list[str]) -> list[str]:
        """Those of ``replica_ids`` that ran on this site and whose process is gone."""
        dead = []
        for replica_id in replica_ids:
            found = self.get(replica_id)
            if found is not None and not found.is_alive():
                dead.append(replica_id)
        return dead

    def live_replicas(self, *, besides: str | None = None) -> list[str]:
        """The replica ids (role REPLICA) of this site whose processes are alive."""
        if not self._dir.is_dir():
            return []
        live = []
        for path in self._dir.glob("*.json"):
            found = self._read(path)
            if (
                found is not None
                and found.role is Role.REPLICA
                and found.replica_id != besides
                and found.is_alive()
            ):
                live.append(found.replica_id)
        return sorted(live)
