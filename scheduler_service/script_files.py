"""A run's files: the local path a ScriptLocation or an ``--extra-*`` entry names, and the rules
it is held to.

S3 paths (``s3://bucket/key``) in ScriptLocation, ``--extra-py-files`` and ``--extra-jars`` are
files under the scheduler's ``--s3-root`` directory (``<s3-root>/bucket/key``). Each such file
must be a regular file the run's identity can read, inside ``--script-roots`` when set, and none
of the scheduler's own files (``run_access``); the process gets its resolved path.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from scheduler_service.run_access import R, outside_roots, reach_problem
from scheduler_service.runner import LaunchError

if TYPE_CHECKING:
    from scheduler_service.commands import CommandSettings


def local_file(location: object, what: str, s3_root: Path | None) -> Path:
    """The local file a ScriptLocation (or an ``--extra-*`` entry) names.

    Absolute paths and ``file://`` URIs are used as they are; ``s3://bucket/key`` (also
    ``s3a``, ``s3n``) is ``<s3_root>/bucket/key``.

    Raises:
        LaunchError: empty, another scheme, S3 without an S3 root, a key leaving its bucket,
            or no such file.
    """
    path = location_path(location, what, s3_root)
    if not path.is_file():
        raise LaunchError(f"{what} {location}: no such file")
    return path


def checked_file(location: object, what: str, settings: CommandSettings) -> Path:
    """The resolved local file a ScriptLocation (or an ``--extra-*`` entry) names, once it
    passes the rules a run's files are held to.

    Checked in this order, so that nothing about a file outside the script roots (not even
    whether it exists) reaches the run's ErrorMessage: inside ``--script-roots`` (after
    resolving symlinks and ``..``), not one of the scheduler's own files, a regular file, and
    readable by the run's identity along its whole path. Messages name the path, never the
    file's contents: the scheduler reads only its metadata.

    Raises:
        LaunchError: see ``location_path``, and any rule above.
    """
    path = location_path(location, what, settings.s3_root)
    if "\0" in str(path):
        # No file has a NUL in its name (the system calls below would raise ValueError).
        raise LaunchError(f"{what} {location!r}: a path cannot hold a NUL character")
    resolved = Path(os.path.realpath(path))
    if outside_roots(resolved, settings.script_roots):
        roots = ", ".join(str(root) for root in settings.script_roots)
        raise LaunchError(f"{what} {location} is outside the script roots ({roots})")
    if _is_private(resolved, settings):
        raise LaunchError(f"{what} {location} is one of the scheduler's own files")
    try:
        mode = resolved.stat().st_mode
    except FileNotFoundError:
        raise LaunchError(f"{what} {location}: no such file") from None
    except OSError as exc:
        raise LaunchError(f"{what} {location}: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        raise LaunchError(f"{what} {location} is not a regular file")
    problem = reach_problem(resolved, settings.identity, R)
    if problem is not None:
        raise LaunchError(f"{what} {location} cannot be read by the run: {problem}")
    return resolved


def _is_private(resolved: Path, settings: CommandSettings) -> bool:
    if settings.s3_root is not None and resolved.is_relative_to(settings.s3_root):
        return False
    return any(resolved.is_relative_to(private) for private in settings.private_paths)


def location_path(location: object, what: str, s3_root: Path | None) -> Path:
    """The absolute path a ScriptLocation (or an ``--extra-*`` entry) names; not checked.

    Raises:
        LaunchError: empty, another scheme, S3 without an S3 root, or a key leaving its
            bucket.
    """
    if not isinstance(location, str) or not location.strip():
        raise LaunchError(f"{what} is missing or empty")
    parts = urlsplit(location)
    if parts.scheme == "file" and parts.netloc in ("", "localhost"):
        path = Path(unquote(parts.path))
    elif parts.scheme in ("s3", "s3a", "s3n"):
        if s3_root is None:
            raise LaunchError(
                f"{what} {location} is on S3, and this scheduler has no --s3-root to map it to"
            )
        key = Path(parts.path.lstrip("/"))
        if not parts.netloc or ".." in key.parts or parts.netloc == "..":
            raise LaunchError(f"{what} {location} does not name an object in a bucket")
        path = s3_root / parts.netloc / key
    elif parts.scheme == "" and location.startswith("/"):
        path = Path(location)
    else:
        raise LaunchError(
            f"{what} {location} is not a local path, a file:// URI or an s3:// path; "
            "this scheduler runs local scripts only"
        )
    if not path.is_absolute():
        raise LaunchError(f"{what} {location} is not an absolute path")
    return path
