"""``getResolvedOptions``: a job's ``--key value`` arguments, resolved as AWS Glue does.

Works without PySpark, so pythonshell jobs can use it. The behaviour follows the AWS page
"Accessing parameters using getResolvedOptions"
(docs.aws.amazon.com/glue/latest/dg/aws-glue-api-crawler-pyspark-extensions-get-resolved-options.html),
quirks included:

- Each name in ``options`` is a required ``--name``; ``--name value`` and ``--name=value`` both
  work; arguments not asked for are ignored; ``args[0]`` (the script) is skipped.
- Keys are argparse destinations: ``--input-path`` comes back as ``input_path``.
- ``JOB_NAME`` is returned only if asked for. ``JOB_ID``, ``JOB_RUN_ID``,
  ``SECURITY_CONFIGURATION``, ``TempDir``, ``RedshiftTempDir``, ``encryption_type``,
  ``job_bookmark_from`` and ``job_bookmark_to`` are always returned (None when absent); asking
  for a reserved one (``JOB_RUN_ID``, ``job-bookmark-option`` ...) raises RuntimeError.
- ``job_bookmark_option`` is always returned: ``--job-bookmark-option``, else the old
  ``--continuation-option`` translated, else ``job-bookmark-disable``.
- A missing required option raises ``GlueArgumentError`` (AWS's argparse exits instead).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any, NoReturn

__all__ = ["GlueArgumentError", "getResolvedOptions"]

JOB_BOOKMARK_OPTION = "--job-bookmark-option"
JOB_BOOKMARK_VALUES = ["job-bookmark-enable", "job-bookmark-pause", "job-bookmark-disable"]
CONTINUATION_OPTION = "--continuation-option"
# Index-aligned with JOB_BOOKMARK_VALUES: Glue translates the old names position by position.
CONTINUATION_VALUES = ["continuation-enabled", "continuation-readonly", "continuation-ignore"]
JOB_BOOKMARK_RANGE_OPTIONS = ["--job-bookmark-from", "--job-bookmark-to"]
# --JOB_NAME is not among them: it is a normal option a script asks for.
RESERVED_ID_OPTIONS = ["--JOB_ID", "--JOB_RUN_ID", "--SECURITY_CONFIGURATION"]
ENCRYPTION_TYPE_OPTION = "--encryption-type"
ENCRYPTION_TYPE_VALUES = ["sse-s3"]
TEMP_DIR_OPTIONS = ("RedshiftTempDir", "TempDir")


class GlueArgumentError(Exception):
    """The arguments do not satisfy the options asked for (a required one is missing ...)."""


class _GlueArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser that raises instead of printing usage and exiting."""

    def error(self, message: str) -> NoReturn:
        raise GlueArgumentError(message)


def getResolvedOptions(args: Sequence[str], options: Sequence[str]) -> dict[str, Any]:  # noqa: N802 - Glue's name
    """Resolve ``options`` from a job's command line, the way AWS Glue's function does.

    Args:
        args: the full command line, normally ``sys.argv``; the first item is skipped.
        options: names of required options, without the leading ``--``.

    Returns:
        Option name (argparse destination) to value: a str, or None for an optional option
        Glue always declares that was not given (see the module docstring).

    Raises:
        GlueArgumentError: a required option is missing, or a value is not allowed.
        RuntimeError: ``options`` names a reserved option, or the job bookmark range options
            do not fit ``--job-bookmark-option``.
    """
    parser = _GlueArgumentParser()

    for reserved in (CONTINUATION_OPTION, JOB_BOOKMARK_OPTION):
        if reserved[2:] in options:
            raise RuntimeError("Using reserved arguments " + reserved[2:])
    parser.add_argument(JOB_BOOKMARK_OPTION, choices=JOB_BOOKMARK_VALUES, required=False)
    parser.add_argument(CONTINUATION_OPTION, choices=CONTINUATION_VALUES, required=False)

    for option in JOB_BOOKMARK_RANGE_OPTIONS + RESERVED_ID_OPTIONS:
        if option[2:] in options:
            raise RuntimeError("Using reserved arguments " + option)
        parser.add_argument(option, required=False)

    if ENCRYPTION_TYPE_OPTION[2:] in options:
        raise RuntimeError("Using reserved arguments " + ENCRYPTION_TYPE_OPTION)
    parser.add_argument(ENCRYPTION_TYPE_OPTION, choices=ENCRYPTION_TYPE_VALUES)

    # Glue declares both temp dirs optional and mirrors one into the other, even if asked for.
    for option in TEMP_DIR_OPTIONS:
        parser.add_argument("--" + option, required=False)
    for option in options:
        if option not in TEMP_DIR_OPTIONS:
            parser.add_argument("--" + option, required=True)

    parsed, _unknown = parser.parse_known_args(list(args[1:]))
    resolved: dict[str, Any] = vars(parsed)

    if resolved["TempDir"] is not None:
        resolved["RedshiftTempDir"] = resolved["TempDir"]
    elif resolved["RedshiftTempDir"] is not None:
        resolved["TempDir"] = resolved["RedshiftTempDir"]

    # --job-bookmark-option wins; without it, an old-style --continuation-option is translated.
    continuation = resolved.pop("continuation_option", None)
    if resolved.get("job_bookmark_option") is None:
        resolved["job_bookmark_option"] = (
            "job-bookmark-disable"
            if continuation is None
            else JOB_BOOKMARK_VALUES[CONTINUATION_VALUES.index(continuation)]
        )

    absent_range = [
        option
        for option in JOB_BOOKMARK_RANGE_OPTIONS
        if resolved.get(option[2:].replace("-", "_")) is None
    ]
    if resolved["job_bookmark_option"] == "job-bookmark-pause":
        # Pausing takes both ends of the range or neither.
        if len(absent_range) == 1:
            raise RuntimeError("Missing option or value for " + absent_range[0])
    elif not absent_range:
        raise RuntimeError("Invalid option(s)" + " ".join(JOB_BOOKMARK_RANGE_OPTIONS))
    return resolved
