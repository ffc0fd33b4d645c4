"""What a run may read: its identity's permission bits, the script roots, the root policy.

The scheduler decides before a launch whether the run's identity can reach its script, from
the permission bits along the path (no fork, no ``setuid``): a script the run could not read
ends the run ERROR naming the path and nothing of the file, and is never opened or compiled
by a process with more rights than the run. ``--script-roots`` narrows ScriptLocation and the
``--extra-*`` files to a few directories (after resolving symlinks and ``..``). At start-up the
same bits tell whether the run identity can reach the interpreter and the runtime at all.

The bits are the classic owner/group/other ones; POSIX ACLs and mandatory access control
(SELinux, AppArmor) are not consulted, so the kernel may still refuse what this allows (the
run then fails with Python's own "Permission denied", which names the path only).
"""

from __future__ import annotations

import errno
import grp
import os
import pwd
import shutil
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

R, W, X = 4, 2, 1
# As the kernel's MAXSYMLINKS: more links than this on one path is a loop.
MAX_SYMLINKS = 40
ROOT_UID = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Identity:
    """A user a run's process runs as: the uid, primary gid and supplementary groups."""

    uid: int
    gid: int
    groups: frozenset[int] = frozenset()
    name: str = ""
    """For messages: the user name, or empty."""

    @classmethod
    def current(cls) -> Identity:
        """This process's effective identity (runs without ``--run-as`` get it)."""
        uid = os.geteuid()
        return cls(
            uid=uid, gid=os.getegid(), groups=frozenset(os.getgroups()), name=_user_name(uid)
        )

    @classmethod
    def of_user(cls, spec: str) -> Identity:
        """The identity ``USER[:GROUP]`` names (names or numbers), with the user's groups.

        Raises:
            ValueError: no such user or group.
        """
        user, _, group = spec.partition(":")
        try:
            entry = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
        except (KeyError, OverflowError):
            if not user.isdigit():
                raise ValueError(f"no such user {user!r}") from None
            uid, gid, name, groups = int(user), int(user), user, frozenset[int]()
        else:
            uid, gid, name = entry.pw_uid, entry.pw_gid, entry.pw_name
            groups = frozenset(os.getgrouplist(entry.pw_name, entry.pw_gid))
        if group:
            try:
                gid = (
                    grp.getgrgid(int(group)).gr_gid
                    if group.isdigit()
                    else grp.getgrnam(group).gr_gid
                )
            except (KeyError, OverflowError):
                if not group.isdigit():
                    raise ValueError(f"no such group {group!r}") from None
                gid = int(group)
            groups = frozenset({gid})
        return cls(uid=uid, gid=gid, groups=groups | {gid}, name=name)

    def describe(self) -> str:
        """``nobody (uid 65534)`` for messages."""
        return f"{self.name} (uid {self.uid})" if self.name else f"uid {self.uid}"

    def allows(self, st: os.stat_result, wanted: int) -> bool:
        """Whether the bits of ``st`` grant this identity ``wanted`` (``R|X`` ...)."""
        mode = st.st_mode
        if self.uid == ROOT_UID:
            # Root reads and searches anything; it executes a file only if some x bit is set.
            return not wanted & X or stat.S_ISDIR(mode) or bool(mode & 0o111)
        if st.st_uid == self.uid:
            granted = (mode >> 6) & 7
        elif st.st_gid == self.gid or st.st_gid in self.groups:
            granted = (mode >> 3) & 7
        else:
            granted = mode & 7
        return granted & wanted == wanted


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return ""


def _lookups(path: str) -> tuple[list[str], str]:
    """The directories the kernel searches to open ``path`` (absolute), following symlinks
    as it does, and the file finally reached.

    Raises:
        OSError: a component is missing, not a directory, or links loop.
    """
    searched: list[str] = []
    pending = [part for part in path.split("/") if part]
    current = "/"
    links = 0
    while pending:
        name = pending.pop(0)
        if name == ".":
            continue
        searched.append(current)
        if name == "..":
            current = os.path.dirname(current)
            continue
        candidate = os.path.join(current, name)
        st = os.lstat(candidate)
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > MAX_SYMLINKS:
                raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), path)
            target = os.readlink(candidate)
            if target.startswith("/"):
                current = "/"
            pending[:0] = [part for part in target.split("/") if part]
            continue
        if pending and not stat.S_ISDIR(st.st_mode):
            raise OSError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), candidate)
        current = candidate
    return list(dict.fromkeys(searched)), current


def reach_problem(path: Path | str, identity: Identity, wanted: int = R) -> str | None:
    """Why ``identity`` cannot open ``path`` for ``wanted`` (``R``, ``R|X``); None if it can.

    The message names the path and the directory or file that stops it, never its contents.
    """
    try:
        searched, final = _lookups(os.path.abspath(path))
        for directory in searched:
            if not identity.allows(os.stat(directory), X):
                return (
                    f"{identity.describe()} cannot enter the directory {directory} "
                    f"(on the way to {path})"
                )
        st = os.stat(final)
    except FileNotFoundError:
        return f"{path}: no such file"
    except OSError as exc:
        return f"{path}: {exc.strerror}"
    if not identity.allows(st, wanted):
        if stat.S_ISDIR(st.st_mode):
            what = "enter the directory" if wanted == X else "list and enter the directory"
        else:
            what = {R: "read", R | X: "read and execute", X: "execute"}.get(wanted, "open")
        shown = str(path) if final == os.path.abspath(path) else f"{path} ({final})"
        return f"{identity.describe()} cannot {what} {shown}"
    return None


def outside_roots(resolved: Path, roots: Sequence[Path]) -> bool:
    """Whether ``resolved`` (symlinks and ``..`` resolved) lies outside every root."""
    return bool(roots) and not any(resolved.is_relative_to(root) for root in roots)


def java_path(env: Mapping[str, str]) -> Path | None:
    """The ``java`` a run's spark-submit would start (JAVA_HOME, else PATH); None if none."""
    home = env.get("JAVA_HOME")
    if home:
        return Path(home) / "bin" / "java"
    found = shutil.which("java", path=env.get("PATH", os.defpath))
    return Path(found) if found else None


def unreachable(needed: Iterable[tuple[Path, int]], identity: Identity) -> list[str]:
    """The problems ``reach_problem`` finds with ``needed``, one per path."""
    problems = (reach_problem(path, identity, wanted) for path, wanted in dict(needed).items())
    return list(dict.fromkeys(problem for problem in problems if problem))


def run_identity(
    run_as: str | None,
    run_uids: tuple[int, int] | None,
    run_uids_group: str | None = None,
    *,
    euid: int,
) -> Identity | None:
    """The identity whose permission bits decide what runs may read, for ``--run-as`` /
    ``--run-uids`` (which need root; otherwise None: runs are the scheduler's own user).

    With ``run_uids`` every run has a uid of its own that owns nothing outside its run, so the
    lowest stands for them all.

    Raises:
        ValueError: no such user or group.
    """
    if euid != ROOT_UID:
        return None
    if run_uids is not None:
        low = run_uids[0]
        gid = Identity.of_user(f"{low}:{run_uids_group}").gid if run_uids_group else low
        return Identity(uid=low, gid=gid, groups=frozenset({gid}))
    if run_as is not None:
        return Identity.of_user(run_as)
    return None


def root_policy_problem(
    *, euid: int, run_as: str | None, run_uids: object | None, script_roots: Sequence[Path]
) -> str | None:
    """Why a scheduler started by ``euid`` must not start with this run identity; None if
    it may.

    Jobs are other people's code: a scheduler running as root never runs them as root unless
    told to. It refuses to start as root with neither ``--run-as`` nor ``--run-uids``; and
    ``--run-as root`` needs ``--script-roots``, so a ScriptLocation can only name files the
    operator put where scripts live (a root job compiling ``/etc/shadow`` would print its
    lines in the SyntaxError that becomes the run's ErrorMessage).
    """
    if euid != ROOT_UID:
        return None
    if run_as is None and run_uids is None:
        return (
            "refusing to start as root without a run identity: jobs would run as root. Give "
            "--run-as USER[:GROUP] (e.g. --run-as nobody) or --run-uids LOW-HIGH "
            "(SCHEDULER_RUN_AS / SCHEDULER_RUN_UIDS); --run-as root runs jobs as root on "
            "purpose and then needs --script-roots"
        )
    if run_as is not None and Identity.of_user(run_as).uid == ROOT_UID and not script_roots:
        return (
            "--run-as root needs --script-roots DIR[,DIR] (SCHEDULER_SCRIPT_ROOTS): a job "
            "running as root may only run scripts from directories the operator chose"
        )
    return None
