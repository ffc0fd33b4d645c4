"""A run's environment: a short allow-list, never the scheduler's own variables.

The scheduler's environment holds its database URL, cloud credentials and whatever else its
operator exported (``SCHEDULER_*``, ``CATALOG_*``, ``AWS_*``, ``PG*``); a job is someone
else's code, so it starts from nothing and gets:

- from the scheduler's environment, only ``PASSED_THROUGH`` (the search path, the locale and
  where Java and Spark live);
- ``TZ=UTC`` (Glue runs in UTC) and ``HOME`` = the run directory (so nothing a job writes
  under ``~`` lands in the service user's home);
- what the operator adds with ``--job-env KEY=VALUE`` and ``--job-env-file FILE``, which may
  override the above;
- the run's own Glue and Spark variables (``commands``: ``AWSGLUE_*``, ``PYSPARK_*``,
  ``SPARK_LOCAL_IP``, ``PYTHONPATH``), which nothing overrides.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

PASSED_THROUGH = (
    "PATH",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    # spark-submit finds java through JAVA_HOME, else on PATH; a SPARK_HOME or conf dir the
    # operator chose for the whole machine applies to the scheduler's runs too.
    "JAVA_HOME",
    "SPARK_HOME",
    "SPARK_CONF_DIR",
    "HADOOP_CONF_DIR",
)
"""Variables copied from the scheduler's environment when set there."""

DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
DEFAULT_LANG = "C.UTF-8"
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Set per run by ``commands``: an operator value would be overwritten, or would point every
# run at one bookmark file, so it is refused at start-up instead.
_RUN_OWNED_PREFIXES = ("AWSGLUE_",)
_RUN_OWNED = ("PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON")


def base_environment(inherited: Mapping[str, str], run_dir: Path) -> dict[str, str]:
    """The allow-listed part of a run's environment (before operator and run variables)."""
    env = {name: inherited[name] for name in PASSED_THROUGH if name in inherited}
    env.setdefault("PATH", DEFAULT_PATH)
    if not any(name in env for name in ("LANG", "LC_ALL")):
        env["LANG"] = DEFAULT_LANG
    env["TZ"] = "UTC"
    env["HOME"] = str(run_dir)
    return env


def parse_assignments(lines: Iterable[str], where: str) -> dict[str, str]:
    """``KEY=VALUE`` lines (blank lines and ``#`` comments skipped) as a mapping.

    No quoting and no expansion: the value is everything after the first ``=``, as written
    (surrounding whitespace of the line stripped).

    Raises:
        ValueError: a line is not ``KEY=VALUE`` or ``parse_assignment`` refuses it; the
            message names ``where`` and the line number.
    """
    env: dict[str, str] = {}
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, value = parse_assignment(line, f"{where} line {number}")
        env[key] = value
    return env


def parse_assignment(text: str, where: str) -> tuple[str, str]:
    """One ``KEY=VALUE`` (a ``--job-env`` flag): the value is everything after the first ``=``.

    Raises:
        ValueError: no ``=``, a key that is not a variable name or that the scheduler sets per
            run, or a NUL or newline in the value; the message names ``where``.
    """
    key, sep, value = text.partition("=")
    if not sep:
        raise ValueError(f"{where}: expected KEY=VALUE, got {text!r}")
    problem = key_problem(key) or value_problem(value)
    if problem:
        raise ValueError(f"{where}: {problem}")
    return key, value


def key_problem(key: str) -> str | None:
    """Why ``key`` cannot be a job environment variable; None if it can."""
    if not _KEY.fullmatch(key):
        return f"{key!r} is not a variable name"
    if key.startswith(_RUN_OWNED_PREFIXES) or key in _RUN_OWNED:
        return f"{key} is set by the scheduler for each run (see --python and docs/awsglue.md)"
    return None


def value_problem(value: str) -> str | None:
    """Why ``value`` cannot be a job environment value; None if it can."""
    if "\x00" in value or "\n" in value:
        return "a value cannot hold a NUL or newline character"
    return None


def read_env_file(path: Path) -> dict[str, str]:
    """The ``KEY=VALUE`` lines of ``--job-env-file``.

    Raises:
        ValueError: the file cannot be read or a line is malformed; the message names it.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read the job environment file {path}: {exc}") from exc
    return parse_assignments(text.splitlines(), str(path))


def inherited_environment() -> dict[str, str]:
    """The scheduler's own values of ``PASSED_THROUGH`` (read once, by the settings)."""
    return {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}
