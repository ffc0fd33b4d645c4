"""AWS Signature Version 4 verification of gateway requests, and the access-keys file.

``verify`` recomputes the signature the way botocore's ``SigV4Auth`` (``botocore/auth.py``)
computes it for a non-S3 service, and compares it with the one in the ``Authorization``
header. It uses the standard library only.

Access-keys file (JSON, UTF-8)::

    {"keys": [
      {"access_key_id": "AKIDEXAMPLE",
       "secret_access_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
       "identity": "arn:aws:iam::123456789012:user/ci",
       "policy": {"Version": "2012-10-17", "Statement": [
         {"Effect": "Allow", "Action": "glue:*", "Resource": "arn:aws:glue:*:*:job/team-a-*"}]}}
    ]}

A top-level list of the same entries is accepted too. The first three members are required
non-empty strings; ``policy`` is an optional IAM policy document limiting what the key may do
(``catalog_service.access.policy``; without one the key may do everything). No other members
are allowed, so a misspelt member is an error rather than
silently ignored. ``access_key_id`` must be unique and may not contain whitespace, ``/``,
``,`` or ``=`` (they would break the ``Credential=`` syntax). ``identity`` is what the gateway
records as the caller. An empty key list is refused: it would lock every client out.

What is accepted, and what is not:

- Only the ``Authorization: AWS4-HMAC-SHA256 ...`` header form. Presigned URLs
  (``X-Amz-Signature`` in the query) get ``MissingAuthenticationTokenException``.
- The region in the credential scope may be any non-empty name (this is a self-hosted
  service and has no region of its own); the service must be ``glue`` (``logs`` for the
  CloudWatch Logs operations, ``X-Amz-Target: Logs_20140328.<Operation>``).
- Temporary credentials are not supported: a request carrying ``X-Amz-Security-Token`` gets
  ``UnrecognizedClientException``, as AWS answers an unknown token.
- The payload must be signed. If ``X-Amz-Content-SHA256`` is sent, it must equal the SHA-256
  of the body (``UNSIGNED-PAYLOAD`` is refused), otherwise the body would not be covered by the
  signature. botocore never sends an unsigned payload for Glue.
- ``host``, the date header used (``x-amz-date``, else ``date``), ``x-amz-target`` and
  ``content-type`` must be signed. botocore's ``SigV4Auth`` signs every header but a short
  blacklist (``SIGNED_HEADERS_BLACKLIST`` in ``botocore/auth.py``: user-agent, expect,
  hop-by-hop headers), so a Glue request from boto3 signs
  ``content-type;host;x-amz-date;x-amz-target``. Unsigned, the target could be swapped: a
  captured ``GetJobRun`` signature would carry a ``DeleteJob`` of the same body.

Verification runs in two steps so that a request is judged before its body is read:
``check_headers`` does everything the headers alone decide (see its docstring), and
``SignedRequest.verify`` then hashes the body and compares the signature. ``verify`` does both.

Callers pass the request as it arrived: the method, the path still percent-encoded, the raw
query string, every header (names in any case), and the body bytes. The ``Host`` header must
be the one the client sent, so a reverse proxy in front must preserve it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote, unquote_plus

from catalog_service.access.policy import Policy, parse_policy
from catalog_service.identity import Caller

__all__ = [
    "AccessKey",
    "AuthError",
    "AuthErrorCode",
    "SignedRequest",
    "Verified",
    "check_headers",
    "load_access_keys",
    "parse_key_id",
    "verify",
]

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

_KEY_FIELDS = ("access_key_id", "secret_access_key", "identity")
_OPTIONAL_KEY_FIELDS = ("policy",)
_KEY_ID_FORBIDDEN = frozenset("/,=;")


@dataclass(frozen=True)
class AccessKey:
    """One configured access key."""

    key_id: str
    """The access key id, as it appears in the ``Credential=`` scope."""
    secret: str
    """The secret access key the signing key is derived from."""
    identity: str
    """Caller identity recorded on what the request creates, e.g. an ARN or user name."""
    policy: Policy | None = None
    """What the key may do; None: everything."""

    @property
    def caller(self) -> Caller:
        """The caller a request signed with this key is served as."""
        return Caller(self.identity, self.policy)

    def __repr__(self) -> str:
        # Keeps the secret out of logs and tracebacks.
        return f"AccessKey(key_id={self.key_id!r}, identity={self.identity!r})"


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


@dataclass(frozen=True)
class Verified:
    """A request whose signature matched."""

    key: AccessKey
    """The access key whose secret produced the signature."""
    signature: bytes
    """The signature as raw bytes (32), the identity of this signed request for replay checks."""
    expires_at: datetime
    """When the signature stops being accepted: its signing time plus the allowed skew."""


@dataclass(frozen=True)
class SignedRequest:
    """A request whose headers passed every check; its signature still needs the body."""

    key: AccessKey
    """The access key the request names (known, but not yet proven)."""
    expires_at: datetime
    """Signing time plus the allowed skew."""
    _auth: _Authorization
    _fields: dict[str, list[str]]
    _timestamp: datetime
    _method: str
    _path: str
    _query: str

    def verify(self, body: bytes) -> Verified:
        """Hash the body and compare the request's signature with the one the key produces.

        Args:
            body: The request body, all of it.

        Returns:
            The verified request.

        Raises:
            AuthError: The payload hash header disagrees with the body, or the signature does
                not match (``InvalidSignatureException``).
        """
        auth = self._auth
        payload_hash = _payload_hash(self._fields, body)
        scope = f"{auth.date}/{auth.region}/{auth.service}/{auth.terminator}"
        signing_key = _signing_key(self.key.secret, auth.date, auth.region, auth.service)
        canonical_headers = _canonical_headers(self._fields, auth.signed_headers)
        uri = _canonical_uri(self._path)
        # botocore signs a query it encoded itself in canonical form, but a query already in
        # the URL as it stands; trying both accepts either without weakening anything (each
        # still needs the secret).
        attempts = []
        for canonical_query in _canonical_query_candidates(self._query):
            canonical_request = "\n".join(
                [
                    self._method.upper(),
                    uri,
                    canonical_query,
                    canonical_headers + "\n",
                    ";".join(auth.signed_headers),
                    payload_hash,
                ]
            )
            string_to_sign = "\n".join(
                [
                    ALGORITHM,
                    self._timestamp.strftime(AMZ_DATE_FORMAT),
                    scope,
                    hashlib.sha256(canonical_request.encode("utf-8")).hexdigest(),
                ]
            )
            attempts.append((canonical_request, string_to_sign))
        provided = auth.signature.encode("utf-8")
        for _, string_to_sign in attempts:
            expected = hmac.new(signing_key, string_to_sign.encode("utf-8"), hashlib.sha256)
            if hmac.compare_digest(expected.hexdigest().encode("ascii"), provided):
                return Verified(
                    key=self.key, signature=expected.digest(), expires_at=self.expires_at
                )
        # AWS shows what it expected, which is what a client author needs to find the mistake;
        # neither string holds anything secret.
        canonical_request, string_to_sign = attempts[0]
        raise AuthError(
            "InvalidSignatureException",
            f"{SIGNATURE_MISMATCH_MESSAGE}\n\nThe Canonical String for this request should "
            f"have been\n'{canonical_request}'\n\nThe String-to-Sign should have been\n"
            f"'{string_to_sign}'\n",
        )


def check_headers(
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    keys: Mapping[str, AccessKey],
    *,
    now: datetime | None = None,
    skew: timedelta = timedelta(minutes=15),
    service: str = SERVICE,
) -> SignedRequest:
    """Check everything about a request's signature that the headers alone decide.

    That is: an ``Authorization`` header of the one supported algorithm, well formed; a
    signing date in the right format and within ``skew`` of ``now``; a credential scope of
    that day, for Glue; the required headers signed; no session token; and a known access
    key id. What it cannot check is the signature itself: SigV4 signs the SHA-256 of the body
    (botocore sends no ``X-Amz-Content-SHA256`` for Glue), so proving that the caller holds
    the secret needs the whole body. A caller who knows a valid key id (which is not secret:
    it travels in every request) can still make the server read a body up to the size cap
    before the signature fails; anyone else is refused here.

    Args:
        method: The HTTP method.
        path: The request path as sent, still percent-encoded (``/`` for Glue). A ``?query``
            suffix is split off and used when ``query`` is empty.
        query: The raw query string, without ``?``.
        headers: All request headers; names in any case. A multidict's repeated headers are
            joined with ``,`` as the signer joins them.
        keys: Known keys by access key id.
        now: The current time (default: the clock); naive values are taken as UTC.
        skew: How far the request time may be from ``now`` either way.
        service: The service the credential scope must name: ``glue``, or ``logs`` for the
            CloudWatch Logs operations (a signature for one service is not valid for another).

    Returns:
        The request, ready for ``verify(body)``.

    Raises:
        AuthError: With the AWS code and message describing why the request is refused.
    """
    if "?" in path:
        path, _, embedded_query = path.partition("?")
        query = query or embedded_query
    fields = _header_lists(headers)
    authorization = _single(fields, "authorization")
    if authorization is None:
        raise AuthError("MissingAuthenticationTokenException", MISSING_TOKEN_MESSAGE)
    auth = _parse_authorization(authorization)
    timestamp, date_header = _request_timestamp(fields, authorization)
    _check_scope(auth, timestamp, service)
    _check_signed_headers(auth, date_header)
    if "x-amz-security-token" in fields:
        raise AuthError("UnrecognizedClientException", INVALID_TOKEN_MESSAGE)
    key = keys.get(auth.key_id)
    if key is None:
        raise AuthError("UnrecognizedClientException", INVALID_TOKEN_MESSAGE)
    _check_window(timestamp, now, skew)
    return SignedRequest(
        key=key,
        expires_at=timestamp + skew,
        _auth=auth,
        _fields=fields,
        _timestamp=timestamp,
        _method=method,
        _path=path,
        _query=query,
    )


def verify(
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    keys: Mapping[str, AccessKey],
    *,
    now: datetime | None = None,
    skew: timedelta = timedelta(minutes=15),
) -> AccessKey:
    """Check a request's SigV4 signature and return the key that signed it.

    ``check_headers`` then ``SignedRequest.verify``, for a caller that has the body already.

    Args:
        method: The HTTP method.
        path: The request path as sent, still percent-encoded.
        query: The raw query string, without ``?``.
        headers: All request headers; names in any case.
        body: The request body.
        keys: Known keys by access key id.
        now: The current time (default: the clock); naive values are taken as UTC.
        skew: How far the request time may be from ``now`` either way.

    Returns:
        The access key whose secret produced the signature.

    Raises:
        AuthError: With the AWS code and message describing why the request is refused.
    """
    signed = check_headers(method, path, query, headers, keys, now=now, skew=skew)
    return signed.verify(body).key


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


def load_access_keys(path: Path) -> dict[str, AccessKey]:
    """Read the access-keys file (format in the module docstring).

    Args:
        path: The JSON file.

    Returns:
        The keys by access key id.

    Raises:
        ValueError: The file is not valid; the message names the file and the entry.
        OSError: The file cannot be read.
    """
    try:
        document: Any = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{path}: line {exc.lineno} column {exc.colno}: invalid JSON: {exc.msg}"
        ) from exc
    entries: Any = document
    if isinstance(document, dict):
        if set(document) != {"keys"}:
            raise ValueError(
                f"{path}: the top-level object must have exactly one member, 'keys', "
                f"got {sorted(document)}"
            )
        entries = document["keys"]
    if not isinstance(entries, list):
        # The file's content is wrong, not an argument's type: ValueError is the contract.
        raise ValueError(  # noqa: TRY004
            f"{path}: expected a list of keys (top level or under 'keys'), "
            f"got {type(entries).__name__}"
        )
    if not entries:
        raise ValueError(f"{path}: no access keys defined")
    keys: dict[str, AccessKey] = {}
    first_seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        where = f"{path}: keys[{index}]"
        key = _access_key(entry, where)
        if key.key_id in first_seen:
            raise ValueError(
                f"{where}: duplicate access_key_id {key.key_id!r} "
                f"(first defined in keys[{first_seen[key.key_id]}])"
            )
        first_seen[key.key_id] = index
        keys[key.key_id] = key
    return keys


def _access_key(entry: Any, where: str) -> AccessKey:
    """Validate one entry of the keys file."""
    if not isinstance(entry, dict):
        raise ValueError(  # noqa: TRY004 - a bad file, as above
            f"{where}: expected an object, got {type(entry).__name__}"
        )
    allowed = [*_KEY_FIELDS, *_OPTIONAL_KEY_FIELDS]
    unknown = sorted(set(entry) - set(allowed))
    if unknown:
        raise ValueError(f"{where}: unknown member(s) {unknown}; allowed: {allowed}")
    for field in _KEY_FIELDS:
        if field not in entry:
            raise ValueError(f"{where}: missing {field!r}")
        value = entry[field]
        if not isinstance(value, str) or not value:
            # Never echo the value: it may be the secret.
            raise ValueError(f"{where}: {field!r} must be a non-empty string")
    key_id: str = entry["access_key_id"]
    if any(c.isspace() or not c.isprintable() or c in _KEY_ID_FORBIDDEN for c in key_id):
        raise ValueError(
            f"{where}: access_key_id {key_id!r} may not contain whitespace, control "
            "characters, '/', ',', ';' or '='"
        )
    policy = parse_policy(entry["policy"], f"{where}.policy") if "policy" in entry else None
    return AccessKey(
        key_id=key_id,
        secret=entry["secret_access_key"],
        identity=entry["identity"],
        policy=policy,
    )


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
