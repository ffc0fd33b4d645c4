"""Structured logs: one ``key=value`` line per record, with the run id on every line about a run.

``run_context(run_id)`` sets a context variable that the formatter adds to every record
logged inside it, so code deep in the runner need not pass the id to each log call.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import sys
import time
from collections.abc import Iterator

_RUN_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("run_id", default=None)
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


@contextlib.contextmanager
def run_context(run_id: str) -> Iterator[None]:
    """Tag every log line emitted inside the block with ``run_id``."""
    token = _RUN_ID.set(run_id)
    try:
        yield
    finally:
        _RUN_ID.reset(token)


def _quote(value: object) -> str:
    text = str(value)
    if not text or any(c in text for c in ' "=\n\t'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


class LogfmtFormatter(logging.Formatter):
    """``ts=... level=... logger=... msg=... run_id=... key=value`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        """Render one record."""
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        fields: dict[str, object] = {
            "ts": f"{ts}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        run_id = getattr(record, "run_id", None) or _RUN_ID.get()
        if run_id:
            fields["run_id"] = run_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in fields and not key.startswith("_"):
                fields[key] = value
        line = " ".join(f"{k}={_quote(v)}" for k, v in fields.items())
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure_logging(level: str = "INFO") -> None:
    """Send every log record to stderr in logfmt; called once by each service's cli."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LogfmtFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # grpc and SQLAlchemy are chatty at INFO about things operators rarely need.
    logging.getLogger("sqlalchemy").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
