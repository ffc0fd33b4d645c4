"""Job: ``job.init`` / ``job.commit`` and the job bookmarks they bracket.

AWS pages "Tracking processed data using job bookmarks" and "Using job bookmarks"
(docs.aws.amazon.com/glue/latest/dg/programming-etl-connect-bookmarks.html): a script calls
``job.init`` first and ``job.commit`` last; bookmarks work only between the two. The option
comes from the run's command line (``--job-bookmark-option``, default disable), which
getResolvedOptions always returns as ``job_bookmark_option``; ``init`` takes it from ``args``
when present, else reads ``sys.argv`` itself. State files: see ``_bookmarks``.
"""

# ruff: noqa: N802 - method names are AWS Glue's public API

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from typing import Any

from awsglue._guard import require_spark

require_spark("awsglue.job")

from awsglue._bookmarks import Bookmarks  # noqa: E402
from awsglue.context import GlueContext  # noqa: E402
from awsglue.utils import getResolvedOptions  # noqa: E402

__all__ = ["Job"]

log = logging.getLogger("awsglue")


class Job:
    """A Glue job run as seen from its script."""

    @classmethod
    def continuation_options(cls) -> list[str]:
        """The old bookmark option and its values."""
        return [
            "--continuation-option",
            "continuation-enabled",
            "continuation-readonly",
            "continuation-ignore",
        ]

    @classmethod
    def job_bookmark_options(cls) -> list[str]:
        """The bookmark option and its values."""
        return [
            "--job-bookmark-option",
            "job-bookmark-enable",
            "job-bookmark-pause",
            "job-bookmark-disable",
        ]

    @classmethod
    def job_bookmark_range_options(cls) -> list[str]:
        """The options naming a range of runs for ``job-bookmark-pause``."""
        return ["--job-bookmark-from", "--job-bookmark-to"]

    @classmethod
    def id_params(cls) -> list[str]:
        """The options the service passes to identify a run."""
        return ["--JOB_NAME", "--JOB_ID", "--JOB_RUN_ID", "--SECURITY_CONFIGURATION"]

    def __init__(self, glue_context: GlueContext) -> None:
        """Bind to a GlueContext.

        Args:
            glue_context: the script's GlueContext.
        """
        self._glue_context = glue_context
        self._bookmarks: Bookmarks | None = None
        self.job_name: str | None = None

    def init(self, job_name: str, args: Mapping[str, Any] | None = None) -> None:
        """Start the run: load the previous bookmark state when bookmarks are on.

        Args:
            job_name: the job's name (``args["JOB_NAME"]``).
            args: what getResolvedOptions returned; its ``job_bookmark_option``,
                ``job_bookmark_from``/``_to`` and ``JOB_RUN_ID`` are used when present, the
                command line otherwise.

        Raises:
            awsglue.utils.GlueArgumentError: a bad ``--job-bookmark-option`` value.
            awsglue._bookmarks.BookmarkError: the previous state file is unusable.
        """
        given = dict(args or {})
        from_argv = getResolvedOptions(sys.argv, [])

        def pick(key: str) -> Any:
            return given[key] if given.get(key) is not None else from_argv.get(key)

        option = pick("job_bookmark_option") or "job-bookmark-disable"
        run_id = pick("JOB_RUN_ID")
        self._bookmarks = Bookmarks.from_env(
            option,
            job_name,
            run_id,
            range_from=pick("job_bookmark_from"),
            range_to=pick("job_bookmark_to"),
        )
        if self._bookmarks.range_from or self._bookmarks.range_to:
            log.warning(
                "--job-bookmark-from/--job-bookmark-to (%s, %s) are recorded but not applied: "
                "the pause reads from the state in AWSGLUE_BOOKMARK_IN",
                self._bookmarks.range_from,
                self._bookmarks.range_to,
            )
        self.job_name = job_name
        self._glue_context._bookmarks = self._bookmarks
        log.info("job %s run %s: bookmarks %s", job_name, run_id, option)

    def isInitialized(self) -> bool:
        """Whether ``init`` was called."""
        return self._bookmarks is not None

    def commit(self) -> None:
        """End the run: write the new bookmark state (enable and AWSGLUE_BOOKMARK_OUT only).

        Raises:
            RuntimeError: ``init`` was not called.
        """
        if self._bookmarks is None:
            raise RuntimeError("job.commit() before job.init(): call job.init first")
        self._bookmarks.commit()
