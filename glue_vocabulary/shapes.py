"""Proto messages <-> Glue's JSON shapes (PascalCase member names), generically.

The public protos name every field after a Glue member (``JobName`` -> ``job_name``), so one
mechanical mapping serves every message: validation, storage and (later) the HTTP gateway all
work on the Glue form, and no rule is written twice. Values in the Glue form are JSON-ready
(str, int, float, bool, list, dict) except timestamps, which are aware UTC datetimes.
``code_gen_configuration_nodes`` travels as JSON text in protos and as an object in Glue form.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, TypeVar

from google.protobuf import timestamp_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

GlueDict = dict[str, Any]
M = TypeVar("M", bound=Message)

# Members whose PascalCase name is not the plain title-casing of the snake_case field.
_IRREGULAR = {"dpu_seconds": "DPUSeconds"}
# Fields that hold a JSON document as text on the proto side.
_JSON_TEXT_FIELDS = frozenset({"code_gen_configuration_nodes"})


def pascal(field_name: str) -> str:
    """Glue's member name for a proto field name."""
    return _IRREGULAR.get(field_name) or "".join(p.title() for p in field_name.split("_"))


def _message_type(field: FieldDescriptor) -> Descriptor:
    assert field.message_type is not None
    return field.message_type


def _is_map(field: FieldDescriptor) -> bool:
    return field.type == FieldDescriptor.TYPE_MESSAGE and bool(
        _message_type(field).GetOptions().map_entry
    )


def _is_repeated(field: FieldDescriptor) -> bool:
    return field.is_repeated  # type: ignore[attr-defined,no-any-return]


def timestamp_to_datetime(ts: timestamp_pb2.Timestamp) -> datetime:
    """An aware UTC datetime from a protobuf Timestamp."""
    return ts.ToDatetime(tzinfo=UTC)


def to_glue(message: Message) -> GlueDict:
    """The Glue form of a message: present fields only, PascalCase names."""
    out: GlueDict = {}
    for field, value in message.ListFields():
        out[pascal(field.name)] = _value_to_glue(field, value)
    return out


def _value_to_glue(field: FieldDescriptor, value: Any) -> Any:
    if _is_map(field):
        return dict(value)
    if _is_repeated(field):
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            return [to_glue(v) for v in value]
        return list(value)
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        if _message_type(field).full_name == "google.protobuf.Timestamp":
            return timestamp_to_datetime(value)
        return to_glue(value)
    if field.name in _JSON_TEXT_FIELDS:
        try:
            return json.loads(value)
        except ValueError:
            # Left as text; validation reports it with the field's name.
            return value
    return value


def from_glue(data: GlueDict, message_type: type[M]) -> M:
    """Build a message of ``message_type`` from its Glue form; unknown members are ignored."""
    message = message_type()
    _fill(message, data)
    return message


def _fill(message: Message, data: GlueDict) -> None:
    descriptor: Descriptor = message.DESCRIPTOR  # type: ignore[assignment]
    for field in descriptor.fields:
        key = pascal(field.name)
        if key not in data or data[key] is None:
            continue
        value = data[key]
        if _is_map(field):
            getattr(message, field.name).update({str(k): str(v) for k, v in value.items()})
        elif _is_repeated(field):
            target = getattr(message, field.name)
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                for item in value:
                    _fill(target.add(), item)
            else:
                target.extend(value)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            sub = getattr(message, field.name)
            if _message_type(field).full_name == "google.protobuf.Timestamp":
                sub.FromDatetime(value)
            else:
                _fill(sub, value)
                sub.SetInParent()
        elif field.name in _JSON_TEXT_FIELDS and not isinstance(value, str):
            setattr(message, field.name, json.dumps(value, separators=(",", ":")))
        else:
            setattr(message, field.name, value)


def message_members(message_type: type[Message]) -> list[str]:
    """The Glue member names a message carries (for checks against the Glue model)."""
    return [pascal(f.name) for f in message_type.DESCRIPTOR.fields]
