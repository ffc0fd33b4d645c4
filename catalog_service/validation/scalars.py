"""Validators of the Glue model's scalar shapes: strings (with the model's Java regexes),
numbers, booleans, timestamps, blobs and documents; ``containers`` holds the rest.

A validator is compiled once per shape (``model.ModelValidator``). ``check`` returns the
violations relative to the value it was given (an empty tuple, shared, when there are none); the
enclosing validator prefixes its own segment, so the happy path builds no paths or strings.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable
from datetime import datetime
from typing import Final

from catalog_service.validation.violations import (
    _NONE,
    Issues,
    _broken,
    _count,
    _echo,
    _java_double,
    _length_issues,
    _number,
    _one,
    _wrong_type,
)

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
        if length == 0 and self._non_empty and self._model_min == 0:
            # Required by the model but with no minimum length: not a framework constraint.
            return _one("must not be empty")
        issues = _length_issues(
            length, self._min, self._max, value, _characters, sensitive=self._sensitive
        )
        if issues is not None:
            return issues
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


def _characters(bound: str, n: int) -> str:
    return f"must be {bound} {_count(n, 'character')} long"


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
