"""Requests from glue.v1 messages or Glue's JSON form (members checked by name), and following
a listing's NextToken pages.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any, Literal, Protocol, TypeVar, cast

from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

from clients.glue_client.channel import T
from glue_vocabulary.shapes import from_glue, pascal

M = TypeVar("M", bound=Message)


def build_request(
    message_type: type[M], request: M | Mapping[str, Any] | None, fields: Mapping[str, Any]
) -> M:
    """A request message from a message or a Glue-form dict, with Glue-form ``fields`` on top.

    ``fields`` override members of ``request``; maps and nested structures are merged.

    Raises:
        TypeError: ``request`` is a message of another type.
        ValueError: a Glue-form dict names a member the message does not have (a typo would
            otherwise be dropped silently, and the call made without it), or holds a value of
            the wrong type or out of range.
    """
    if request is None:
        message = message_type()
    elif isinstance(request, Message):
        if not isinstance(request, message_type):
            raise TypeError(
                f"expected a {message_type.DESCRIPTOR.full_name}, "
                f"got a {request.DESCRIPTOR.full_name}"
            )
        message = message_type()
        message.CopyFrom(request)
    else:
        message = _from_glue(message_type, request)
    if fields:
        message.MergeFrom(_from_glue(message_type, fields))
    return message


def _from_glue(message_type: type[M], data: Mapping[str, Any]) -> M:
    check_members(message_type, data)
    try:
        return from_glue(dict(data), message_type)
    except (TypeError, ValueError) as exc:
        # protobuf's words do not name the member; find it (this is the error path only).
        where = message_type.DESCRIPTOR.name
        for key, value in data.items():
            try:
                from_glue({key: value}, message_type)
            except (TypeError, ValueError):
                where = f"{where}.{key}"
                break
        raise ValueError(f"{where}: {exc}") from None


def check_members(message_type: type[Message], data: Mapping[str, Any]) -> None:
    """Raise ValueError if a Glue-form dict (or a structure in it) names an unknown member."""
    # protobuf's stubs type DESCRIPTOR as a union of its pure-Python and upb classes.
    _check_members(cast("Descriptor", message_type.DESCRIPTOR), data, "")


def _check_members(descriptor: Descriptor, data: Mapping[str, Any], path: str) -> None:
    by_name = {pascal(f.name): f for f in descriptor.fields}
    for key, value in data.items():
        field = by_name.get(key)
        where = f"{path}.{key}" if path else key
        if field is None:
            known = ", ".join(sorted(by_name))
            raise ValueError(f"{descriptor.name} has no member {where!r} (members: {known})")
        nested = field.message_type
        if nested is None or value is None:
            continue
        if nested.GetOptions().map_entry or nested.full_name == "google.protobuf.Timestamp":
            continue
        if field.is_repeated:  # type: ignore[attr-defined]
            for index, item in enumerate(value):
                if isinstance(item, Mapping):
                    _check_members(nested, item, f"{where}[{index}]")
        elif isinstance(value, Mapping):
            _check_members(nested, value, where)


class _Page(Protocol):
    """A response of a paginated operation (GetJobs, ListTriggers...)."""

    next_token: str

    def HasField(self, field_name: Literal["next_token"]) -> bool: ...  # noqa: N802 - protobuf's


P = TypeVar("P", bound=_Page)


async def _follow_pages(
    fetch: Callable[[str | None], Awaitable[P]], items: Callable[[P], Iterable[T]]
) -> AsyncIterator[T]:
    """Every item of every page: ``fetch(token)`` gets the page after ``token`` (the first for
    None), ``items`` picks a page's items; it stops at the page without a NextToken."""
    token: str | None = None
    while True:
        page = await fetch(token)
        for item in items(page):
            yield item
        if not page.HasField("next_token"):
            return
        token = page.next_token
