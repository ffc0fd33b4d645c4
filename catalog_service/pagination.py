"""Opaque NextTokens for keyset pagination: stable under concurrent inserts.

A token holds the sort key of the last item returned (and what it lists), base64url-encoded
JSON. The next page starts strictly after that key, so rows inserted meanwhile never shift a
page or repeat an item. A token that does not decode, or was issued for another listing, is an
InvalidInputException naming NextToken.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from servicekit.errors import InvalidInputException


def encode_token(listing: str, key: list[Any]) -> str:
    """A token resuming ``listing`` after ``key``."""
    raw = json.dumps({"l": listing, "k": key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str | None, listing: str, kinds: tuple[type, ...]) -> list[Any] | None:
    """The key a token resumes after (None for no token), one value per ``kinds`` entry.

    Tokens come back from clients, so a token is checked all the way down: the listing it was
    issued for, the number and types of its key values (``float`` accepts integers), and no NUL
    in a string (PostgreSQL text cannot hold one; no name contains one).

    Raises:
        InvalidInputException: the token is not one this listing issued.
    """
    if not token:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        key = data.get("k")
        if data.get("l") != listing or not isinstance(key, list) or len(key) != len(kinds):
            raise ValueError("wrong listing")
        for value, kind in zip(key, kinds, strict=True):
            numeric = kind is float and isinstance(value, int | float)
            if isinstance(value, bool) or not (numeric or isinstance(value, kind)):
                raise ValueError("wrong key")
            if isinstance(value, str) and "\x00" in value:
                raise ValueError("NUL in key")
        return key
    except (ValueError, binascii.Error, AttributeError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidInputException(
            "NextToken: is not a token this operation issued (pass back the NextToken of the "
            "previous page of the same request)",
            field="NextToken",
        ) from exc


def page_size(requested: int | None, default: int) -> int:
    """The number of items to return: MaxResults (already validated) or the default."""
    return requested if requested is not None else default
