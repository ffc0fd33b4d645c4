"""Modes of the files and directories the services write: nobody else may read them.

The data directory holds both databases (SQLite), the internal secret and every run's log;
jobs may run as other users of the same machine, so the services create what they write
without group or other access, and take such access away from what they find at start-up.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

PRIVATE_DIR_MODE = 0o700
# Others may pass through but not list: a run running as another user reaches its own run
# directory (and HOME) by absolute path through the data directory and runs/.
TRAVERSABLE_DIR_MODE = 0o711
PRIVATE_FILE_MODE = 0o600


def private_dir(path: Path, *, traversable: bool) -> None:
    """Create ``path`` (mode 0700, or 0711 when ``traversable``) or set an existing one's
    mode to that; parents it creates get 0700. A directory owned by someone else is left as
    it is (logged), since only its owner may change it."""
    mode = TRAVERSABLE_DIR_MODE if traversable else PRIVATE_DIR_MODE
    if not path.exists():
        path.parent.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
        path.mkdir(mode=mode, exist_ok=True)
    _set_mode(path, mode)


def private_file(path: Path) -> None:
    """Take group and other access away from ``path`` if it exists and is ours."""
    try:
        current = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return
    if current & 0o077:
        _set_mode(path, current & ~0o077)


def create_private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 if missing (so whatever later opens it, such as
    SQLite, keeps that mode); an existing one loses group and other access."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_FILE_MODE)
    except FileExistsError:
        private_file(path)
    else:
        os.close(fd)


def _set_mode(path: Path, mode: int) -> None:
    st = path.stat()
    if stat.S_IMODE(st.st_mode) == mode:
        return
    if st.st_uid != os.geteuid():
        log.warning(
            "cannot restrict a path owned by another user; others may read it",
            extra={"path": str(path), "mode": f"{stat.S_IMODE(st.st_mode):04o}"},
        )
        return
    os.chmod(path, mode)
