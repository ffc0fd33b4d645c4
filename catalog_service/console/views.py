"""What the console's templates show, made from Glue-form dicts: times, states, next fires.

Pure functions and the Jinja environment; no I/O beyond loading templates.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2

from glue_vocabulary.cron import InvalidScheduleError, parse_schedule
from glue_vocabulary.run_states import TERMINAL

TEMPLATES = Path(__file__).parent / "templates"
RUN_STATES = (
    "WAITING",
    "STARTING",
    "RUNNING",
    "STOPPING",
    "STOPPED",
    "SUCCEEDED",
    "FAILED",
    "TIMEOUT",
    "ERROR",
    "EXPIRED",
)
# Fire times shown for a scheduled trigger.
NEXT_FIRES = 3


def utc_text(when: datetime | None) -> str:
    """A time as the pages print it in UTC (the viewer's zone is added by console.js)."""
    if when is None:
        return "-"
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def iso(when: datetime) -> str:
    """A time for a ``<time datetime=...>`` attribute, which console.js converts."""
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def duration_text(run: Mapping[str, Any]) -> str:
    """How long a run took (or has taken so far, for a live run, up to its last change)."""
    seconds = run.get("ExecutionTime")
    if seconds is None:
        started, ended = run.get("StartedOn"), run.get("CompletedOn")
        if started is None or ended is None:
            return "-"
        seconds = int((ended - started).total_seconds())
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def state_class(state: str | None) -> str:
    """The CSS class that colours a run or trigger state."""
    return "state-" + (state or "unknown").lower()


def is_terminal(run: Mapping[str, Any]) -> bool:
    """Whether a run has ended."""
    return run.get("JobRunState") in TERMINAL


def link(path: str, **params: object) -> str:
    """A console URL with its query (names travel in the query: Glue names may hold a '/')."""
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return f"{path}?{query}" if query else path


@dataclass(frozen=True, slots=True)
class NextFires:
    """A schedule's coming fire times, or why there are none."""

    times: list[datetime]
    note: str = ""


def next_fires(trigger: Mapping[str, Any], now: datetime, count: int = NEXT_FIRES) -> NextFires:
    """The next ``count`` fire times of a scheduled trigger, from glue_vocabulary.cron (the
    arithmetic the scheduler fires by)."""
    schedule = trigger.get("Schedule")
    if trigger.get("Type") != "SCHEDULED" or not schedule:
        return NextFires([], "not a scheduled trigger")
    try:
        times = parse_schedule(schedule).next_fire_times(now, count)
    except InvalidScheduleError as exc:
        return NextFires([], f"{exc.field}: {exc.message}")
    note = "" if len(times) == count else "the schedule has no more fire times after these"
    if trigger.get("State") != "ACTIVATED":
        note = "the trigger is not activated: it fires at these times only once activated"
    return NextFires(times, note)


def static_versions(folder: Path) -> dict[str, str]:
    """Each static file's content hash, put in its URL so a new release is never served from
    a browser's stale cache."""
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        for path in folder.iterdir()
        if path.is_file() and path.name != "README.md"
    }


def environment(static: Mapping[str, str]) -> jinja2.Environment:
    """The templates, HTML-escaped by default, with the helpers above.

    Args:
        static: Static file name -> version (``static_versions``).
    """

    def static_url(name: str) -> str:
        return f"/console/static/{name}?v={static[name]}"

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        auto_reload=False,
        autoescape=True,
        # Glue omits absent members; a missing one renders empty, as an absent value should.
        undefined=jinja2.ChainableUndefined,
        enable_async=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(utc=utc_text, iso=iso, duration=duration_text, state_class=state_class)
    env.globals.update(
        link=link,
        is_terminal=is_terminal,
        run_states=RUN_STATES,
        next_fires=next_fires,
        static=static_url,
    )
    return env
