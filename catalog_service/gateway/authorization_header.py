"""What a SigV4 request's headers alone decide: the ``Authorization`` header's parts, the
signing time and its window, the credential scope, and which headers must be signed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from catalog_service.gateway.canonical_request import (
    ALGORITHM,
    AMZ_DATE_FORMAT,
    TERMINATOR,
    AuthError,
    _header_lists,
    _single,
)


@dataclass(frozen=True)
class _Authorization:
    """The parsed ``Authorization`` header."""

    key_id: str
    date: str
    region: str
    service: str
    terminator: str
    signed_headers: tuple[str, ...]
    signature: str


def parse_key_id(headers: Mapping[str, str]) -> str | None:
    """Return the access key id a request claims to be signed with.

    Nothing is verified: this is for logging and the identity of development mode.

    Args:
        headers: The request headers; names in any case.

    Returns:
        The ``Credential`` key id, or None when the request is unsigned or the header is
        malformed.
    """
    try:
        authorization = _single(_header_lists(headers), "authorization")
        return None if authorization is None else _parse_authorization(authorization).key_id
    except AuthError:
        return None


def _parse_authorization(header: str) -> _Authorization:
    """Split ``AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...``."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme != ALGORITHM:
        raise AuthError(
            "IncompleteSignatureException",
            f"Unsupported Authorization type {scheme!r}: only {ALGORITHM} is accepted. "
            f"Authorization={header}",
        )
    params: dict[str, str] = {}
    for part in rest.split(","):
        name, eq, value = part.strip().partition("=")
        if not name and not eq:
            continue  # tolerates a stray or trailing comma
        if not eq:
            raise AuthError(
                "IncompleteSignatureException",
                f"Authorization header parameter {name!r} must be of the form name=value. "
                f"Authorization={header}",
            )
        if name in params:
            raise AuthError(
                "IncompleteSignatureException",
                f"Authorization header parameter {name!r} is repeated. Authorization={header}",
            )
        params[name] = value.strip()
    missing = [
        f"Authorization header requires '{name}' parameter."
        for name in ("Credential", "Signature", "SignedHeaders")
        if not params.get(name)
    ]
    if missing:
        raise AuthError(
            "IncompleteSignatureException", " ".join([*missing, f"Authorization={header}"])
        )
    credential = params["Credential"]
    parts = credential.split("/")
    if len(parts) != 5 or not all(parts):
        raise AuthError(
            "IncompleteSignatureException",
            "Credential must have exactly 5 slash-delimited elements, e.g. "
            f"keyid/date/region/service/term, got '{credential}'",
        )
    key_id, date, region, service, terminator = parts
    signed = sorted({name.strip().lower() for name in params["SignedHeaders"].split(";")})
    if "" in signed:
        raise AuthError(
            "IncompleteSignatureException",
            f"SignedHeaders {params['SignedHeaders']!r} has an empty header name. "
            f"Authorization={header}",
        )
    return _Authorization(
        key_id=key_id,
        date=date,
        region=region,
        service=service,
        terminator=terminator,
        signed_headers=tuple(signed),
        signature=params["Signature"],
    )


def _request_timestamp(fields: dict[str, list[str]], authorization: str) -> tuple[datetime, str]:
    """The signing time (aware, UTC) and the header it came from; X-Amz-Date wins over Date."""
    amz_date = _single(fields, "x-amz-date")
    if amz_date is not None:
        try:
            when = datetime.strptime(amz_date, AMZ_DATE_FORMAT).replace(tzinfo=UTC)
        except ValueError:
            when = None
        # strptime also takes unpadded fields; the string to sign needs the exact form.
        if when is None or when.strftime(AMZ_DATE_FORMAT) != amz_date:
            raise AuthError(
                "InvalidSignatureException",
                f"X-Amz-Date must be in ISO 8601 basic format (yyyyMMdd'T'HHmmss'Z'), "
                f"got {amz_date!r}.",
            )
        return when, "x-amz-date"
    http_date = _single(fields, "date")
    if http_date is None:
        raise AuthError(
            "IncompleteSignatureException",
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' "
            f"header. Authorization={authorization}",
        )
    try:
        when = parsedate_to_datetime(http_date)
    except (TypeError, ValueError):
        raise AuthError(
            "InvalidSignatureException",
            f"Date header must be an HTTP date (RFC 7231), got {http_date!r}.",
        ) from None
    # An HTTP date without a zone is defined as GMT.
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return when, "date"


def _check_scope(auth: _Authorization, timestamp: datetime, service: str) -> None:
    """The credential scope must be today's, for ``service``, and properly terminated."""
    request_day = timestamp.strftime("%Y%m%d")
    if auth.date != request_day:
        raise AuthError(
            "InvalidSignatureException",
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{auth.date}' != '{request_day}', from "
            f"'{timestamp.strftime(AMZ_DATE_FORMAT)}'.",
        )
    if auth.service != service:
        raise AuthError(
            "InvalidSignatureException",
            f"Credential should be scoped to correct service: '{service}'. Got '{auth.service}'.",
        )
    if auth.terminator != TERMINATOR:
        raise AuthError(
            "InvalidSignatureException",
            f"Credential should be scoped with a valid terminator: '{TERMINATOR}', "
            f"not '{auth.terminator}'.",
        )


# Headers that must be in SignedHeaders besides the date header, with the name AWS writes.
_REQUIRED_SIGNED = (
    # Unsigned, the request could be sent to another host (another deployment holding the
    # same key) within its validity window.
    ("host", "'Host' or ':authority'"),
    # Unsigned, the operation could be swapped under a captured signature: GetJob's body
    # {"JobName": "x"} is DeleteJob's too.
    ("x-amz-target", "'X-Amz-Target'"),
    # Unsigned, a body could be re-read under another protocol or encoding than signed.
    ("content-type", "'Content-Type'"),
)


def _check_signed_headers(auth: _Authorization, date_header: str) -> None:
    """Host, the date, the target and the content type must be signed (``_REQUIRED_SIGNED``).

    The code is InvalidSignatureException, as AWS's JSON-protocol services answer the one
    case they check (an unsigned Host): DynamoDB's reply quoted in aws/aws-sdk-php#2469 is
    ``InvalidSignatureException: 'Host' or ':authority' must be a 'SignedHeader' in the AWS
    Authorization.`` IncompleteSignatureException is what AWS uses for a header that does not
    parse (a missing Credential or SignedHeaders member), which this is not. The message
    follows the Host wording.
    """
    for name, spelled in _REQUIRED_SIGNED:
        if name not in auth.signed_headers:
            raise AuthError(
                "InvalidSignatureException",
                f"{spelled} must be a 'SignedHeader' in the AWS Authorization.",
            )
    if date_header not in auth.signed_headers:
        name = "X-Amz-Date" if date_header == "x-amz-date" else "Date"
        raise AuthError(
            "InvalidSignatureException",
            f"'{name}' must be a 'SignedHeader' in the AWS Authorization.",
        )


def _check_window(timestamp: datetime, now: datetime | None, skew: timedelta) -> None:
    """Refuse a request signed more than ``skew`` before or after ``now``."""
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    now = now.astimezone(UTC)
    earliest, latest = now - skew, now + skew
    fmt = AMZ_DATE_FORMAT
    if timestamp < earliest:
        raise AuthError(
            "InvalidSignatureException",
            f"Signature expired: {timestamp.strftime(fmt)} is now earlier than "
            f"{earliest.strftime(fmt)} ({now.strftime(fmt)} - {_describe(skew)})",
        )
    if timestamp > latest:
        raise AuthError(
            "InvalidSignatureException",
            f"Signature not yet current: {timestamp.strftime(fmt)} is still later than "
            f"{latest.strftime(fmt)} ({now.strftime(fmt)} + {_describe(skew)})",
        )


def _describe(skew: timedelta) -> str:
    """``15 min.`` as AWS writes it; seconds when the skew is not whole minutes."""
    seconds = int(skew.total_seconds())
    return f"{seconds // 60} min." if seconds % 60 == 0 else f"{seconds} sec."
