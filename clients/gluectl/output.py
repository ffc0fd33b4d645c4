"""gluectl's output: Glue-form JSON for scripts, aligned tables and key/value lists for people.

JSON output is the Glue form of the operation's response (PascalCase members, as the AWS CLI
prints them, timestamps in ISO-8601), so a script written against ``aws glue ... --output json``
reads it unchanged. Tables are for reading: times in UTC, long errors cut to one line.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final, TextIO

from glue.v1 import glue_pb2
from glue_vocabulary.shapes import timestamp_to_datetime

JSON: Final = "json"
TABLE: Final = "table"
FORMATS: Final = (TABLE, JSON)

RUN_HEADERS: Final = ("Id", "State", "Attempt", "Started", "Duration", "Error")
RECENT_RUN_HEADERS: Final = ("Job", *RUN_HEADERS)
JOB_HEADERS: Final = ("Name", "Command", "Last run", "Started", "Script")
TRIGGER_HEADERS: Final = ("Name", "Type", "State", "When", "Next (UTC)", "Actions")
FIRE_HEADERS: Final = ("Scheduled", "Recorded", "Outcome", "DueTimes", "Runs", "Reason")
NEXT_HEADERS: Final = ("Time (UTC)", "Weekday")
TAG_HEADERS: Final = ("Key", "Value")
ERROR_WIDTH: Final = 60
TABLE_WIDTH: Final = 100
"""Tables are cut to this many columns (their last column is shortened): a terminal's width."""
SHORT_RUN_ID: Final = 15
"""``jr_`` and 12 hex digits: unique enough to tell a job's runs apart in a table."""
_ATTEMPT: Final = "_attempt_"
_GAP: Final = "  "
_WEEKDAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class Output:
    """Where and how a command prints: results to stdout, notes and errors to stderr.

    Args:
        fmt: ``json`` or ``table``.
        stdout: results go here.
        stderr: progress notes and errors go here, so stdout stays parseable.
        prog: the program name errors start with.
    """

    def __init__(self, *, fmt: str, stdout: TextIO, stderr: TextIO, prog: str = "gluectl") -> None:
        self.fmt = fmt
        self._stdout = stdout
        self._stderr = stderr
        self._prog = prog

    @property
    def is_json(self) -> bool:
        """Whether results are printed as JSON."""
        return self.fmt == JSON

    def document(self, doc: Mapping[str, Any]) -> None:
        """Print a Glue-form document as JSON."""
        self.line(dumps(doc))

    def line(self, text: str) -> None:
        """Print one line of results (flushed: a waiting command's first line must show)."""
        self._stdout.write(text + "\n")
        self._stdout.flush()

    def table(
        self, headers: Sequence[str], rows: Iterable[Sequence[str]], *, keep_end: bool = False
    ) -> None:
        """Print rows as aligned columns under a header, at most TABLE_WIDTH wide (the last
        column cut: its end kept with ``keep_end``, else its start)."""
        self.line(format_table(headers, rows, keep_end=keep_end))

    def details(self, doc: Mapping[str, Any]) -> None:
        """Print one entity as ``Member  value`` lines."""
        self.line(format_details(doc))

    def raw(self, data: bytes) -> None:
        """Write bytes to stdout unchanged (a run's log)."""
        self._stdout.flush()
        buffer = getattr(self._stdout, "buffer", None)
        if buffer is not None:
            buffer.write(data)
            buffer.flush()
        else:
            # A text-only stream (an embedding that swapped stdout): the closest we can do.
            self._stdout.write(data.decode("utf-8", errors="replace"))
            self._stdout.flush()

    def note(self, text: str) -> None:
        """A progress note for people, on stderr."""
        self._stderr.write(text + "\n")
        self._stderr.flush()

    def error(self, text: str) -> None:
        """The one line that says why the command failed."""
        self.note(f"{self._prog}: {text}")


def dumps(doc: Mapping[str, Any]) -> str:
    """JSON text of a Glue-form document; datetimes as ISO-8601."""
    return json.dumps(doc, indent=2, ensure_ascii=False, default=_json_default)


def _json_default(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def format_time(value: datetime | None) -> str:
    """A timestamp for a table: UTC, to the second."""
    if value is None:
        return "-"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def format_duration(seconds: float | None) -> str:
    """``42s``, ``3m05s``, ``2h07m``: short and sortable by eye."""
    if seconds is None:
        return "-"
    total = max(int(seconds), 0)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def one_line(text: str, width: int = ERROR_WIDTH) -> str:
    """The gist of a multi-line message, cut to ``width`` characters.

    A run's ErrorMessage is the tail of its stderr, whose last line (the exception) says most.
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    gist = lines[-1] if lines else ""
    return gist if len(gist) <= width else gist[: width - 1] + "…"


def run_duration(run: glue_pb2.JobRun, now: datetime) -> float | None:
    """How long a run ran: ExecutionTime once it ended, else the time since it started."""
    if run.HasField("execution_time") and run.HasField("completed_on"):
        return float(run.execution_time)
    if not run.HasField("started_on"):
        return None
    end = timestamp_to_datetime(run.completed_on) if run.HasField("completed_on") else now
    return (end - timestamp_to_datetime(run.started_on)).total_seconds()


def short_run_id(run_id: str) -> str:
    """A run id cut for a table: ``jr_0123456789ab…``; a retry keeps its ``_attempt_N``."""
    first, attempt, n = run_id.partition(_ATTEMPT)
    if len(first) <= SHORT_RUN_ID:
        return run_id
    return first[:SHORT_RUN_ID] + "…" + (attempt + n if attempt else "")


def run_row(run: glue_pb2.JobRun, now: datetime, *, full_id: bool = False) -> list[str]:
    """A run as a row under RUN_HEADERS (the id shortened unless ``full_id``)."""
    started = timestamp_to_datetime(run.started_on) if run.HasField("started_on") else None
    return [
        run.id if full_id else short_run_id(run.id),
        run.job_run_state,
        str(run.attempt),
        format_time(started),
        format_duration(run_duration(run, now)),
        # Whole: the table cuts it to what fits.
        one_line(run.error_message, TABLE_WIDTH) if run.error_message else "",
    ]


def recent_run_row(run: glue_pb2.JobRun, now: datetime, *, full_id: bool = False) -> list[str]:
    """A run of any job as a row under RECENT_RUN_HEADERS; a deleted job's name says so."""
    job = f"{run.job_name} (deleted)" if run.job_deleted else run.job_name
    return [job, *run_row(run, now, full_id=full_id)]


def job_row(job: glue_pb2.Job, last_run: glue_pb2.JobRun | None) -> list[str]:
    """A job as a row under JOB_HEADERS: its newest run's state and start (``-``: none)."""
    started = None
    if last_run is not None and last_run.HasField("started_on"):
        started = timestamp_to_datetime(last_run.started_on)
    return [
        job.name,
        job.command.name,
        last_run.job_run_state if last_run is not None else "-",
        format_time(started),
        job.command.script_location,
    ]


def predicate_summary(predicate: glue_pb2.Predicate) -> str:
    """A predicate the way ``--when`` takes it: ``a=SUCCEEDED and b=SUCCEEDED``.

    AND joins conditions with ``and``, ANY with ``or``; a crawler condition reads
    ``crawler:NAME=STATE``.
    """
    joiner = " or " if predicate.logical == "ANY" else " and "
    return joiner.join(
        f"{c.job_name}={c.state}" if c.job_name else f"crawler:{c.crawler_name}={c.crawl_state}"
        for c in predicate.conditions
    )


def trigger_when(trigger: glue_pb2.Trigger) -> str:
    """When a trigger fires, in a few words: its schedule, its predicate, or ``-``."""
    if trigger.schedule:
        return trigger.schedule
    if trigger.predicate.conditions:
        return predicate_summary(trigger.predicate)
    return "-"


def trigger_row(trigger: glue_pb2.Trigger, next_fire: datetime | None) -> list[str]:
    """A trigger as a row under TRIGGER_HEADERS; Actions are the started jobs, comma-separated."""
    actions = ",".join(a.job_name or f"crawler:{a.crawler_name}" for a in trigger.actions)
    return [
        trigger.name,
        trigger.type,
        trigger.state,
        trigger_when(trigger),
        format_time(next_fire),
        actions or "-",
    ]


def fire_row(fire: glue_pb2.TriggerFire, *, full_ids: bool = False) -> list[str]:
    """A fire-ledger entry as a row under FIRE_HEADERS; its run ids comma-separated (shortened
    unless ``full_ids``)."""
    scheduled = timestamp_to_datetime(fire.scheduled_at) if fire.HasField("scheduled_at") else None
    recorded = timestamp_to_datetime(fire.recorded_at) if fire.HasField("recorded_at") else None
    return [
        format_time(scheduled),
        format_time(recorded),
        fire.outcome,
        str(fire.due_times),
        ",".join(r if full_ids else short_run_id(r) for r in fire.run_ids) or "-",
        # Whole, on one line: it names the runs that satisfied a predicate, or what was skipped.
        " ".join(fire.reason.split()),
    ]


def next_row(when: datetime) -> list[str]:
    """A fire time as a row under NEXT_HEADERS: UTC, with its weekday (to check DOW fields)."""
    # Not strftime("%a"): that follows the C library's locale.
    return [format_time(when), _WEEKDAYS[when.astimezone(UTC).weekday()]]


def tag_rows(tags: Mapping[str, str]) -> list[list[str]]:
    """Tags as rows under TAG_HEADERS, by key."""
    return [[key, value] for key, value in sorted(tags.items())]


def format_table(
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    width: int | None = TABLE_WIDTH,
    keep_end: bool = False,
) -> str:
    """Rows as left-aligned columns; the last column is not padded (no trailing spaces).

    The last column is shortened so that no line is longer than ``width`` (None: never), but
    never below its header's width: its start is kept (an error's exception name), or with
    ``keep_end`` its end (a path's file name).
    """
    table = [list(headers), *(list(row) for row in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(headers))]
    if width is not None:
        room = max(width - sum(widths[:-1]) - len(_GAP) * (len(widths) - 1), len(headers[-1]))
        for row in table[1:]:
            cell = row[-1]
            if len(cell) > room:
                row[-1] = "…" + cell[len(cell) - room + 1 :] if keep_end else cell[: room - 1] + "…"
    return "\n".join(
        _GAP.join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in table
    )


def format_details(doc: Mapping[str, Any]) -> str:
    """One entity as ``Member  value`` lines; structures flatten to ``Parent.Member``."""
    pairs = list(_flatten(doc, ""))
    if not pairs:
        return ""
    width = max(len(key) for key, _ in pairs)
    lines = []
    for key, value in pairs:
        first, *rest = value.splitlines() or [""]
        lines.append(f"{key.ljust(width)}{_GAP}{first}".rstrip())
        lines.extend(f"{'':{width}}{_GAP}{more}".rstrip() for more in rest)
    return "\n".join(lines)


def _flatten(doc: Mapping[str, Any], prefix: str) -> Iterable[tuple[str, str]]:
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from _flatten(value, f"{name}.")
        elif isinstance(value, datetime):
            yield name, format_time(value) + " UTC"
        elif isinstance(value, list):
            yield (
                name,
                ", ".join(
                    json.dumps(item, default=_json_default)
                    if isinstance(item, Mapping)
                    else str(item)
                    for item in value
                ),
            )
        else:
            yield name, str(value)
