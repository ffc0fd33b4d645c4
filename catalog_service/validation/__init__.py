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

Where things are: ``model`` loads the model and compiles its shapes into the validators of
``scalars`` and ``containers``; ``rules`` holds the operation rules beyond the model;
``violations`` says what is wrong in AWS's words or ours; this module is the entry points and
the per-operation cache.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from catalog_service.validation.containers import _Structure
from catalog_service.validation.model import _COMPILE_LOCK, _compiler, _named_shape
from catalog_service.validation.rules import _OPERATION_RULES, Rule
from catalog_service.validation.violations import Violation, _kind, to_exception
from servicekit.errors import InvalidInputException

__all__ = [
    "find_violations",
    "preload",
    "validate_request",
    "validate_shape",
]


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


@dataclass(frozen=True, slots=True)
class _Operation:
    root: _Structure
    rules: tuple[Rule, ...]


_OPERATIONS: dict[str, _Operation] = {}


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
