"""A broken rule of a request (``Violation``) and the words it is reported in.

``to_exception`` turns a request's violations into the one exception it raises: AWS's
framework text (ValidationException) for model constraints, else our own
``<path>: <what is wrong>`` (InvalidInputException); the helpers below build those texts, and
are only ever called on the error path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from servicekit.errors import InvalidInputException, ValidationException

# Values are echoed in messages so a caller can see what was wrong, but a message must stay
# readable (and a log line small) when the value is a 400 000-character script path.
_ECHO_LIMIT: Final = 64


# What an unknown member's name must look like to be shown bare in a path (else it is quoted
# and cut like a map key, so a 100 000-character or multi-line "name" cannot flood a message).
_MEMBER_NAME: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule: where it is (a path of Glue member names) and what is wrong."""

    path: tuple[str, ...]
    """Segments: member names, ``[3]`` for list indexes, ``["--key"]`` for map keys."""
    text: str
    """What is wrong, without the path: ``must be at most 1000 (got 5000)``."""
    verbatim: bool = False
    """The text is a fixed wording clients match on, and the whole message (no path in front)."""
    constraint: str | None = None
    """For a model constraint (length, pattern, enum, range, required): AWS's framework words,
    ``Member must have length less than or equal to 255``; None for our own rules."""
    value: object = None
    """The value that broke ``constraint``, echoed as AWS echoes it (``None`` prints null)."""
    sensitive: bool = False
    """The model marks the member sensitive: its value is never echoed."""

    @property
    def field(self) -> str:
        """The path as one string: ``JobUpdate.Command.Name``, ``Arguments["--x"]``."""
        parts: list[str] = []
        for segment in self.path:
            if parts and not segment.startswith("["):
                parts.append(".")
            parts.append(segment)
        return "".join(parts)

    @property
    def message(self) -> str:
        """The message a client sees: AWS's framework text for a model constraint, else
        ``<path>: <text>`` unless the text is verbatim."""
        if self.constraint is not None:
            return aws_validation_message((self,))
        if self.verbatim or not self.path:
            return self.text
        return f"{self.field}: {self.text}"

    @property
    def aws_path(self) -> str:
        """The member path as AWS's framework writes it: ``predicate.conditions.1.member.state``.

        Member names start lower-case, a list item is ``<n>.member`` counting from 1, and a map
        entry is named by its map (AWS echoes the whole map).
        """
        parts: list[str] = []
        for segment in self.path:
            if segment.startswith("[") and segment[1:-1].isdigit():
                parts.append(f"{int(segment[1:-1]) + 1}.member")
            elif segment.startswith("["):
                break
            else:
                parts.append(segment[:1].lower() + segment[1:])
        return ".".join(parts)

    @property
    def aws_clause(self) -> str:
        """One clause of AWS's framework message: ``Value 'x' at 'name' failed to ...``."""
        if self.sensitive:
            shown = "Value"
        elif self.value is None:
            shown = "Value null"
        else:
            shown = f"Value '{_java_text(self.value)}'"
        return f"{shown} at '{self.aws_path}' failed to satisfy constraint: {self.constraint}"

    def under(self, segment: str) -> Violation:
        """The same violation seen from the enclosing structure, list or map."""
        return Violation(
            (segment, *self.path),
            self.text,
            self.verbatim,
            self.constraint,
            self.value,
            self.sensitive,
        )


Issues = tuple[Violation, ...]
_NONE: Final[Issues] = ()


def to_exception(violations: list[Violation]) -> InvalidInputException:
    """The one exception a request's violations raise.

    Model constraints alone: AWS's ValidationException, every one of them in one message as
    AWS's framework lists them. Otherwise the first of our own (a wrong type, an unknown
    member, an operation rule): InvalidInputException with our text. ``field`` is always the
    first violation's member path, for gRPC clients (ErrorInfo metadata ``field``).
    """
    first = violations[0]
    field = first.field or None
    if all(v.constraint is not None for v in violations):
        return ValidationException(aws_validation_message(violations), field=field)
    ours = next(v for v in violations if v.constraint is None)
    return InvalidInputException(ours.message, field=ours.field or None)


def aws_validation_message(violations: Iterable[Violation]) -> str:
    """AWS's framework text for model constraint violations (docs/glue-fidelity.md):
    ``1 validation error detected: Value '300' at 'maxResults' failed to satisfy constraint:
    Member must have value less than or equal to 200``; several are joined with ``; ``."""
    clauses = [v.aws_clause for v in violations]
    count = len(clauses)
    noun = "error" if count == 1 else "errors"
    return f"{count} validation {noun} detected: " + "; ".join(clauses)


def member_path(field: str, key: str) -> str:
    """The path of one map entry, as violations name it: ``DefaultArguments["--x"]``."""
    return field + _key_segment(key)


def _kind(value: object) -> str:
    """What a value is, in JSON's words, for "must be X (got Y)" messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, datetime):
        return "a timestamp"
    if isinstance(value, bytes | bytearray):
        return "bytes"
    return f"a {type(value).__name__}"


def _echo(text: str) -> str:
    """A string value quoted for a message, cut to a readable length."""
    if len(text) > _ECHO_LIMIT:
        return f"{text[:_ECHO_LIMIT]!r}... ({len(text)} characters)"
    return repr(text)


def _number(value: float) -> str:
    """A number for a message: integral bounds without ``.0``, huge ints summarised."""
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    # str() of a huge int is slow and, past 4300 digits, an error.
    if value.bit_length() > 200:
        return "a number with more than 60 digits"
    return str(value)


def _count(n: int, noun: str, plural: str | None = None) -> str:
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def _key_segment(key: object) -> str:
    """The path segment of a map key: ``["--x"]`` (JSON quoting escapes control characters)."""
    if isinstance(key, str):
        shown = key if len(key) <= _ECHO_LIMIT else key[:_ECHO_LIMIT] + "..."
        return f"[{json.dumps(shown, ensure_ascii=False)}]"
    return f"[{_echo(repr(key))}]"


def _member_segment(name: object) -> str:
    """The path segment of an unknown member: its name if it looks like one, else quoted."""
    if isinstance(name, str) and _MEMBER_NAME.fullmatch(name):
        return name
    return _key_segment(name)


def _one(text: str) -> Issues:
    return (Violation((), text),)


def _broken(text: str, constraint: str, value: object, *, sensitive: bool = False) -> Issues:
    """A model constraint broken: our text for the record, AWS's words for the message."""
    return (Violation((), text, constraint=constraint, value=value, sensitive=sensitive),)


def _length_issues(
    size: int,
    low: int,
    high: int | None,
    value: object,
    must: Callable[[str, int], str],
    *,
    sensitive: bool = False,
) -> Issues | None:
    """The broken length constraint when ``size`` is outside ``low``..``high``, else None.

    Strings, lists and maps share AWS's words; ``must("at least", n)`` phrases our text for
    what is counted ("must contain at least 2 items").
    """
    if size < low:
        return _broken(
            f"{must('at least', low)} (got {size})",
            f"Member must have length greater than or equal to {low}",
            value,
            sensitive=sensitive,
        )
    if high is not None and size > high:
        return _broken(
            f"{must('at most', high)} (got {size})",
            f"Member must have length less than or equal to {high}",
            value,
            sensitive=sensitive,
        )
    return None


def _java_text(value: object) -> str:
    """A value as AWS's (Java) framework prints it in a message, cut to a readable length."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, list | tuple):
        text = "[" + ", ".join(_java_text(item) for item in value) + "]"
    elif isinstance(value, dict):
        text = "{" + ", ".join(f"{_java_text(k)}={_java_text(v)}" for k, v in value.items()) + "}"
    elif value is None:
        text = "null"
    elif isinstance(value, int) and value.bit_length() > 200:
        text = _number(value)
    else:
        text = str(value)
    if len(text) > _ECHO_LIMIT:
        # AWS echoes the whole value; a 400 000-character script path would flood a log line.
        return text[:_ECHO_LIMIT] + "..."
    return text


def _java_double(value: float) -> str:
    """A bound as Java prints a double (``0.0``); Glue's bounds never need Java's exponent form."""
    return repr(float(value))


def _wrong_type(expected: str, value: object) -> Issues:
    return _one(f"must be {expected} (got {_kind(value)})")
