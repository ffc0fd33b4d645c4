"""How the run history is read for listings: the columns a listing reads, one newest-first
keyset page, GetRecentJobRuns' filters, and a stored run as the API shows it.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Row, Select, Table

from catalog_service import limits
from catalog_service.limits import Limits
from catalog_service.pagination import decode_token, encode_token, page_size
from catalog_service.tables import job_runs
from catalog_service.validation import validate_shape
from catalog_service.validation.model import glue_model
from glue.v1 import glue_pb2
from glue_vocabulary.shapes import GlueDict
from servicekit.errors import InvalidInputException

# GetRecentJobRuns' largest MaxResults.
MAX_RECENT = 200

# What a run listing reads of each run.
_LISTED = (
    job_runs.c.started_on,
    job_runs.c.run_id,
    job_runs.c.snapshot,
    job_runs.c.started_by,
    job_runs.c.job_deleted,
)


class _NewestFirst:
    """One page of runs newest first, keyset-paged on (StartedOn, run id): a run started
    between two pages never shifts or repeats an item."""

    def __init__(self, params: GlueDict, listing: str, default: int, caps: Limits) -> None:
        """
        Raises:
            InvalidInputException: a NextToken issued for another listing.
        """
        self._listing = listing
        self._after = decode_token(params.get("NextToken"), listing, (float, str))
        self._limit = page_size(params.get("MaxResults"), default)
        self._caps = caps

    def query(self, query: Select[Any]) -> Select[Any]:
        """``query`` (selecting ``_LISTED``) ordered, resumed after the token's run, and
        limited to one more than a page."""
        if self._after is not None:
            started, run_id = float(self._after[0]), str(self._after[1])
            query = query.where(
                (job_runs.c.started_on < started)
                | ((job_runs.c.started_on == started) & (job_runs.c.run_id < run_id))
            )
        return query.order_by(job_runs.c.started_on.desc(), job_runs.c.run_id.desc()).limit(
            self._limit + 1
        )

    def runs(self, rows: Sequence[Row[Any]]) -> tuple[list[glue_pb2.JobRun], str | None]:
        """The page's runs (without PredecessorRuns) and the token of the next page."""
        page = rows[: self._limit]
        page = page[: limits.fit_page([len(r.snapshot) for r in page], self._caps)]
        token = None
        if len(rows) > len(page):
            token = encode_token(self._listing, [page[-1].started_on, page[-1].run_id])
        result = []
        for row in page:
            run = _run(row.snapshot, row.started_by)
            run.ClearField("predecessor_runs")
            if row.job_deleted:
                run.job_deleted = True
            result.append(run)
        return result, token


@dataclass(frozen=True)
class _RecentFilters:
    """GetRecentJobRuns' filters as SQL conditions, and as the key its tokens are bound to."""

    conditions: list[ColumnElement[bool]]
    key: str


def _recent_filters(params: GlueDict, table: Any = job_runs) -> _RecentFilters:
    """The filters of a GetRecentJobRuns request on ``table`` (the run history or an alias).

    Raises:
        InvalidInputException: a filter or MaxResults breaks a rule.
    """
    rows: Table = table
    conditions: list[ColumnElement[bool]] = []
    job_name = params.get("JobName")
    if job_name:
        # Not a Glue operation: our words, naming this request's member (validation's docstring).
        validate_shape("NameString", job_name, field="JobName")
        conditions.append(rows.c.job_name == job_name)
    states = list(params.get("JobRunStates") or [])
    for index, state in enumerate(states):
        if state not in _job_run_states():
            raise InvalidInputException(
                f"JobRunStates[{index}]: {str(state)[:40]!r} is not a job run state; use one "
                f"of {', '.join(_job_run_states())}",
                field=f"JobRunStates[{index}]",
            )
    if states:
        conditions.append(rows.c.state.in_(states))
    trigger_name = params.get("TriggerName")
    if trigger_name:
        validate_shape("NameString", trigger_name, field="TriggerName")
        conditions.append(rows.c.trigger_name == trigger_name)
    started_after = params.get("StartedAfter")
    since = None
    if started_after is not None:
        since = started_after.timestamp()
        conditions.append(rows.c.started_on >= since)
    limit = params.get("MaxResults")
    if limit is not None and not 1 <= limit <= MAX_RECENT:
        raise InvalidInputException(
            f"MaxResults: must be between 1 and {MAX_RECENT} (got {limit})", field="MaxResults"
        )
    key = json.dumps(
        [job_name, sorted(states), trigger_name, since, bool(params.get("LatestPerJob"))]
    )
    return _RecentFilters(conditions, hashlib.sha256(key.encode()).hexdigest()[:16])


@functools.cache
def _job_run_states() -> list[str]:
    """Glue's JobRunState values, from the model."""
    return list(glue_model().shape_for("JobRunState").enum)


def _run(snapshot: bytes, started_by: str | None) -> glue_pb2.JobRun:
    """A stored run as the API shows it: its latest snapshot, and who started it (kept beside
    the snapshot, which the scheduler's events replace)."""
    run = glue_pb2.JobRun.FromString(snapshot)
    if started_by is not None:
        run.started_by = started_by
    if not run.HasField("execution_time"):
        # AWS counts ExecutionTime from the start: 0 until the run has used any.
        run.execution_time = 0
    return run
