"""Validators of the Glue model's container shapes: lists, maps and structures (and the visual
editor's node catalogue, checked as a JSON object of objects); ``scalars`` holds the rest.
"""

from __future__ import annotations

from typing import Any

from catalog_service.validation.scalars import _Document, _Validator
from catalog_service.validation.violations import (
    _NONE,
    Issues,
    Violation,
    _count,
    _key_segment,
    _kind,
    _length_issues,
    _member_segment,
    _one,
    _wrong_type,
)


def _items(bound: str, n: int) -> str:
    return f"must contain {bound} {_count(n, 'item')}"


def _entries(bound: str, n: int) -> str:
    return f"must contain {bound} {_count(n, 'entry', 'entries')}"


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
        issues = _length_issues(len(value), self._min, self._max, value, _items)
        if issues is not None:
            return issues
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
        issues = _length_issues(len(value), self._min, self._max, value, _entries)
        if issues is not None:
            return issues
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
