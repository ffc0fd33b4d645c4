"""SigV4's canonical request as botocore's ``SigV4Auth`` builds it for a non-S3 service (URI,
query, headers, payload hash), the signing key, and the terms and errors (``AuthError``) that
the verification shares.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from typing import Literal
from urllib.parse import quote, unquote_plus

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "glue"
TERMINATOR = "aws4_request"
AMZ_DATE_FORMAT = "%Y%m%dT%H%M%SZ"

AuthErrorCode = Literal[
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "MissingAuthenticationTokenException",
    "IncompleteSignatureException",
]

INVALID_TOKEN_MESSAGE = "The security token included in the request is invalid."
MISSING_TOKEN_MESSAGE = "Missing Authentication Token"
SIGNATURE_MISMATCH_MESSAGE = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. "
    "Consult the service documentation for details."
)


class AuthError(Exception):
    """A request failed authentication; ``code`` is the AWS error code to answer with."""

    def __init__(self, code: AuthErrorCode, message: str) -> None:
        """Build the error.

        Args:
            code: The AWS error code (the JSON ``__type``).
            message: Human text in AWS's wording.
        """
        super().__init__(message)
        self.code: AuthErrorCode = code
        self.message = message


def _header_lists(headers: Mapping[str, str]) -> dict[str, list[str]]:
    """Lower-case header names, keeping every value (multidicts repeat names in items())."""
    fields: dict[str, list[str]] = {}
    for name, value in headers.items():
        fields.setdefault(name.lower(), []).append(value)
    return fields


def _single(fields: dict[str, list[str]], name: str) -> str | None:
    """The one value of a header that must not repeat, or None when absent."""
    values = fields.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise AuthError(
            "IncompleteSignatureException", f"The request has more than one {name!r} header."
        )
    return values[0]


def _payload_hash(fields: dict[str, list[str]], body: bytes) -> str:
    """The payload hash for the canonical request, which must match the body."""
    actual = hashlib.sha256(body).hexdigest()
    claimed = _single(fields, "x-amz-content-sha256")
    if claimed is None:
        return actual
    if not hmac.compare_digest(claimed.strip().lower().encode("utf-8"), actual.encode("ascii")):
        if claimed.strip().upper().startswith(("UNSIGNED-PAYLOAD", "STREAMING-")):
            message = f"Unsigned or streaming payloads ({claimed!r}) are not accepted."
        else:
            message = "The provided 'x-amz-content-sha256' header does not match what was computed."
        raise AuthError("InvalidSignatureException", message)
    # botocore puts the header's value into the canonical request verbatim.
    return claimed


def _canonical_uri(path: str) -> str:
    """botocore's non-S3 canonical URI: dot segments and empty segments removed, then quoted."""
    if not path:
        return "/"
    segments: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment and segment != ".":
            segments.append(segment)
    normalized = ("/" if path.startswith("/") else "") + "/".join(segments)
    if path.endswith("/") and segments:
        normalized += "/"
    # Quoting the already-encoded path again is what AWS specifies for every service but S3.
    return quote(normalized, safe="/~")


def _canonical_query_candidates(query: str) -> list[str]:
    """The canonical query string, plus botocore's sorted-as-sent form when that differs."""
    if not query:
        return [""]
    raw_pairs = [pair.partition("=") for pair in query.split("&")]
    # The spec's form: decode (urlencode's '+' is a space), re-encode unreserved-safe, sort by
    # encoded key then value.
    encoded = sorted(
        (quote(unquote_plus(key), safe="-_.~"), quote(unquote_plus(value), safe="-_.~"))
        for key, _, value in raw_pairs
        if key or value
    )
    canonical = "&".join(f"{key}={value}" for key, value in encoded)
    as_sent = "&".join(f"{key}={value}" for key, value in sorted((k, v) for k, _, v in raw_pairs))
    return [canonical] if as_sent == canonical else [canonical, as_sent]


def _canonical_headers(fields: dict[str, list[str]], signed: tuple[str, ...]) -> str:
    """``name:value`` lines for the signed headers, values trimmed and spaces collapsed."""
    lines = []
    for name in signed:
        values = fields.get(name)
        if not values:
            raise AuthError(
                "InvalidSignatureException",
                f"{SIGNATURE_MISMATCH_MESSAGE} Header {name!r} is listed in SignedHeaders but is "
                "not in the request.",
            )
        lines.append(f"{name}:{','.join(' '.join(value.split()) for value in values)}")
    return "\n".join(lines)


def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """Derive the SigV4 signing key for one day, region and service."""
    key = ("AWS4" + secret).encode("utf-8")
    for part in (date, region, service, TERMINATOR):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key
