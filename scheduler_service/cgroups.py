"""Cgroups for runs: which hierarchies this process may make run cgroups in (``detect_cgroups``).

One cgroup per run per hierarchy, under ``<this process's cgroup>/glue-runs``, where this
process can create them (cgroup v1: the memory, pids and cpu hierarchies; cgroup v2: one
directory, if its controllers can be enabled there). The sandbox (``sandbox``) records what was
found; the supervisor makes and fills the cgroups.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

# Each run's cgroup is <this process's cgroup>/CGROUP_PARENT/<run directory tag>-<run id>
# (sandbox.run_cgroup_name).
CGROUP_PARENT = "glue-runs"
CGROUP_CONTROLLERS = ("memory", "pids", "cpu")


@dataclass(frozen=True, slots=True, kw_only=True)
class CgroupSupport:
    """Where run cgroups can be made on this machine, for this process."""

    version: int | None = None
    """1 or 2; None: no cgroups for runs."""
    parents: tuple[str, ...] = ()
    """The directories run cgroups are made in, one per hierarchy used."""
    controllers: tuple[str, ...] = ()
    """The controllers they have (memory, pids, cpu)."""
    reason: str = ""
    """Why there are none, or what is missing."""


def _mountinfo() -> list[tuple[str, str, str, str]]:
    """(root, mount point, fs type, super options) of each mount."""
    mounts = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields, tail = left.split(), right.split()
            if len(fields) >= 5 and len(tail) >= 3:
                mounts.append((fields[3], fields[4], tail[0], tail[2]))
    return mounts


def _own_cgroups() -> dict[str, str]:
    """This process's cgroup path per v1 controller, and under ``""`` the v2 one."""
    paths = {}
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for name in controllers.split(",") if controllers else [""]:
                paths[name] = path
    return paths


def _within(mount_root: str, path: str) -> str:
    """``path`` (from /proc/self/cgroup) relative to a mount of the hierarchy at mount_root."""
    if mount_root != "/" and path.startswith(mount_root):
        path = path[len(mount_root) :]
    return path.lstrip("/")


def _make_parent(directory: str) -> str | None:
    """Create a parent for run cgroups; None if it works, else why not."""
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        return f"cannot create {directory}: {exc.strerror or exc}"
    return None


def detect_cgroups() -> CgroupSupport:
    """Which cgroup hierarchies this process can make run cgroups in (creating the parents)."""
    try:
        mounts = _mountinfo()
        own = _own_cgroups()
    except OSError as exc:
        return CgroupSupport(reason=f"cannot read /proc: {exc}")
    v2_root = next((m for m in mounts if m[2] == "cgroup2" and m[1] == "/sys/fs/cgroup"), None)
    if v2_root is not None:
        return _detect_v2(v2_root[0], v2_root[1], own.get("", "/"))
    parents, controllers, problems = [], [], []
    for name in CGROUP_CONTROLLERS:
        mount = next(
            (m for m in mounts if m[2] == "cgroup" and name in m[3].split(",")),
            None,
        )
        if mount is None or name not in own:
            problems.append(f"no {name} hierarchy")
            continue
        parent = os.path.join(mount[1], _within(mount[0], own[name]), CGROUP_PARENT)
        problem = _make_parent(parent)
        if problem is not None:
            problems.append(problem)
            continue
        if parent not in parents:
            parents.append(parent)
        controllers.append(name)
    if not parents:
        return CgroupSupport(reason="; ".join(problems) or "no cgroup v1 hierarchy")
    return CgroupSupport(
        version=1,
        parents=tuple(parents),
        controllers=tuple(controllers),
        reason="; ".join(problems),
    )


def _detect_v2(mount_root: str, mount_point: str, path: str) -> CgroupSupport:
    """cgroup v2: run cgroups under ours, if the controllers can be enabled down to them.

    The kernel refuses to enable controllers for the children of a cgroup that itself holds
    processes (other than the root), so this works for a scheduler started in a cgroup
    delegated to it whose processes live in a leaf (systemd ``Delegate=yes`` with the
    service in a sub-cgroup), or as root in the root cgroup; otherwise there are no run
    cgroups and the reason says so.
    """
    own_dir = os.path.join(mount_point, _within(mount_root, path))
    parent = os.path.join(own_dir, CGROUP_PARENT)
    try:
        with open(os.path.join(own_dir, "cgroup.controllers")) as f:
            available = f.read().split()
    except OSError as exc:
        return CgroupSupport(reason=f"cgroup v2: cannot read {own_dir}: {exc.strerror or exc}")
    wanted = [name for name in CGROUP_CONTROLLERS if name in available]
    if not wanted:
        return CgroupSupport(reason=f"cgroup v2: no memory, pids or cpu controller in {own_dir}")
    problem = _make_parent(parent)
    if problem is not None:
        return CgroupSupport(reason=f"cgroup v2: {problem}")
    enable = " ".join(f"+{name}" for name in wanted)
    for directory in (own_dir, parent):
        try:
            with open(os.path.join(directory, "cgroup.subtree_control"), "w") as f:
                f.write(enable)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.rmdir(parent)
            return CgroupSupport(
                reason=f"cgroup v2: cannot enable {enable} in {directory} ({exc.strerror or exc}; "
                "a cgroup that holds processes cannot: delegate a cgroup whose processes sit in "
                "a leaf)"
            )
    return CgroupSupport(version=2, parents=(parent,), controllers=tuple(wanted))
