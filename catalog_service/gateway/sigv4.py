"""AWS Signature Version 4 verification of gateway requests.

``verify`` recomputes the signature the way botocore's ``SigV4Auth`` (``botocore/auth.py``)
computes it for a non-S3 service, and compares it with the one in the ``Authorization``
header. It uses the standard library only. The canonical request is built in
``canonical_request``, the headers are judged in ``authorization_header``, and the keys come
from ``access_keys``.

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
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from catalog_service.gateway.access_keys import AccessKey
from catalog_service.gateway.authorization_header import (
    _Authorization,
    _check_scope,
    _check_signed_headers,
    _check_window,
    _parse_authorization,
    _request_timestamp,
)
from catalog_service.gateway.canonical_request import (
    ALGORITHM,
    AMZ_DATE_FORMAT,
    INVALID_TOKEN_MESSAGE,
    MISSING_TOKEN_MESSAGE,
    SERVICE,
    SIGNATURE_MISMATCH_MESSAGE,
    AuthError,
    _canonical_headers,
    _canonical_query_candidates,
    _canonical_uri,
    _header_lists,
    _payload_hash,
    _signing_key,
    _single,
)

__all__ = [
    "SignedRequest",
    "Verified",
    "check_headers",
    "verify",
]


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
