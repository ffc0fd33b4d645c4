"""Request validation: botocore's Glue model compiled into cached per-shape validators.

``validate_request(operation, params)`` checks a request in Glue form (PascalCase members, present
members only; see ``glue_vocabulary.shapes``) against the input shape of a Glue operation, then
against the operation rules Glue enforces beyond its model (docs/glue-semantics.md §2 and §3b).
It raises one ``InvalidInputException`` for the first violation; ``find_violations`` returns
them all.
``validate_shape(shape, value, field=...)`` checks one value against one shape of the model,
for a value that travels inside another member (the job name in a tag operation's ARN).

A broken model constraint (length, pattern, enum, range, required) reads as AWS's request
framework words it, and raises ValidationException, the code AWS answers with
(docs/glue-fidelity.md has the evidence); every such violation of the request is listed::

    1 validation error detected: Value 'x...' at 'name' failed to satisfy constraint: Member
    must have length less than or equal to 255

Anything else - a wrong JSON type, an unknown member, an operation rule whose AWS text is not
known - raises InvalidInputException with our own ``<path>: <what is wrong>``::

    JobUpdate.Command.ScriptLocation: must be a string (got an integer)
    Timeout: must be at most 10080 minutes, which is 7 days (got 20000)

Our path joins Glue member names with dots and puts list indexes and map keys (as JSON strings)
in brackets; it is the exception's ``field`` in both cases, which gRPC clients read from the
ErrorInfo metadata. A rule whose AWS text is known gives that text alone, with no path in front:
``Please set only Allocated Capacity or Max Capacity``.

The model is loaded once, lazily, from the data files of the pinned botocore (never from
``~/.aws/models`` or ``AWS_DATA_PATH``, so the limits change only when the pin does);
``glue_model()`` shares it with the HTTP gateway, so the catalog reads it once. Validators
are compiled once per shape on first use and cached for the life of the process, so a request
costs one walk over its own members, never over the model.
"""

from __future__ import annotations

import functools
import json
import math
import re
import threading
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from botocore.loaders import Loader
from botocore.model import ServiceModel

from glue_vocabulary.argument_keys import key_problem, value_problem
from servicekit.errors import InvalidInputException, ValidationException
from servicekit.internal_rules import MAX_RETRIES

__all__ = [
    "ModelValidator",
    "Violation",
    "aws_validation_message",
    "find_violations",
    "glue_model",
    "member_path",
    "preload",
    "to_exception",
    "validate_request",
    "validate_shape",
]

_SERVICE: Final = "glue"
_API_VERSION: Final = "2017-03-31"

# Values are echoed in messages so a caller can see what was wrong, but a message must stay
# readable (and a log line small) when the value is a 400 000-character script path.
_ECHO_LIMIT: Final = 64

# Glue's `integer` and `long` are Java int32/int64, and our protos carry them as int32/int64:
# a larger Python int would be accepted here and then fail (or wrap) in the proto conversion.
_INT_RANGES: Final = {"integer": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}

# Java regexes spell a supplementary character as a UTF-16 surrogate pair, so "any character
# above the BMP" is the range below; Python's str holds code points, which need the other form.
_JAVA_SUPPLEMENTARY_RANGE: Final = "\\uD800\\uDC00-\\uDBFF\\uDFFF"
_PYTHON_SUPPLEMENTARY_RANGE: Final = "\\U00010000-\\U0010FFFF"
# A lone surrogate escape left after that rewrite would mean something Python cannot express.
_LONE_SURROGATE_ESCAPE: Final = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
# Python's re has no \p{..}; the one shape of it in the Glue model is a repeated class of
# general categories (`[\p{L}\p{N}\p{P}]*`), which a category test expresses exactly.
_CATEGORY_CLASS: Final = re.compile(r"\[((?:\\p\{[A-Z][a-z]?\})+)\]([*+])")
_CATEGORY: Final = re.compile(r"\\p\{(\w+)\}")

# Glue's two workhorse string patterns, said in words: the raw regex helps nobody.
_NAME_PATTERN: Final = "[\\u0020-\\uD7FF\\uE000-\\uFFFD\\uD800\\uDC00-\\uDBFF\\uDFFF\\t]*"
_DESCRIPTION_PATTERN: Final = (
    "[\\u0020-\\uD7FF\\uE000-\\uFFFD\\uD800\\uDC00-\\uDBFF\\uDFFF\\r\\n\\t]*"
)
_PATTERN_HINTS: Final = {
    _NAME_PATTERN: "must be a single line with no control characters",
    _DESCRIPTION_PATTERN: (
        "must not contain control characters other than tab, carriage return and line feed"
    ),
}

# What an unknown member's name must look like to be shown bare in a path (else it is quoted
# and cut like a map key, so a 100 000-character or multi-line "name" cannot flood a message).
_MEMBER_NAME: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")

# Where AWS's framework prints an enum's values otherwise than the model spells them: moto's
# test_glue.py::test_create_predicate_with_invalid_logical_operator quotes AWS's answer for a bad
# LogicalOperator, whose set reads [Equals] although the model's one value is EQUALS.
_ENUM_AS_AWS_PRINTS: Final = {"LogicalOperator": "Equals"}

# Validated as "a JSON object of objects" instead of against its shape: the shape is the
# visual editor's whole node catalogue (hundreds of shapes), and we store it verbatim.
_CODE_GEN_NODES_SHAPE: Final = "CodeGenConfigurationNodes"


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


# ---------------------------------------------------------------------------------------------
# Public API


def validate_request(operation: str, params: Mapping[str, Any]) -> None:
    """Check a request in Glue form against the Glue model and the operation's rules.

    Args:
        operation: A Glue operation name as in the model, e.g. ``"CreateJob"``.
        params: The request in Glue form: PascalCase members, present members only.

    Raises:
        InvalidInputException: For the first violation; its ``field`` is the member path.
        ValueError: If ``operation`` is not an operation of the Glue model (a caller's bug).
    """
    violations = find_violations(operation, params)
    if violations:
        raise to_exception(violations)


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


def validate_shape(shape: str, value: object, *, field: str, subject: str = "") -> None:
    """Check one value against a shape of the Glue model, as a member of that shape is checked.

    For a value that travels inside another member (a job name inside an ARN): the message
    and the exception name ``field``, and ``subject`` says which part of it is wrong.

    Args:
        shape: A shape name of the Glue model, e.g. ``"NameString"``.
        value: The value to check.
        field: The request member the value came from, e.g. ``"ResourceArn"``.
        subject: Words for the value within that member, e.g. ``"the resource name"``.

    Raises:
        InvalidInputException: For the first violation; its ``field`` is ``field`` (followed by
            the path inside the value, for a structure, list or map).
    """
    found = _named_shape(shape).check(value)
    if found:
        first = found[0]
        text = f"{subject} {first.text}" if subject else first.text
        # Our wording: the value is a part of a member (a name inside an ARN), which AWS's
        # framework has no path for.
        violation = Violation((field, *first.path), text)
        raise InvalidInputException(violation.message, field=violation.field)


def member_path(field: str, key: str) -> str:
    """The path of one map entry, as violations name it: ``DefaultArguments["--x"]``."""
    return field + _key_segment(key)


def find_violations(operation: str, params: Mapping[str, Any]) -> list[Violation]:
    """Every violation in a request, model checks first, in a stable order.

    The operation rules run only on a request that passed the model checks, so they can rely on
    types and shapes; a request with model violations reports only those.

    Args:
        operation: A Glue operation name as in the model, e.g. ``"StartJobRun"``.
        params: The request in Glue form.

    Returns:
        The violations, empty when the request is valid.

    Raises:
        ValueError: If ``operation`` is not an operation of the Glue model.
    """
    compiled = _operation(operation)
    if not isinstance(params, dict):
        if not isinstance(params, Mapping):
            text = f"{operation} request must be an object (got {_kind(params)})"
            return [Violation((), text)]
        params = dict(params)
    found = compiled.root.check(params)
    if found:
        return list(found)
    return [violation for rule in compiled.rules for violation in rule(params)]


def preload(operations: Iterable[str] | None = None) -> None:
    """Compile the validators of some operations (all of them by default) ahead of use.

    Optional: validators compile lazily on first use. Calling this at start-up moves that
    one-time cost (and any surprise in the model) out of the first request.

    Args:
        operations: Glue operation names; ``None`` means every operation in the model.

    Raises:
        ValueError: If a name is not an operation of the Glue model.
    """
    names = _compiler().operation_names if operations is None else operations
    for name in names:
        _operation(name)


# ---------------------------------------------------------------------------------------------
# Message helpers (only ever called on the error path)


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


# ---------------------------------------------------------------------------------------------
# Validators: one per shape, compiled once. `check` returns the violations relative to the value
# it was given (an empty tuple, shared, when there are none); the enclosing validator prefixes its
# own segment, so the happy path builds no paths or strings at all.


class _Validator:
    __slots__ = ()

    def check(self, value: object) -> Issues:
        raise NotImplementedError


class _String(_Validator):
    __slots__ = (
        "_enum",
        "_enum_set",
        "_enum_shown",
        "_enum_text",
        "_match",
        "_max",
        "_min",
        "_model_min",
        "_non_empty",
        "_pattern",
        "_required_variant",
        "_sensitive",
    )

    def __init__(
        self,
        *,
        min_len: int,
        max_len: int | None,
        enum: tuple[str, ...] | None,
        pattern: str | None,
        sensitive: bool,
        non_empty: bool = False,
        enum_shown: str | None = None,
    ) -> None:
        self._model_min = min_len
        self._min = max(min_len, 1) if non_empty else min_len
        self._max = max_len
        self._enum = enum
        self._enum_set = frozenset(enum) if enum else None
        self._enum_text = ", ".join(enum) if enum else ""
        self._enum_shown = enum_shown or self._enum_text
        self._pattern = pattern
        self._match = _compile_pattern(pattern) if pattern is not None else None
        self._sensitive = sensitive
        self._non_empty = non_empty
        self._required_variant: _String | None = self if non_empty else None

    def required(self) -> _String:
        """This validator for a required member, where an empty string counts as missing."""
        if self._required_variant is None:
            self._required_variant = _String(
                min_len=self._model_min,
                max_len=self._max,
                enum=self._enum,
                pattern=self._pattern,
                sensitive=self._sensitive,
                non_empty=True,
                enum_shown=self._enum_shown,
            )
        return self._required_variant

    def check(self, value: object) -> Issues:
        if not isinstance(value, str):
            return _wrong_type("a string", value)
        # len() counts code points, which is what the model's lengths count
        # (docs/glue-semantics.md §2).
        length = len(value)
        if length < self._min:
            if length == 0 and self._non_empty and self._model_min == 0:
                # Required by the model but with no minimum length: not a framework constraint.
                return _one("must not be empty")
            return _broken(
                f"must be at least {_count(self._min, 'character')} long (got {length})",
                f"Member must have length greater than or equal to {self._min}",
                value,
                sensitive=self._sensitive,
            )
        if self._max is not None and length > self._max:
            return _broken(
                f"must be at most {_count(self._max, 'character')} long (got {length})",
                f"Member must have length less than or equal to {self._max}",
                value,
                sensitive=self._sensitive,
            )
        if self._enum_set is not None and value not in self._enum_set:
            shown = "the value" if self._sensitive else _echo(value)
            return _broken(
                f"{shown} is not one of {self._enum_text}",
                f"Member must satisfy enum value set: [{self._enum_shown}]",
                value,
                sensitive=self._sensitive,
            )
        if self._match is not None and self._match(value) is None:
            hint = _PATTERN_HINTS.get(self._pattern or "")
            got = "" if self._sensitive else f" (got {_echo(value)})"
            return _broken(
                hint or f"must match the pattern {self._pattern}{got}",
                f"Member must satisfy regular expression pattern: {self._pattern}",
                value,
                sensitive=self._sensitive,
            )
        return _NONE


class _Integer(_Validator):
    __slots__ = ("_high", "_low", "_modeled")

    def __init__(self, low: int, high: int, modeled: tuple[bool, bool] = (False, False)) -> None:
        self._low = low
        self._high = high
        # Which bound the model sets (a framework constraint) rather than the Java int range.
        self._modeled = modeled

    def check(self, value: object) -> Issues:
        # bool is an int subclass, but JSON's true is not a number.
        if not isinstance(value, int) or isinstance(value, bool):
            return _wrong_type("an integer", value)
        if value < self._low:
            text = f"must be at least {self._low} (got {_number(value)})"
            if not self._modeled[0]:
                return _one(text)
            constraint = f"Member must have value greater than or equal to {self._low}"
            return _broken(text, constraint, value)
        if value > self._high:
            text = f"must be at most {self._high} (got {_number(value)})"
            if not self._modeled[1]:
                return _one(text)
            constraint = f"Member must have value less than or equal to {self._high}"
            return _broken(text, constraint, value)
        return _NONE


class _Double(_Validator):
    __slots__ = ("_high", "_low")

    def __init__(self, low: float | None, high: float | None) -> None:
        self._low = low
        self._high = high

    def check(self, value: object) -> Issues:
        if not isinstance(value, int | float) or isinstance(value, bool):
            return _wrong_type("a number", value)
        # JSON has no NaN or infinity, and every comparison with NaN is false.
        if isinstance(value, float) and not math.isfinite(value):
            return _one(f"must be a finite number (got {value!r})")
        if self._low is not None and value < self._low:
            return _broken(
                f"must be at least {_number(self._low)} (got {_number(value)})",
                f"Member must have value greater than or equal to {_java_double(self._low)}",
                value,
            )
        if self._high is not None and value > self._high:
            return _broken(
                f"must be at most {_number(self._high)} (got {_number(value)})",
                f"Member must have value less than or equal to {_java_double(self._high)}",
                value,
            )
        return _NONE


class _Boolean(_Validator):
    __slots__ = ()

    def check(self, value: object) -> Issues:
        return _NONE if isinstance(value, bool) else _wrong_type("a boolean", value)


class _Timestamp(_Validator):
    __slots__ = ()

    def check(self, value: object) -> Issues:
        # The Glue form carries datetimes; Glue's JSON wire carries epoch seconds, which a future
        # HTTP gateway may pass through unchanged.
        if isinstance(value, datetime):
            return _NONE
        if isinstance(value, int | float) and not isinstance(value, bool):
            return _NONE if math.isfinite(value) else _one("must be a finite number of seconds")
        return _wrong_type("a timestamp", value)


class _Blob(_Validator):
    __slots__ = ()

    def check(self, value: object) -> Issues:
        # JSON carries blobs as base64 text.
        if isinstance(value, bytes | bytearray | str):
            return _NONE
        return _wrong_type("bytes or base64 text", value)


class _Document(_Validator):
    """A free-form JSON document: anything JSON can say is valid."""

    __slots__ = ()

    def check(self, value: object) -> Issues:
        return _NONE


class _List(_Validator):
    __slots__ = ("_max", "_member", "_min")

    def __init__(self, min_items: int, max_items: int | None) -> None:
        self._min = min_items
        self._max = max_items
        self._member: _Validator = _Document()

    def bind(self, member: _Validator) -> None:
        """Set the member validator (after registration, so recursive shapes resolve)."""
        self._member = member

    def check(self, value: object) -> Issues:
        if not isinstance(value, list | tuple):
            return _wrong_type("a list", value)
        size = len(value)
        if size < self._min:
            return _broken(
                f"must contain at least {_count(self._min, 'item')} (got {size})",
                f"Member must have length greater than or equal to {self._min}",
                value,
            )
        if self._max is not None and size > self._max:
            return _broken(
                f"must contain at most {_count(self._max, 'item')} (got {size})",
                f"Member must have length less than or equal to {self._max}",
                value,
            )
        check = self._member.check
        found: list[Violation] = []
        for index, item in enumerate(value):
            issues = check(item)
            if issues:
                segment = f"[{index}]"
                found.extend(issue.under(segment) for issue in issues)
        return tuple(found) if found else _NONE


class _Map(_Validator):
    __slots__ = ("_key", "_max", "_min", "_value")

    def __init__(self, min_entries: int, max_entries: int | None) -> None:
        self._min = min_entries
        self._max = max_entries
        self._key: _Validator = _Document()
        self._value: _Validator = _Document()

    def bind(self, key: _Validator, value: _Validator) -> None:
        """Set the key and value validators (after registration, so recursive shapes resolve)."""
        self._key = key
        self._value = value

    def check(self, value: object) -> Issues:
        if not isinstance(value, dict):
            return _wrong_type("an object", value)
        size = len(value)
        if size < self._min:
            return _broken(
                f"must contain at least {_count(self._min, 'entry', 'entries')} (got {size})",
                f"Member must have length greater than or equal to {self._min}",
                value,
            )
        if self._max is not None and size > self._max:
            return _broken(
                f"must contain at most {_count(self._max, 'entry', 'entries')} (got {size})",
                f"Member must have length less than or equal to {self._max}",
                value,
            )
        check_key = self._key.check
        check_value = self._value.check
        found: list[Violation] = []
        for key, item in value.items():
            key_issues = check_key(key)
            item_issues = check_value(item)
            if key_issues or item_issues:
                segment = _key_segment(key)
                found.extend(_map_entry(i, segment, "keys", value, key=True) for i in key_issues)
                found.extend(_map_entry(i, segment, "value", value) for i in item_issues)
        return tuple(found) if found else _NONE


def _map_entry(
    issue: Violation, segment: str, part: str, whole: object, *, key: bool = False
) -> Violation:
    """A key's or value's violation seen from its map: AWS's framework names the map, echoes
    it whole and wraps the constraint (``Map value must satisfy constraint: [...]``)."""
    text = f"key {issue.text}" if key else issue.text
    path = (segment,) if key else (segment, *issue.path)
    if issue.constraint is None or issue.path:
        return Violation(path, text)
    constraint = f"Map {part} must satisfy constraint: [{issue.constraint}]"
    return Violation(path, text, constraint=constraint, value=whole, sensitive=issue.sensitive)


class _Structure(_Validator):
    __slots__ = ("_members", "_name", "_required", "_union")

    def __init__(self, name: str, *, union: bool) -> None:
        self._name = name
        self._union = union
        # Filled after construction, so that a recursive shape can refer to itself.
        self._members: dict[str, _Validator] = {}
        self._required: tuple[str, ...] = ()

    def fill(self, members: dict[str, _Validator], required: tuple[str, ...]) -> None:
        self._members = members
        self._required = required

    def check(self, value: object) -> Issues:
        if not isinstance(value, dict):
            return _wrong_type("an object", value)
        members = self._members
        unknown: list[object] = []
        found: list[Violation] = []
        for name, item in value.items():
            validator = members.get(name)
            if validator is None:
                unknown.append(name)
            elif item is not None:
                # A JSON null means "absent", as botocore treats it.
                issues = validator.check(item)
                if issues:
                    found.extend(issue.under(name) for issue in issues)
        missing = [name for name in self._required if value.get(name) is None]
        if self._union:
            found.extend(self._check_union(value))
        if not (unknown or missing or found):
            return _NONE
        # Unknown members first (usually a typo that explains the rest), then missing ones.
        head = self._unknown(unknown) + [
            Violation((name,), "is required", constraint="Member must not be null")
            for name in missing
        ]
        return tuple(head + found)

    def _unknown(self, names: list[object]) -> list[Violation]:
        out: list[Violation] = []
        by_lower = {member.lower(): member for member in self._members}
        for position, name in enumerate(names):
            text = f"is not a member of {self._name}"
            suggestion = by_lower.get(name.lower()) if isinstance(name, str) else None
            if suggestion is not None:
                text += f" (did you mean {suggestion}?)"
            if position == 0 and len(names) > 1:
                # The exception carries only the first violation; let it name the others too.
                others = [_member_segment(n) for n in names[1:6]]
                more = f" and {len(names) - 6} more" if len(names) > 6 else ""
                text += f" (also unknown: {', '.join(others)}{more})"
            out.append(Violation((_member_segment(name),), text))
        return out

    def _check_union(self, value: dict[Any, Any]) -> list[Violation]:
        chosen = [name for name in self._members if value.get(name) is not None]
        if len(chosen) == 1:
            return []
        got = ", ".join(chosen) if chosen else "none"
        return [Violation((), f"must set exactly one of {', '.join(self._members)} (got {got})")]


class _CodeGenNodes(_Validator):
    __slots__ = ("_key",)

    def __init__(self, key: _Validator) -> None:
        self._key = key

    def check(self, value: object) -> Issues:
        # glue_vocabulary.shapes leaves text that is not valid JSON as a str.
        if isinstance(value, str):
            return _one(
                "must be a JSON object whose values are objects"
                " (got text that is not a JSON object)"
            )
        if not isinstance(value, dict):
            return _one(f"must be a JSON object whose values are objects (got {_kind(value)})")
        found: list[Violation] = []
        for key, node in value.items():
            segment = _key_segment(key)
            found.extend(Violation((segment,), f"key {i.text}") for i in self._key.check(key))
            if not isinstance(node, dict):
                found.append(Violation((segment,), f"must be an object (got {_kind(node)})"))
        return tuple(found) if found else _NONE


def _compile_pattern(java: str) -> Callable[[str], object]:
    """A whole-string matcher for one of the model's Java regexes.

    The model's patterns are Java regexes matched against the whole value (AWS rejects a name
    with a newline although `[...]*` matches its empty prefix). Java's \\w, \\d and \\s are
    ASCII-only, hence re.ASCII. (Java's ``.`` also refuses \\r and U+2028/9 where Python's only
    refuses \\n; no job, run or trigger pattern depends on that.)

    Raises:
        NotImplementedError: For a construct Python's re cannot express; the unit tests compile
            every pattern in the model, so a new one shows up there, not in production.
    """
    category_class = _CATEGORY_CLASS.fullmatch(java)
    if category_class is not None:
        categories = tuple(_CATEGORY.findall(category_class.group(1)))
        allow_empty = category_class.group(2) == "*"

        def match_categories(text: str) -> object:
            if not text and not allow_empty:
                return None
            ok = all(unicodedata.category(c).startswith(categories) for c in text)
            return True if ok else None

        return match_categories
    python = java.replace(_JAVA_SUPPLEMENTARY_RANGE, _PYTHON_SUPPLEMENTARY_RANGE)
    if "\\p{" in python or _LONE_SURROGATE_ESCAPE.search(python):
        raise NotImplementedError(f"cannot translate the Java pattern {java!r}")
    return re.compile(python, re.ASCII).fullmatch


# ---------------------------------------------------------------------------------------------
# Compilation from the model


class ModelValidator:
    """Checks requests against a botocore service model (Glue's; the gateway's CloudWatch Logs
    operations use it with the logs model): shapes are turned into validators once each,
    memoised by shape name."""

    def __init__(self, model: Any) -> None:
        self._model = model
        self._by_shape: dict[str, _Validator] = {}
        self.operation_names: tuple[str, ...] = tuple(model.operation_names)

    def check(self, operation: str, params: Mapping[str, Any]) -> list[Violation]:
        """Every rule of the model ``params`` breaks as ``operation``'s input (types, lengths,
        patterns, ranges, enums, required members); empty if none.

        Raises:
            ValueError: ``operation`` is not one of the model's.
        """
        return list(self.operation_root(operation).check(dict(params)))

    def operation_root(self, operation: str) -> _Structure:
        if operation not in self.operation_names:
            raise ValueError(f"{operation!r} is not an operation of the Glue model")
        shape = self._model.operation_model(operation).input_shape
        if shape is None:
            # No input members at all: any member given is unknown.
            return _Structure(f"{operation}Request", union=False)
        root = self.shape(shape)
        if not isinstance(root, _Structure):
            raise TypeError(f"the input of {operation} is not a structure")
        return root

    def shape(self, shape: Any) -> _Validator:
        name: str = shape.name
        cached = self._by_shape.get(name)
        if cached is not None:
            return cached
        validator = self._build(shape)
        self._by_shape[name] = validator
        return validator

    def _build(self, shape: Any) -> _Validator:
        meta: dict[str, Any] = shape.metadata
        kind: str = shape.type_name
        if shape.name == _CODE_GEN_NODES_SHAPE:
            return _CodeGenNodes(self.shape(shape.key))
        if kind == "string":
            return _String(
                min_len=int(meta.get("min", 0)),
                max_len=int(meta["max"]) if "max" in meta else None,
                enum=tuple(shape.enum) or None,
                pattern=meta.get("pattern"),
                sensitive=bool(meta.get("sensitive", False)),
                enum_shown=_ENUM_AS_AWS_PRINTS.get(shape.name),
            )
        if kind in _INT_RANGES:
            low, high = _INT_RANGES[kind]
            return _Integer(
                max(low, int(meta.get("min", low))),
                min(high, int(meta.get("max", high))),
                ("min" in meta, "max" in meta),
            )
        if kind in ("double", "float"):
            low_f = float(meta["min"]) if "min" in meta else None
            high_f = float(meta["max"]) if "max" in meta else None
            return _Double(low_f, high_f)
        if kind == "boolean":
            return _Boolean()
        if kind == "timestamp":
            return _Timestamp()
        if kind == "blob":
            return _Blob()
        if kind == "list":
            lst = _List(int(meta.get("min", 0)), int(meta["max"]) if "max" in meta else None)
            # Registered before its member compiles, in case the member refers back to it.
            self._by_shape[shape.name] = lst
            lst.bind(self.shape(shape.member))
            return lst
        if kind == "map":
            mapping = _Map(int(meta.get("min", 0)), int(meta["max"]) if "max" in meta else None)
            self._by_shape[shape.name] = mapping
            mapping.bind(self.shape(shape.key), self.shape(shape.value))
            return mapping
        if kind == "structure":
            if getattr(shape, "is_document_type", False):
                return _Document()
            structure = _Structure(shape.name, union=bool(getattr(shape, "is_tagged_union", False)))
            self._by_shape[shape.name] = structure
            required = tuple(shape.required_members)
            members: dict[str, _Validator] = {}
            for member_name, member_shape in shape.members.items():
                validator = self.shape(member_shape)
                if member_name in required and isinstance(validator, _String):
                    # A required string must also be non-empty (Role has no min length).
                    validator = validator.required()
                members[member_name] = validator
            structure.fill(members, required)
            return structure
        raise NotImplementedError(f"shape {shape.name!r} has unsupported type {kind!r}")


@functools.cache
def glue_model() -> ServiceModel:
    """botocore's Glue service model, loaded once: the validators' and the HTTP gateway's."""
    return builtin_model(_SERVICE, _API_VERSION)


def builtin_model(service: str, api_version: str | None = None) -> ServiceModel:
    """A service model from the pinned botocore's own data (Glue's; CloudWatch Logs' for the
    gateway's logs operations)."""
    # The pinned botocore's own data only: a session would also read ~/.aws/models and
    # AWS_DATA_PATH, which could silently change the limits we enforce.
    loader = Loader(
        extra_search_paths=[Loader.BUILTIN_DATA_PATH],
        include_default_search_paths=False,
        include_default_extras=False,
    )
    description = loader.load_service_model(service, "service-2", api_version=api_version)
    return ServiceModel(description, service_name=service)


@functools.cache
def _compiler() -> ModelValidator:
    return ModelValidator(glue_model())


# ---------------------------------------------------------------------------------------------
# Operation rules beyond the model (docs/glue-semantics.md §2, §3b). Each rule sees a request
# that passed the model checks, so members have the right types when present.

Rule = Callable[[Mapping[str, Any]], Iterator[Violation]]


def _bounded(
    member: str, *, low: float | None = None, high: float | None = None, why: str = ""
) -> Rule:
    """A numeric member must lie in [low, high]; ``why`` follows the upper bound in the text."""

    def rule(params: Mapping[str, Any]) -> Iterator[Violation]:
        value = params.get(member)
        if value is None:
            return
        if low is not None and value < low:
            yield Violation((member,), f"must be at least {_number(low)} (got {_number(value)})")
        elif high is not None and value > high:
            text = f"must be at most {_number(high)}{why} (got {_number(value)})"
            yield Violation((member,), text)

    return rule


def _required(member: str, why: str) -> Rule:
    """A member the model leaves optional but the operation cannot do without."""

    def rule(params: Mapping[str, Any]) -> Iterator[Violation]:
        if params.get(member) in (None, ""):
            yield Violation((member,), f"is required{why}")

    return rule


def _not_with(member: str, others: tuple[str, ...], verbatim: str | None = None) -> Rule:
    """``member`` must not be set together with any of ``others``."""

    def rule(params: Mapping[str, Any]) -> Iterator[Violation]:
        if params.get(member) is None:
            return
        clashing = [other for other in others if params.get(other) is not None]
        if not clashing:
            return
        if verbatim is not None:
            yield Violation((member,), verbatim, verbatim=True)
            return
        either = " and ".join(others)
        yield Violation(
            (member,),
            f"cannot be set together with {' or '.join(clashing)}; set either {member} or {either}",
        )

    return rule


def _within(member: str, *rules: Rule) -> Rule:
    """Apply ``rules`` to the structure in ``member``, if present."""

    def rule(params: Mapping[str, Any]) -> Iterator[Violation]:
        inner = params.get(member)
        if isinstance(inner, dict):
            for each in rules:
                for violation in each(inner):
                    yield violation.under(member)

    return rule


def _each(member: str, *rules: Rule) -> Rule:
    """Apply ``rules`` to every structure in the list in ``member``, if present."""

    def rule(params: Mapping[str, Any]) -> Iterator[Violation]:
        for index, inner in enumerate(params.get(member) or ()):
            if isinstance(inner, dict):
                for each in rules:
                    for violation in each(inner):
                        yield violation.under(f"[{index}]").under(member)

    return rule


def _as_shape(member: str, shape: str) -> Rule:
    """``member`` is held to another shape of the model than its own (one without limits)."""

    def rule(params: Mapping[str, Any]) -> Iterator[Violation]:
        if member in params:
            for violation in _named_shape(shape).check(params[member]):
                # Our rule, not the model's: AWS's framework would not answer it, so our words.
                yield Violation((member, *violation.path), violation.text)

    return rule


def _script_arguments(member: str) -> Rule:
    """The argument map in ``member`` holds no key or value a job script would misread as the
    job's name or run id (``glue_vocabulary.argument_keys``); every run passes them through
    argparse."""

    def rule(params: Mapping[str, Any]) -> Iterator[Violation]:
        arguments = params.get(member)
        if not isinstance(arguments, dict):
            return
        for key, value in arguments.items():
            problem = key_problem(key)
            if problem is None and isinstance(value, str):
                problem = value_problem(value)
            if problem is not None:
                yield Violation((member, _key_segment(key)), problem)

    return rule


# Glue's docs: the timeout (minutes) must be under 7 days; the model only has min 1.
_MAX_TIMEOUT_MINUTES: Final = 10080
# Our per-job concurrency ceiling, after Glue's documented default per-job quota (about 1000).
# The model sets no bound, and an unbounded value would let one job claim the whole run queue.
_MAX_CONCURRENT_RUNS_CEILING: Final = 1000

_TIMEOUT_RULE: Final = _bounded(
    "Timeout", high=_MAX_TIMEOUT_MINUTES, why=" minutes, which is 7 days"
)
# Bounds on capacity members the model leaves open. Negative values mean nothing, and a job
# cannot run on zero workers. Zero stays allowed for AllocatedCapacity and MaxCapacity ("no DPUs
# asked for" is harmless, and nothing documents a higher floor); their real floors depend on the
# command and Glue version, which is the runner's business, not the API's.
_CAPACITY_RULES: Final = (
    _bounded("NumberOfWorkers", low=1),
    _bounded("AllocatedCapacity", low=0),
    _bounded("MaxCapacity", low=0),
)
# Glue's docs: do not set MaxCapacity together with WorkerType or NumberOfWorkers (a job is sized
# either in DPUs or in workers, docs/glue-semantics.md §2).
_CAPACITY_EXCLUSIVE: Final = _not_with("MaxCapacity", ("WorkerType", "NumberOfWorkers"))
# MaxRetries: AWS documents 0 to 10 (``MAX_RETRIES`` cites the page; the model has no bound).
# Every retry is a new process after a backoff, so an unbounded count would let one failing
# job restart for ever; a client that works against AWS stays within 10.
_ARGUMENT_MAPS: Final = (
    _script_arguments("DefaultArguments"),
    _script_arguments("NonOverridableArguments"),
)
_JOB_DEFINITION_RULES: Final = (
    _TIMEOUT_RULE,
    _bounded(
        "MaxRetries",
        low=0,
        high=MAX_RETRIES,
        why=", the most AWS Glue documents for a job's retries",
    ),
    _within(
        "ExecutionProperty",
        _bounded(
            "MaxConcurrentRuns",
            low=1,
            high=_MAX_CONCURRENT_RUNS_CEILING,
            why=", the per-job ceiling of this service",
        ),
    ),
    *_CAPACITY_RULES,
    _CAPACITY_EXCLUSIVE,
    *_ARGUMENT_MAPS,
)
# UpdateJob replaces the whole definition (docs/glue-semantics.md §3b), and a job without a role
# or a command cannot exist, although the model leaves both optional in JobUpdate.
_REPLACES_DEFINITION: Final = " (UpdateJob replaces the whole job definition)"

# The bookmark operations' JobName and RunId are plain strings in the model (no length, no
# pattern), but they name a job and a run like everywhere else: held to the shapes GetJobRun's
# JobName and RunId have (1-255 characters, one line), so a name no job can have is refused as
# invalid rather than looked up and not found.
_BOOKMARK_RULES: Final = (_as_shape("JobName", "NameString"), _as_shape("RunId", "IdString"))

# An action starts runs with its Arguments over the job's, as StartJobRun does.
_ACTION_RULES: Final = (_TIMEOUT_RULE, _script_arguments("Arguments"))

_OPERATION_RULES: Final[Mapping[str, tuple[Rule, ...]]] = {
    "CreateJob": _JOB_DEFINITION_RULES,
    "UpdateJob": (
        _within(
            "JobUpdate",
            _required("Role", _REPLACES_DEFINITION),
            _required("Command", _REPLACES_DEFINITION),
            *_JOB_DEFINITION_RULES,
        ),
    ),
    "StartJobRun": (
        _TIMEOUT_RULE,
        *_CAPACITY_RULES,
        # moto's wording, reproduced verbatim (docs/glue-semantics.md §2).
        _not_with(
            "MaxCapacity",
            ("AllocatedCapacity",),
            verbatim="Please set only Allocated Capacity or Max Capacity",
        ),
        _CAPACITY_EXCLUSIVE,
        _script_arguments("Arguments"),
    ),
    # Only the action timeout and arguments here; the trigger and predicate rules live with
    # triggers.
    "GetJobBookmark": _BOOKMARK_RULES,
    "ResetJobBookmark": _BOOKMARK_RULES,
    "CreateTrigger": (_each("Actions", *_ACTION_RULES),),
    "UpdateTrigger": (_within("TriggerUpdate", _each("Actions", *_ACTION_RULES)),),
}


# ---------------------------------------------------------------------------------------------
# Per-operation cache


@dataclass(frozen=True, slots=True)
class _Operation:
    root: _Structure
    rules: tuple[Rule, ...]


_OPERATIONS: dict[str, _Operation] = {}
# Compilation registers a structure before filling it (for recursive shapes); the lock keeps
# another thread from validating against a half-filled one.
_COMPILE_LOCK: Final = threading.Lock()


def _operation(name: str) -> _Operation:
    compiled = _OPERATIONS.get(name)
    if compiled is None:
        with _COMPILE_LOCK:
            compiled = _OPERATIONS.get(name)
            if compiled is None:
                root = _compiler().operation_root(name)
                compiled = _Operation(root, _OPERATION_RULES.get(name, ()))
                _OPERATIONS[name] = compiled
    return compiled


@functools.cache
def _named_shape(name: str) -> _Validator:
    with _COMPILE_LOCK:
        return _compiler().shape(glue_model().shape_for(name))
