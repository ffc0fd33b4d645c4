"""Job bookmarks kept in files: the contract between a job run and the scheduler.

AWS keeps bookmark state in its service (see "Tracking processed data using job bookmarks",
docs.aws.amazon.com/glue/latest/dg/monitor-continuations.html). Here the scheduler hands a run
its previous committed state as a file and collects the new one from another file:

- ``AWSGLUE_BOOKMARK_IN``: JSON state of the last committed run; an unset variable or a missing
  file means no state.
- ``AWSGLUE_BOOKMARK_OUT``: where ``job.commit()`` writes the new state (temp file + rename), and
  only with ``job-bookmark-enable``. Unset: commit writes nothing and says why.

The state is ``{"version": 1, "job_name": ..., "run_id": ..., "transformations": {ctx: {...}}}``
with one entry per ``transformation_ctx`` of a bookmarked source. Sources stage their new
entry while they read; nothing reaches the file before ``commit``, so a run that fails early
leaves the previous state in force. No PySpark needed.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from typing import Any

__all__ = [
    "BOOKMARK_IN_ENV",
    "BOOKMARK_OUT_ENV",
    "DISABLE",
    "ENABLE",
    "PAUSE",
    "STATE_VERSION",
    "BookmarkError",
    "Bookmarks",
    "read_state",
    "write_state",
]

BOOKMARK_IN_ENV = "AWSGLUE_BOOKMARK_IN"
BOOKMARK_OUT_ENV = "AWSGLUE_BOOKMARK_OUT"
ENABLE = "job-bookmark-enable"
PAUSE = "job-bookmark-pause"
DISABLE = "job-bookmark-disable"
STATE_VERSION = 1

log = logging.getLogger("awsglue")


class BookmarkError(Exception):
    """The bookmark state file cannot be used (bad JSON, unknown version ...)."""


def read_state(path: str | None) -> dict[str, Any] | None:
    """Read a committed bookmark state.

    Args:
        path: the state file; None or a missing file means no state.

    Returns:
        The state object, or None.

    Raises:
        BookmarkError: the file is not a state this version understands. Failing is safer than
            silently reprocessing everything.
    """
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            state = json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise BookmarkError(f"cannot read the bookmark state {path!r}: {exc}") from exc
    if not isinstance(state, dict) or not isinstance(state.get("transformations"), dict):
        raise BookmarkError(f"{path!r} is not a bookmark state (no 'transformations' object)")
    if state.get("version") != STATE_VERSION:
        raise BookmarkError(
            f"{path!r} has bookmark state version {state.get('version')!r}; "
            f"this awsglue reads version {STATE_VERSION}"
        )
    return state


def write_state(path: str, state: dict[str, Any]) -> None:
    """Write a state atomically: a reader sees the old file or the whole new one.

    Args:
        path: the destination file; its directory must exist.
        state: a JSON-serialisable state object.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".bookmark-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(state, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        # Leave no half-written temp file behind, then let the failure show.
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class Bookmarks:
    """The bookmark state of one run: what was committed before, and what this run staged."""

    def __init__(
        self,
        option: str,
        job_name: str,
        run_id: str | None,
        state_in: str | None = None,
        state_out: str | None = None,
        range_from: str | None = None,
        range_to: str | None = None,
    ) -> None:
        """Load the previous state (with enable or pause) and prepare to stage new entries.

        Args:
            option: ``job-bookmark-enable``, ``-pause`` or ``-disable``.
            job_name: the job's name, recorded in the state.
            run_id: this run's id, recorded in the state.
            state_in: path of the previous state file (None: no state).
            state_out: path the new state goes to on commit (None: commit writes nothing).
            range_from: ``--job-bookmark-from`` (recorded; runs are not looked up by id here).
            range_to: ``--job-bookmark-to`` (recorded, as ``range_from``).

        Raises:
            ValueError: ``option`` is not one of the three values.
            BookmarkError: the previous state file is unusable.
        """
        if option not in (ENABLE, PAUSE, DISABLE):
            raise ValueError(f"unknown job bookmark option {option!r}")
        self.option = option
        self.job_name = job_name
        self.run_id = run_id
        self.state_in = state_in
        self.state_out = state_out
        self.range_from = range_from
        self.range_to = range_to
        # With disable the previous state is ignored entirely, as on AWS.
        self.previous = read_state(state_in) if option != DISABLE else None
        if self.previous and self.previous.get("job_name") not in (None, job_name):
            log.warning(
                "bookmark state %s was written by job %r, this is %r; using it anyway",
                state_in,
                self.previous.get("job_name"),
                job_name,
            )
        self.staged: dict[str, dict[str, Any]] = {}
        self.committed = False

    @classmethod
    def from_env(
        cls,
        option: str,
        job_name: str,
        run_id: str | None,
        range_from: str | None = None,
        range_to: str | None = None,
    ) -> Bookmarks:
        """Bookmarks whose files come from ``AWSGLUE_BOOKMARK_IN`` / ``AWSGLUE_BOOKMARK_OUT``.

        Args:
            option: the job bookmark option.
            job_name: the job's name.
            run_id: this run's id.
            range_from: ``--job-bookmark-from``.
            range_to: ``--job-bookmark-to``.
        """
        return cls(
            option,
            job_name,
            run_id,
            state_in=os.environ.get(BOOKMARK_IN_ENV) or None,
            state_out=os.environ.get(BOOKMARK_OUT_ENV) or None,
            range_from=range_from,
            range_to=range_to,
        )

    @property
    def active(self) -> bool:
        """Whether sources filter by bookmark (enable or pause)."""
        return self.option in (ENABLE, PAUSE)

    def entry(self, ctx: str) -> dict[str, Any] | None:
        """The committed entry of a transformation_ctx, or None.

        Args:
            ctx: the source's ``transformation_ctx``.
        """
        if not self.active or not self.previous:
            return None
        entry = self.previous["transformations"].get(ctx)
        return entry if isinstance(entry, dict) else None

    def stage(self, ctx: str, entry: dict[str, Any]) -> None:
        """Record the entry a source will have once this run commits.

        Args:
            ctx: the source's ``transformation_ctx``.
            entry: the new, JSON-serialisable entry (replaces any earlier one of this run).
        """
        self.staged[ctx] = entry

    def new_state(self) -> dict[str, Any]:
        """The state a commit writes: the previous entries updated with the staged ones."""
        transformations = dict(self.previous["transformations"]) if self.previous else {}
        transformations.update(self.staged)
        return {
            "version": STATE_VERSION,
            "job_name": self.job_name,
            "run_id": self.run_id,
            "transformations": transformations,
        }

    def commit(self) -> bool:
        """Write the new state when the option and ``AWSGLUE_BOOKMARK_OUT`` allow it.

        Returns:
            Whether a state file was written.
        """
        if self.option != ENABLE:
            log.info("job bookmarks are %s: commit writes no bookmark state", self.option)
            return False
        if not self.state_out:
            log.warning(
                "job bookmarks are enabled but %s is not set: commit writes no bookmark state",
                BOOKMARK_OUT_ENV,
            )
            return False
        write_state(self.state_out, self.new_state())
        self.committed = True
        log.info("bookmark state committed to %s", self.state_out)
        return True
