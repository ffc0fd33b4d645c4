"""Proto messages <-> Glue's JSON shapes (PascalCase member names), generically.

The public protos name every field after a Glue member (``JobName`` -> ``job_name``), so one
mechanical mapping serves every message: validation, storage and (later) the HTTP gateway all
work on the Glue form, and no rule is written twice. Values in the Glue form are JSON-ready
(str, int, float, bool, list, dict) except timestamps, which are aware UTC datetimes.
``code_gen_configuration_nodes`` travels as JSON text in protos and as an object in Glue form.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
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


class _Kind(enum.Enum):
    """How one field's value converts, decided once per field (``_members``)."""

    SCALAR = enum.auto()
    JSON_TEXT = enum.auto()
    MAP = enum.auto()
    REPEATED_SCALAR = enum.auto()
    REPEATED_MESSAGE = enum.auto()
    MESSAGE = enum.auto()
    TIMESTAMP = enum.auto()


@dataclass(frozen=True, slots=True)
class _Member:
    name: str
    """The field's proto name (its attribute)."""
    key: str
    """Its Glue member name."""
    kind: _Kind


def _kind(field: FieldDescriptor) -> _Kind:
    is_message = field.type == FieldDescriptor.TYPE_MESSAGE
    if is_message and field.message_type is not None and field.message_type.GetOptions().map_entry:
        return _Kind.MAP
    if field.is_repeated:  # type: ignore[attr-defined]
        return _Kind.REPEATED_MESSAGE if is_message else _Kind.REPEATED_SCALAR
    if is_message:
        assert field.message_type is not None
        if field.message_type.full_name == "google.protobuf.Timestamp":
            return _Kind.TIMESTAMP
        return _Kind.MESSAGE
    return _Kind.JSON_TEXT if field.name in _JSON_TEXT_FIELDS else _Kind.SCALAR


# Every message type's members, worked out on first use: the conversions run on each call of
# both services, and the name and kind of a field never change.
_MEMBERS: dict[Descriptor, dict[FieldDescriptor, _Member]] = {}


def _members(descriptor: Descriptor) -> dict[FieldDescriptor, _Member]:
    """The members of a message type, in field order, by field."""
    members = _MEMBERS.get(descriptor)
    if members is None:
        members = {f: _Member(f.name, pascal(f.name), _kind(f)) for f in descriptor.fields}
        _MEMBERS[descriptor] = members
    return members


def timestamp_to_datetime(ts: timestamp_pb2.Timestamp) -> datetime:
    """An aware UTC datetime from a protobuf Timestamp."""
    return ts.ToDatetime(tzinfo=UTC)


def to_glue(message: Message) -> GlueDict:
    """The Glue form of a message: present fields only, PascalCase names."""
    members = _members(message.DESCRIPTOR)  # type: ignore[arg-type]
    out: GlueDict = {}
    for field, value in message.ListFields():
        member = members[field]
        out[member.key] = _value_to_glue(member, value)
    return out


def _value_to_glue(member: _Member, value: Any) -> Any:
    kind = member.kind
    if kind is _Kind.SCALAR:
        return value
    if kind is _Kind.MAP:
        return dict(value)
    if kind is _Kind.REPEATED_MESSAGE:
        return [to_glue(v) for v in value]
    if kind is _Kind.REPEATED_SCALAR:
        return list(value)
    if kind is _Kind.TIMESTAMP:
        return timestamp_to_datetime(value)
    if kind is _Kind.MESSAGE:
        return to_glue(value)
    try:
        return json.loads(value)
    except ValueError:
        # Left as text; validation reports it with the field's name.
        return value


def from_glue(data: GlueDict, message_type: type[M]) -> M:
    """Build a message of ``message_type`` from its Glue form; unknown members are ignored."""
    message = message_type()
    _fill(message, data)
    return message


def _fill(message: Message, data: GlueDict) -> None:
    for member in _members(message.DESCRIPTOR).values():  # type: ignore[arg-type]
        value = data.get(member.key)
        if value is None:
            continue
        kind = member.kind
        if kind is _Kind.SCALAR:
            setattr(message, member.name, value)
        elif kind is _Kind.MAP:
            getattr(message, member.name).update({str(k): str(v) for k, v in value.items()})
        elif kind is _Kind.REPEATED_SCALAR:
            getattr(message, member.name).extend(value)
        elif kind is _Kind.REPEATED_MESSAGE:
            target = getattr(message, member.name)
            for item in value:
                _fill(target.add(), item)
        elif kind is _Kind.TIMESTAMP:
            getattr(message, member.name).FromDatetime(value)
        elif kind is _Kind.MESSAGE:
            sub = getattr(message, member.name)
            _fill(sub, value)
            sub.SetInParent()
        elif isinstance(value, str):
            setattr(message, member.name, value)
        else:
            setattr(message, member.name, json.dumps(value, separators=(",", ":")))


def message_members(message_type: type[Message]) -> list[str]:
    """The Glue member names a message carries (for checks against the Glue model)."""
    return [pascal(f.name) for f in message_type.DESCRIPTOR.fields]
