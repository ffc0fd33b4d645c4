"""Rules on the values the internal API carries: names, run ids, versions and sizes.

The catalog checks every public request against Glue's whole model; the scheduler checks what
it receives again with these few rules (defence in depth), so that a caller other than the
catalog, or a catalog bug, cannot hand it a run id that walks out of its runs directory, a
name Glue would refuse, a version that shadows the catalog's, or a record too large to
stream. Limits are Glue's where its model has them (``GLUE_LIMITS`` says which; a unit test
compares them with botocore's model), ours where it has none.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from servicekit.errors import InvalidInputException

NAME_MAX: Final = 255
"""Glue's NameString (job, trigger names): 1 to 255 characters, one line."""
# NameString's pattern, the model's Java regex with its surrogate pair spelled as Python's
# astral range: any character but the control characters (tab allowed).
NAME_PATTERN: Final = re.compile("[\t\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]*")
SCRIPT_LOCATION_MAX: Final = 400_000
"""Glue's ScriptLocationString: at most 400 000 characters."""
GLUE_LIMITS: Final = {"NameString": (1, NAME_MAX), "ScriptLocationString": (None, 400_000)}
"""The (min, max) the two rules above take from botocore's Glue model, for the unit test."""

MAX_MESSAGE_BYTES: Final = 16 * 1024 * 1024
"""The largest gRPC message either service receives (and so the largest event it can stream)."""
MAX_ARGUMENTS_BYTES: Final = 4 * 1024 * 1024
"""One argument map's keys and values together (UTF-8). Glue's model sets no limit; ours keeps
a run's record - three such maps merged, the script location and the rest - under one gRPC
message, so its events can always be streamed."""
MAX_RETRIES: Final = 10
"""A job's MaxRetries at most. The botocore model and the API reference
(docs.aws.amazon.com/glue/latest/dg/aws-glue-api-jobs-job.html: "MaxRetries - Number
(integer)") set no bound; the developer guide's job properties do: "Number of retries: Specify
the number of times, from 0 to 10, that AWS Glue should automatically restart the job if it
fails" (docs.aws.amazon.com/glue/latest/dg/add-job.html, "Defining Job Properties";
awsdocs/aws-glue-developer-guide, doc_source/add-job.md). The catalog refuses more; the
scheduler never retries more often, whatever a stored run says."""
MAX_REGISTRATION_VERSION: Final = 2**53 - 1
"""Versions are the catalog's counter, 1 upwards; beyond this (exact in JSON and doubles, 285
years at a million registrations a second) only a caller that is not the catalog goes."""

# The catalog names runs ``jr_`` + hex (``secrets.token_hex``); nothing else reaches the
# scheduler as a new run id. A run named in a request (a run to retry, stop or read) exists
# already - an automatic retry is ``<first id>_attempt_<n>`` - so it only has to be a run id
# that cannot walk out of a directory: ``jr_``, letters, digits and underscores.
_NEW_RUN_ID: Final = re.compile(r"jr_[0-9a-f]{1,128}")
_RUN_ID: Final = re.compile(r"jr_[A-Za-z0-9_]{1,252}")
_TOKEN: Final = re.compile(r"[A-Za-z0-9_.:-]{1,255}")


def _show(value: str) -> str:
    """A value for a message: quoted, and cut, so a huge or multi-line one cannot flood it."""
    return repr(value[:64] + ("..." if len(value) > 64 else ""))


def check_name(value: str, field: str) -> None:
    """A job or trigger name: Glue's NameString.

    Raises:
        InvalidInputException: empty, longer than 255 characters, or with control characters.
    """
    if not value:
        raise InvalidInputException(f"{field} is required", field=field)
    if len(value) > NAME_MAX:
        raise InvalidInputException(
            f"{field} must be at most {NAME_MAX} characters (got {len(value)})", field=field
        )
    if not NAME_PATTERN.fullmatch(value):
        raise InvalidInputException(
            f"{field} must be a single line with no control characters (got {_show(value)})",
            field=field,
        )


def check_new_run_id(value: str, field: str = "run_id") -> None:
    """The id of a run to create: ``jr_`` and lower-case hex, as the catalog makes them.

    Raises:
        InvalidInputException: anything else (path characters above all).
    """
    if not _NEW_RUN_ID.fullmatch(value):
        raise InvalidInputException(
            f"{field} must be 'jr_' followed by 1 to 128 lower-case hex digits "
            f"(got {_show(value)})",
            field=field,
        )


def check_run_id(value: str, field: str = "run_id") -> None:
    """The id of an existing run (a new run's form, an automatic retry's
    ``<id>_attempt_<n>``): ``jr_`` and up to 252 letters, digits and underscores.

    Raises:
        InvalidInputException: anything else (path characters above all).
    """
    if not _RUN_ID.fullmatch(value):
        raise InvalidInputException(
            f"{field} must be a job run id: 'jr_' followed by letters, digits and "
            f"underscores (got {_show(value)})",
            field=field,
        )


def check_token(value: str, field: str) -> None:
    """An opaque id chosen by the catalog (a fire id, an incarnation): 1 to 255 characters of
    letters, digits and ``_.:-``.

    Raises:
        InvalidInputException: anything else.
    """
    if not _TOKEN.fullmatch(value):
        raise InvalidInputException(
            f"{field} must be 1 to 255 letters, digits or _.:- (got {_show(value)})", field=field
        )


def check_version(value: int, field: str) -> None:
    """A registration version: 1 to ``MAX_REGISTRATION_VERSION``.

    Raises:
        InvalidInputException: out of that range.
    """
    if not 1 <= value <= MAX_REGISTRATION_VERSION:
        raise InvalidInputException(
            f"{field} must be between 1 and {MAX_REGISTRATION_VERSION} (got {value})",
            field=field,
        )


def check_arguments(arguments: Mapping[str, str], field: str) -> None:
    """An argument map's total size.

    Raises:
        InvalidInputException: keys and values together exceed ``MAX_ARGUMENTS_BYTES``.
    """
    # Characters first: a cheap lower bound that settles almost every map without encoding.
    chars = sum(len(k) + len(v) for k, v in arguments.items())
    if chars * 4 <= MAX_ARGUMENTS_BYTES:
        return
    size = sum(len(k.encode()) + len(v.encode()) for k, v in arguments.items())
    if size > MAX_ARGUMENTS_BYTES:
        raise InvalidInputException(
            f"{field} must total at most {MAX_ARGUMENTS_BYTES} bytes of keys and values "
            f"(got {size})",
            field=field,
        )


def check_script_location(value: str, field: str) -> None:
    """A script location: Glue's ScriptLocationString.

    Raises:
        InvalidInputException: longer than 400 000 characters.
    """
    if len(value) > SCRIPT_LOCATION_MAX:
        raise InvalidInputException(
            f"{field} must be at most {SCRIPT_LOCATION_MAX} characters (got {len(value)})",
            field=field,
        )
