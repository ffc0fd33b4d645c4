"""AWS JSON 1.1 as botocore speaks it for Glue: request bodies in, response and error bodies out.

docs/glue-semantics.md §5 is the reference. In short: the body is a JSON object whose member
names are the model's; timestamps go out as epoch seconds (numbers); an absent member is left
out, except that a list or map member of an output is sent empty (as Glue does, so
``response["Jobs"]`` works on an empty listing); NextToken is left out at the end of a listing
(botocore's paginators stop on that); errors are ``{"__type": <code>, "message": <text>}``.
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache

from botocore.model import ListShape, MapShape, Shape, StructureShape

from catalog_service.glue_defaults import RUN_EMPTY_LISTS
from catalog_service.validation.model import glue_model
from glue_vocabulary.shapes import GlueDict

CONTENT_TYPE = "application/x-amz-json-1.1"
TARGET_PREFIX = "AWSGlue."
# The operations whose output holds JobRuns (GetJobRun's JobRun, GetJobRuns' JobRuns).
_RUN_OUTPUTS = frozenset({"GetJobRun", "GetJobRuns"})


class SerializationError(Exception):
    """The body is not a JSON object (AWS answers SerializationException)."""


@cache
def _empty_collections(operation: str) -> tuple[tuple[str, bool], ...]:
    """(member, is_list) for the list and map members of an operation's output."""
    shape = glue_model().operation_model(operation).output_shape
    if shape is None:
        return ()
    return tuple(
        (name, member.type_name == "list")
        for name, member in shape.members.items()  # type: ignore[attr-defined]
        if member.type_name in ("list", "map")
    )


def decode_request(operation: str, body: bytes) -> GlueDict:
    """A request body as a Glue-form dict; an empty body is ``{}``.

    A structure member sent as JSON null is dropped: botocore never sends one, and AWS JSON
    servers read it as absent - so every rule below sees one spelling of "not given".
    """
    if not body.strip():
        return {}
    try:
        value = json.loads(body)
        if b"\\u" in body:
            # A \uD800-style escape decodes to a lone surrogate, which is no Unicode text:
            # refuse it here rather than fail on it deep inside (protobuf, the database).
            json.dumps(value, ensure_ascii=False).encode()
    except RecursionError:
        raise SerializationError("the request body is nested too deeply") from None
    except UnicodeEncodeError:
        raise SerializationError(
            "the request body holds an unpaired UTF-16 surrogate escape (\\uD800-\\uDFFF)"
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise SerializationError(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise SerializationError(
            f"the request body must be a JSON object, not {type(value).__name__}"
        )
    try:
        _drop_null_members(value, glue_model().operation_model(operation).input_shape)
    except RecursionError:
        raise SerializationError("the request body is nested too deeply") from None
    return value


def _drop_null_members(value: object, shape: Shape | None) -> None:
    """Remove null members from structures, in place, following the model's shapes.

    Only structure members: a null list element or map value is a value, refused by validation.
    """
    if shape is None:
        return
    if isinstance(value, dict) and isinstance(shape, StructureShape):
        members = shape.members
        for name in [name for name, member in value.items() if member is None]:
            del value[name]
        for name, member in value.items():
            if name in members:
                _drop_null_members(member, members[name])
    elif isinstance(value, list) and isinstance(shape, ListShape):
        for item in value:
            _drop_null_members(item, shape.member)
    elif isinstance(value, dict) and isinstance(shape, MapShape):
        for item in value.values():
            _drop_null_members(item, shape.value)


def _json_default(value: object) -> float:
    if isinstance(value, datetime):
        return value.timestamp()
    raise TypeError(f"cannot encode {type(value).__name__}")


def _modeled_only(value: object, shape: Shape) -> None:
    """Drop, in place, members the model's shape does not have: the API carries a few of its
    own (who created a job, who started a run) that are not Glue's and are not sent here."""
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        members = shape.members
        for name in [name for name in value if name not in members]:
            del value[name]
        for name, member in value.items():
            _modeled_only(member, members[name])
    elif isinstance(shape, ListShape) and isinstance(value, list) and _nests(shape.member):
        for item in value:
            _modeled_only(item, shape.member)
    elif isinstance(shape, MapShape) and isinstance(value, dict) and _nests(shape.value):
        for item in value.values():
            _modeled_only(item, shape.value)


def _run_lists(output: GlueDict) -> None:
    """Give every JobRun of an output the list members AWS sends empty rather than leaves out
    (protobuf cannot tell an empty list from none, so the gRPC form has no such member)."""
    runs = output.get("JobRuns")
    if not isinstance(runs, list):
        runs = [output["JobRun"]] if isinstance(output.get("JobRun"), dict) else []
    for run in runs:
        if isinstance(run, dict):
            for name in RUN_EMPTY_LISTS:
                run.setdefault(name, [])


def _nests(shape: Shape) -> bool:
    return shape.type_name in ("structure", "list", "map")


def encode_output(operation: str, output: GlueDict) -> bytes:
    """An operation's output (Glue form, datetimes allowed) as a response body, holding only
    members of the operation's output shape."""
    shape = glue_model().operation_model(operation).output_shape
    if shape is not None:
        _modeled_only(output, shape)
    if not output.get("NextToken"):
        output.pop("NextToken", None)
    for name, is_list in _empty_collections(operation):
        if name not in output:
            output[name] = [] if is_list else {}
    if operation in _RUN_OUTPUTS:
        _run_lists(output)
    return json.dumps(output, default=_json_default, separators=(",", ":")).encode()


def encode_error(code: str, message: str) -> bytes:
    """An error body botocore parses into ``Error.Code`` / ``Error.Message``.

    Both spellings of the message member: botocore reads either, Glue itself sends ``Message``.
    """
    return json.dumps({"__type": code, "message": message, "Message": message}).encode()
