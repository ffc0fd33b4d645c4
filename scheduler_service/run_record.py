"""A run's record and its stored and wire forms: the row codec, the JobRun proto, drafts.

``RunRecord`` is one row of ``scheduler_runs``. Its fields *are* the column list: the row
codec below derives from ``dataclasses.fields(RunRecord)`` the values an insert writes (as a
dict or, for bulk inserts, a tuple) and how a row decodes, so a new column is one new field
here (plus its migration). Only ``state`` and ``record`` change form on the way (an enum's
value, JSON text), and ``lease_until`` is never inserted from a record: a lease is taken on the
database's clock (``leases``).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import operator
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from sqlalchemy import update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from glue.v1 import glue_pb2
from glue_vocabulary.run_states import TERMINAL, JobRunState
from glue_vocabulary.shapes import GlueDict, from_glue, pascal
from scheduler_service.bad_rows import TALLY, UnreadableRowError
from scheduler_service.runner import is_safe_run_id
from scheduler_service.tables import runs


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRecord:
    """One row of ``scheduler_runs``."""

    run_id: str
    job_name: str
    job_incarnation: str
    state: JobRunState
    attempt: int
    max_retries: int
    timeout_minutes: int
    created_at: float
    updated_at: float
    completed_at: float | None
    deadline: float | None
    error_message: str | None
    execution_time: int | None
    record: GlueDict
    owner: str | None = None
    """The replica responsible for the run while it holds a process slot (see ``leases``)."""
    lease_until: float | None = None
    """Until when the owner's claim holds (epoch seconds on the database's clock)."""
    site: str | None = None
    """Where the run was launched: its supervisor's data directory id, written with the launch
    (``RunStore.record_launch``) and never changed; None while it was never launched."""
    not_before: float | None = None
    """A WAITING retry's end of backoff (epoch seconds): it is not promoted before then."""

    @classmethod
    def from_row(cls, row: Row[Any]) -> RunRecord:
        """Decode a database row.

        Raises:
            UnreadableRowError: the record is not a JSON object, the state is unknown, or the
                run id cannot name a run directory.
        """
        try:
            if not is_safe_run_id(row.run_id):
                raise ValueError("its run id cannot name a run directory")
            record = json.loads(row.record)
            if not isinstance(record, dict):
                raise TypeError("its record is not a JSON object")
            state = JobRunState(row.state)
        except (ValueError, TypeError) as exc:
            raise UnreadableRowError("scheduler_runs", str(row.run_id), str(exc)) from None
        values = dict(zip(COLUMNS, _column_values(row), strict=True))
        values["state"] = state
        values["record"] = record
        return cls(**values)

    def to_glue(self) -> GlueDict:
        """The run in Glue's JobRun form."""
        data = self.fixed_glue()
        data["JobRunState"] = self.state.value
        data["StartedOn"] = _dt(self.created_at)
        data["LastModifiedOn"] = _dt(self.updated_at)
        if self.completed_at is not None:
            data["CompletedOn"] = _dt(self.completed_at)
        if self.error_message:
            data["ErrorMessage"] = self.error_message
        if self.execution_time is not None:
            data["ExecutionTime"] = self.execution_time
        return data

    def fixed_glue(self) -> GlueDict:
        """The members of ``to_glue`` that stay as they are when a run is created: all but
        its state, timestamps, error and execution time (``RunDraft.settle`` adds those)."""
        data = {k: v for k, v in self.record.items() if not k.startswith("_")}
        data["Attempt"] = self.attempt
        return data

    def to_proto(self) -> glue_pb2.JobRun:
        """The run as a glue.v1.JobRun."""
        return job_run_proto(self.to_glue())

    @property
    def arguments(self) -> dict[str, str]:
        """The effective arguments the process gets."""
        return dict(self.record.get("Arguments", {}))

    @property
    def command(self) -> GlueDict:
        """The job's Command (Glue JobCommand form) as it was when the run was admitted."""
        return dict(self.record.get("_Command", {}))


class _Member(enum.Enum):
    """How a JobRun member's Glue value is put into the proto."""

    SCALAR = enum.auto()
    TIMESTAMP = enum.auto()
    MAP = enum.auto()
    NESTED = enum.auto()
    """Repeated or a message: left to ``from_glue``."""


def _member_kind(field: FieldDescriptor) -> _Member:
    repeated = bool(field.is_repeated)  # type: ignore[attr-defined]
    if field.type != FieldDescriptor.TYPE_MESSAGE:
        return _Member.NESTED if repeated else _Member.SCALAR
    assert field.message_type is not None
    if field.message_type.GetOptions().map_entry:
        return _Member.MAP
    if field.message_type.full_name == "google.protobuf.Timestamp" and not repeated:
        return _Member.TIMESTAMP
    return _Member.NESTED


# JobRun's members by Glue name, with how each is filled (worked out once, not per run).
_JOB_RUN_MEMBERS = {
    pascal(field.name): (field.name, _member_kind(field))
    for field in glue_pb2.JobRun.DESCRIPTOR.fields
}


def job_run_proto(data: GlueDict) -> glue_pb2.JobRun:
    """``from_glue(data, glue_pb2.JobRun)``, built faster: every run event is one of these (a
    burst of trigger fires makes thousands at once), and ``from_glue`` derives the Glue name of
    each of JobRun's 30 fields per call. This visits only the members present, looked up in a
    table made once; nested shapes (PredecessorRuns, NotificationProperty) still go through
    ``from_glue``."""
    message = glue_pb2.JobRun()
    nested: GlueDict = {}
    for key, value in data.items():
        member = _JOB_RUN_MEMBERS.get(key)
        if member is None or value is None:
            continue
        name, kind = member
        if kind is _Member.SCALAR:
            setattr(message, name, value)
        elif kind is _Member.TIMESTAMP:
            getattr(message, name).FromDatetime(value)
        elif kind is _Member.MAP:
            getattr(message, name).update({str(k): str(v) for k, v in value.items()})
        else:
            nested[key] = value
    if nested:
        message.MergeFrom(from_glue(nested, glue_pb2.JobRun))
    return message


@dataclass(frozen=True, slots=True)
class NewRun:
    """A run about to be inserted, with its stored forms (``RunStore.insert_many``)."""

    run: RunRecord
    record_json: str
    """``run.record`` as stored."""
    payload: bytes
    """Its first event: ``run.to_proto()`` serialized."""


@dataclass(frozen=True, slots=True)
class RunDraft:
    """A new run worked out ahead of the transaction that creates it.

    Building a run's record, its JSON text and its first event is most of the Python work of a
    trigger fire. A draft does it once - for a burst of schedules, before they are due
    (``firing``) - and ``settle`` adds what only the creating transaction knows: the state,
    the timestamps and, for a run that cannot start, its error.
    """

    run: RunRecord
    """The run, provisionally WAITING (or ERROR) as of the draft's making."""
    record_json: str
    """``run.record`` as stored."""
    partial_payload: bytes
    """Its first event without the members ``settle`` decides (``RunRecord.fixed_glue``)."""

    @classmethod
    def of(cls, run: RunRecord) -> RunDraft:
        """A draft of ``run``."""
        partial = job_run_proto(run.fixed_glue()).SerializeToString()
        return cls(run, json.dumps(run.record, default=str), partial)

    def settle(self, state: JobRunState, now: float, error_message: str | None = None) -> NewRun:
        """The run as created at ``now`` in ``state``. A terminal state (a run that could not
        start: ERROR, FAILED) ends it at once, with ``error_message``."""
        ended = state in TERMINAL
        draft = self.run
        run = dataclasses.replace(
            draft,
            state=state,
            created_at=now,
            updated_at=now,
            completed_at=now if ended else None,
            error_message=error_message,
            execution_time=0 if ended else None,
        )
        # Serialized messages concatenated parse as one message merged from both (protobuf's
        # wire format), so the settled members are appended to the draft's bytes instead of
        # building and serializing the whole event again.
        return NewRun(
            run,
            self.record_json,
            self.partial_payload + _settled_members(state, now, error_message),
        )


@functools.lru_cache(maxsize=16)
def _settled_members(state: JobRunState, now: float, error_message: str | None) -> bytes:
    """The members ``RunRecord.to_glue`` derives from a new run's state, timestamps and error,
    serialized. A batch's runs share one instant and mostly one state: encoded once."""
    ended = state in TERMINAL
    stamp = _dt(now)
    event = glue_pb2.JobRun(job_run_state=state.value)
    event.started_on.FromDatetime(stamp)
    event.last_modified_on.FromDatetime(stamp)
    if ended:
        event.completed_on.FromDatetime(stamp)
        event.execution_time = 0
    if error_message:
        event.error_message = error_message
    return event.SerializeToString()


# -- the row codec -------------------------------------------------------------------------

COLUMNS: tuple[str, ...] = tuple(field.name for field in dataclasses.fields(RunRecord))
"""Every ``scheduler_runs`` column, in RunRecord's field order."""
INSERTED: tuple[str, ...] = tuple(name for name in COLUMNS if name != "lease_until")
"""The columns an insert writes from a record (a lease is taken in SQL: ``leases``)."""
_column_values = operator.attrgetter(*COLUMNS)
_STATE = INSERTED.index("state")
_RECORD = INSERTED.index("record")
_inserted_values = operator.attrgetter(*INSERTED)


def row_tuple(run: RunRecord, record_json: str | None = None) -> tuple[Any, ...]:
    """The values of ``run``'s row in ``INSERTED`` order (bulk inserts take tuples);
    ``record_json`` is ``run.record`` already serialized, if it was."""
    values = list(_inserted_values(run))
    values[_STATE] = run.state.value
    values[_RECORD] = json.dumps(run.record, default=str) if record_json is None else record_json
    return tuple(values)


def row_values(run: RunRecord, record_json: str | None = None) -> dict[str, Any]:
    """``row_tuple`` by column name (single and executemany inserts)."""
    return dict(zip(INSERTED, row_tuple(run, record_json), strict=True))


def _dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


async def readable_runs(conn: AsyncConnection, rows: Sequence[Row[Any]]) -> list[RunRecord]:
    """The runs among ``rows`` that can be read; the others are parked as ERROR with the
    reason (no event: a record that cannot be read cannot become one), so that recovery, the
    reaper and promotion neither stop on them nor pick them again."""
    found = []
    for row in rows:
        try:
            found.append(RunRecord.from_row(row))
        except UnreadableRowError as exc:
            TALLY.note(exc)
            await conn.execute(
                update(runs)
                .where(runs.c.run_id == row.run_id)
                .values(
                    state=JobRunState.ERROR.value,
                    error_message=f"The scheduler cannot read this run's row: {exc.reason}.",
                    completed_at=time.time(),
                    owner=None,
                    lease_until=None,
                )
            )
    return found
