"""SigV4 verification (``catalog_service.gateway.sigv4``) of requests botocore itself signs."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

import botocore.session
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.credentials import Credentials

from catalog_service.gateway.access_keys import AccessKey, load_access_keys
from catalog_service.gateway.authorization_header import parse_key_id
from catalog_service.gateway.canonical_request import SIGNATURE_MISMATCH_MESSAGE, AuthError
from catalog_service.gateway.sigv4 import verify

ENDPOINT = "http://localhost:8080"
# botocore's clock returns naive UTC; the verifier's `now` is aware.
SIGNED_AT = datetime(2026, 11, 27, 1, 10, 0)
NOW = SIGNED_AT.replace(tzinfo=UTC)
KEY = AccessKey(
    key_id="AKIDEXAMPLE",
    secret="wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    identity="arn:aws:iam::123456789012:user/ci",
)
OTHER = AccessKey(key_id="AKIDOTHER", secret="another secret", identity="user/other")
KEYS = {key.key_id: key for key in (KEY, OTHER)}


@dataclass(frozen=True)
class Wire:
    """A request as the gateway receives it."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes

    def verify(self, *, now: datetime | None = NOW, **kwargs: Any) -> AccessKey:
        """Run the verifier on this request against KEYS."""
        return verify(
            self.method, self.path, self.query, self.headers, self.body, KEYS, now=now, **kwargs
        )

    def refused(self, code: str, *, now: datetime | None = NOW, **kwargs: Any) -> AuthError:
        """Run the verifier expecting AuthError ``code``; returns the error."""
        with pytest.raises(AuthError) as caught:
            self.verify(now=now, **kwargs)
        assert caught.value.code == code, caught.value.message
        assert str(caught.value) == caught.value.message
        return caught.value

    def header(self, name: str) -> str:
        """A header's value, found case-insensitively."""
        return next(v for k, v in self.headers.items() if k.lower() == name.lower())

    def changed(self, **changes: Any) -> Wire:
        """A copy with fields replaced; ``headers`` entries replace by any-case name, None drops."""
        header_changes: dict[str, str | None] = changes.pop("headers", {})
        headers = dict(self.headers)
        for name, value in header_changes.items():
            for existing in [k for k in headers if k.lower() == name.lower()]:
                del headers[existing]
            if value is not None:
                headers[name] = value
        return replace(self, headers=headers, **changes)

    def reauthorized(self, old: str, new: str) -> Wire:
        """A copy with ``old`` replaced by ``new`` in the Authorization header."""
        authorization = self.header("Authorization")
        assert old in authorization
        return self.changed(headers={"Authorization": authorization.replace(old, new)})


def on_the_wire(request: Any) -> Wire:
    """What the HTTP client sends for a signed AWSRequest (http.client adds Host)."""
    prepared = request.prepare()
    url = urlsplit(prepared.url)
    body = prepared.body or b""
    headers = {"Host": url.netloc, **dict(prepared.headers.items())}
    return Wire(prepared.method, url.path, url.query, headers, body)


def sign(
    *,
    url: str = ENDPOINT + "/",
    target: str = "AWSGlue.ListJobs",
    body: bytes = b"{}",
    headers: dict[str, str] | None = None,
    params: dict[str, str] | None = None,
    key: AccessKey = KEY,
    token: str | None = None,
    service: str = "glue",
    region: str = "us-east-1",
) -> Wire:
    """Sign a request at SIGNED_AT the way the glue client does, and return it as sent."""
    request = AWSRequest(
        method="POST",
        url=url,
        data=body,
        params=params,
        headers={
            "X-Amz-Target": target,
            "Content-Type": "application/x-amz-json-1.1",
            **(headers or {}),
        },
    )
    with mock.patch("botocore.auth.get_current_datetime", return_value=SIGNED_AT):
        SigV4Auth(Credentials(key.key_id, key.secret, token), service, region).add_auth(request)
    return on_the_wire(request)


# -- requests that pass ---------------------------------------------------------------------


def test_a_glue_client_request_verifies_and_names_its_key() -> None:
    wire = sign(body=b'{"MaxResults": 10}')
    assert "Credential=AKIDEXAMPLE/20261127/us-east-1/glue/aws4_request" in wire.header(
        "Authorization"
    )
    assert wire.verify() is KEY


class _Body:
    """The raw stream AWSResponse reads a canned body from."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.data


@pytest.fixture
def glue_client(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """A real botocore glue client with KEY, kept from the user's AWS config."""
    for name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.setenv(name, str(tmp_path / "absent"))
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_GLUE"):
        monkeypatch.delenv(name, raising=False)
    return botocore.session.Session().create_client(
        "glue",
        region_name="eu-west-1",
        endpoint_url=ENDPOINT,
        aws_access_key_id=OTHER.key_id,
        aws_secret_access_key=OTHER.secret,
    )


def test_what_the_real_glue_client_sends_verifies_by_the_clock(glue_client: Any) -> None:
    sent: list[Wire] = []

    def capture(request: Any, **_: Any) -> Any:
        # before-send sees the prepared request after signing; answering here keeps it offline.
        url = urlsplit(request.url)
        headers = {"Host": url.netloc}
        for name, value in request.headers.items():
            # Some values are still bytes here; the HTTP server hands the gateway text.
            headers[name] = value.decode("latin-1") if isinstance(value, bytes) else value
        sent.append(Wire(request.method, url.path, url.query, headers, request.body or b""))
        return AWSResponse(request.url, 200, {}, _Body(b'{"JobNames": []}'))

    glue_client.meta.events.register("before-send.glue", capture)
    assert glue_client.list_jobs(MaxResults=5)["JobNames"] == []
    glue_client.get_job(JobName="nightly")
    assert len(sent) == 2
    for wire in sent:
        assert wire.header("X-Amz-Target").startswith("AWSGlue.")
        assert wire.verify(now=None) is OTHER  # the default clock
    assert json.loads(sent[1].body) == {"JobName": "nightly"}


def test_header_names_may_arrive_in_any_case() -> None:
    wire = sign()
    assert wire.changed(headers={k.lower(): v for k, v in wire.headers.items()}).verify() is KEY
    assert wire.changed(headers={k.upper(): v for k, v in wire.headers.items()}).verify() is KEY


def test_only_signed_headers_matter() -> None:
    wire = sign()
    assert wire.changed(headers={"User-Agent": "curl/8", "X-Forwarded-For": "10.0.0.1"}).verify()


def test_header_whitespace_is_trimmed_and_collapsed_as_botocore_does() -> None:
    wire = sign(headers={"X-Odd": "  a   b \t c  ", "X-Tabs": "\tx\t\ty"})
    assert "x-odd;x-tabs" in wire.header("Authorization")
    assert wire.verify() is KEY
    # HTTP servers strip the value's outer whitespace; the canonical form does too.
    assert wire.changed(headers={"X-Odd": "a   b \t c", "X-Tabs": "x\t\ty"}).verify() is KEY
    assert wire.changed(headers={"X-Odd": "a b c", "X-Tabs": "x y"}).verify() is KEY
    wire.changed(headers={"X-Odd": "a bc"}).refused("InvalidSignatureException")


def test_repeated_headers_are_joined_with_commas() -> None:
    multidict = pytest.importorskip("multidict")
    wire = sign(headers={"X-Multi": "a,b"})
    headers = multidict.CIMultiDict([(k, v) for k, v in wire.headers.items() if k != "X-Multi"])
    headers.add("x-multi", "a")
    headers.add("X-MULTI", " b ")
    assert verify(wire.method, wire.path, wire.query, headers, wire.body, KEYS, now=NOW) is KEY


def test_query_parameters_encoded_by_botocore_verify() -> None:
    # AWSRequest params are signed in canonical form but sent urlencoded ('+' for a space).
    wire = sign(params={"b": "x y", "a": "1~2/3", "empty": "", "ü": "ä"})
    assert wire.query == "b=x+y&a=1~2%2F3&empty=&%C3%BC=%C3%A4"
    assert wire.verify() is KEY
    wire.changed(query="b=x+z&a=1~2%2F3&empty=&%C3%BC=%C3%A4").refused("InvalidSignatureException")
    wire.changed(query="").refused("InvalidSignatureException")


def test_a_query_already_in_the_url_verifies() -> None:
    # botocore signs a URL's own query as it stands, sorted; a raw '+' stays a '+'.
    wire = sign(url=ENDPOINT + "/?z=1&a=%20b&plus=a+b&flag")
    assert wire.verify() is KEY
    wire.changed(query="z=2&a=%20b&plus=a+b&flag").refused("InvalidSignatureException")


def test_the_path_is_normalised_and_quoted_as_for_non_s3_services() -> None:
    wire = sign(url=ENDPOINT + "/a//b/./c/../d%20e~f/")
    assert wire.path == "/a//b/./c/../d%20e~f/"
    assert wire.verify() is KEY
    assert wire.changed(path="/a/b/d%20e~f/").verify() is KEY  # the same normalised path
    wire.changed(path="/a/b/d e~f/").refused("InvalidSignatureException")  # decoded: not the same


def test_a_query_left_on_the_path_is_used() -> None:
    wire = sign(params={"a": "1"})
    assert wire.changed(path=wire.path + "?" + wire.query, query="").verify() is KEY


def test_the_date_header_may_stand_in_for_x_amz_date() -> None:
    # botocore keeps an existing Date header (reset to the signing time) instead of X-Amz-Date.
    wire = sign(headers={"Date": "Mon, 01 Jan 2001 00:00:00 GMT"})
    assert wire.header("Date") == "Fri, 27 Nov 2026 01:10:00 -0000"
    assert not any(k.lower() == "x-amz-date" for k in wire.headers)
    assert wire.verify() is KEY
    assert wire.verify(now=NOW + timedelta(minutes=16), skew=timedelta(minutes=20)) is KEY
    wire.refused("InvalidSignatureException", now=NOW + timedelta(minutes=16))


def test_a_signed_payload_hash_header_that_matches_the_body_verifies() -> None:
    body = b'{"JobName": "j"}'
    wire = sign(body=body, headers={"X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest()})
    assert "x-amz-content-sha256" in wire.header("Authorization")
    assert wire.verify() is KEY
    # The header's own spelling is what was signed, as botocore copies it.
    upper = hashlib.sha256(body).hexdigest().upper()
    assert sign(body=body, headers={"X-Amz-Content-SHA256": upper}).verify() is KEY


def test_the_window_is_inclusive_and_a_naive_now_is_utc() -> None:
    wire = sign()
    assert wire.verify(now=NOW + timedelta(minutes=15)) is KEY
    assert wire.verify(now=NOW - timedelta(minutes=15)) is KEY
    assert wire.verify(now=SIGNED_AT + timedelta(minutes=14)) is KEY


# -- requests that are refused --------------------------------------------------------------


def test_a_wrong_secret_is_an_invalid_signature() -> None:
    error = sign(key=replace(KEY, secret="not the secret")).refused("InvalidSignatureException")
    assert error.message.startswith(SIGNATURE_MISMATCH_MESSAGE)
    assert "The Canonical String for this request should have been" in error.message
    assert "AWS4-HMAC-SHA256\n20261127T011000Z\n20261127/us-east-1/glue/aws4_request" in (
        error.message
    )
    assert KEY.secret not in error.message


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"body": b'{"MaxResults": 1}'}, id="body"),
        pytest.param({"body": b""}, id="empty-body"),
        pytest.param({"headers": {"X-Amz-Target": "AWSGlue.DeleteJob"}}, id="signed-header"),
        pytest.param({"headers": {"Host": "localhost:9090"}}, id="host"),
        pytest.param({"path": "/other"}, id="path"),
        pytest.param({"method": "PUT"}, id="method"),
        pytest.param({"query": "a=1"}, id="query"),
    ],
)
def test_a_tampered_request_is_an_invalid_signature(change: dict[str, Any]) -> None:
    wire = sign()
    assert wire.verify() is KEY
    error = wire.changed(**change).refused("InvalidSignatureException")
    assert error.message.startswith(SIGNATURE_MISMATCH_MESSAGE)


def test_a_signed_header_missing_from_the_request_is_an_invalid_signature() -> None:
    error = sign().changed(headers={"Content-Type": None}).refused("InvalidSignatureException")
    assert "'content-type'" in error.message


def test_another_keys_signature_is_an_invalid_signature() -> None:
    wire = sign(key=OTHER)
    assert wire.verify() is OTHER
    wire.reauthorized("Credential=AKIDOTHER/", "Credential=AKIDEXAMPLE/").refused(
        "InvalidSignatureException"
    )


def test_an_unknown_key_is_an_unrecognized_client() -> None:
    error = sign(key=AccessKey("AKIDUNKNOWN", "s", "nobody")).refused("UnrecognizedClientException")
    assert error.message == "The security token included in the request is invalid."


def test_temporary_credentials_are_not_supported() -> None:
    wire = sign(token="FwoGZXIvYXdzEXAMPLE")
    assert wire.header("X-Amz-Security-Token") == "FwoGZXIvYXdzEXAMPLE"
    error = wire.refused("UnrecognizedClientException")
    assert error.message == "The security token included in the request is invalid."


def test_a_request_without_authorization_is_missing_its_token() -> None:
    error = (
        sign()
        .changed(headers={"Authorization": None})
        .refused("MissingAuthenticationTokenException")
    )
    assert error.message == "Missing Authentication Token"


def test_a_signature_older_than_the_skew_has_expired() -> None:
    error = sign().refused("InvalidSignatureException", now=NOW + timedelta(minutes=16))
    assert error.message == (
        "Signature expired: 20261127T011000Z is now earlier than 20261127T011100Z "
        "(20261127T012600Z - 15 min.)"
    )


def test_a_signature_later_than_the_skew_is_not_yet_current() -> None:
    error = sign().refused("InvalidSignatureException", now=NOW - timedelta(minutes=16))
    assert error.message == (
        "Signature not yet current: 20261127T011000Z is still later than 20261127T010900Z "
        "(20261127T005400Z + 15 min.)"
    )


def test_the_skew_is_configurable() -> None:
    wire = sign()
    error = wire.refused(
        "InvalidSignatureException", now=NOW + timedelta(minutes=6), skew=timedelta(minutes=5)
    )
    assert error.message.startswith("Signature expired:")
    assert error.message.endswith("- 5 min.)")


def test_a_credential_scope_of_another_day_is_refused() -> None:
    error = sign().reauthorized("/20261127/", "/20261126/").refused("InvalidSignatureException")
    assert error.message == (
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from "
        "HTTP: '20261126' != '20261127', from '20261127T011000Z'."
    )


def test_a_credential_scoped_to_another_service_is_refused() -> None:
    error = sign(service="s3").refused("InvalidSignatureException")
    assert error.message.startswith("Credential should be scoped to correct service: 'glue'.")
    assert "'s3'" in error.message


def test_a_credential_with_a_wrong_terminator_is_refused() -> None:
    error = (
        sign().reauthorized("/aws4_request", "/aws5_request").refused("InvalidSignatureException")
    )
    assert "valid terminator: 'aws4_request', not 'aws5_request'" in error.message


def test_any_region_is_accepted() -> None:
    assert sign(region="local").verify() is KEY


def test_host_and_the_date_must_be_signed() -> None:
    wire = sign()
    assert "SignedHeaders=content-type;host;x-amz-date;x-amz-target," in wire.header(
        "Authorization"
    )
    error = wire.reauthorized(";host;", ";").refused("InvalidSignatureException")
    assert error.message.startswith("'Host' or ':authority' must be a 'SignedHeader'")
    error = wire.reauthorized(";x-amz-date;", ";").refused("InvalidSignatureException")
    assert error.message.startswith("'X-Amz-Date' must be a 'SignedHeader'")


def test_a_request_without_a_date_is_incomplete() -> None:
    error = sign().changed(headers={"X-Amz-Date": None}).refused("IncompleteSignatureException")
    assert "requires existence of either a 'X-Amz-Date' or a 'Date' header" in error.message


@pytest.mark.parametrize("value", ["2026-11-27T01:10:00Z", "2026112T11000Z", "yesterday"])
def test_a_malformed_x_amz_date_is_refused(value: str) -> None:
    error = sign().changed(headers={"X-Amz-Date": value}).refused("InvalidSignatureException")
    assert "ISO 8601 basic format" in error.message


@pytest.mark.parametrize(
    ("authorization", "named"),
    [
        pytest.param(
            "Basic QUtJRDpzZWNyZXQ=", "Unsupported Authorization type 'Basic'", id="basic"
        ),
        pytest.param("", "Unsupported Authorization type ''", id="empty"),
        pytest.param(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261127/us-east-1/glue/aws4_request, "
            "SignedHeaders=host;x-amz-date",
            "requires 'Signature' parameter",
            id="no-signature",
        ),
        pytest.param(
            "AWS4-HMAC-SHA256 Signature=abc",
            "requires 'Credential' parameter. Authorization header requires 'SignedHeaders'",
            id="only-signature",
        ),
        pytest.param(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261127/glue/aws4_request, "
            "SignedHeaders=host;x-amz-date, Signature=abc",
            "exactly 5 slash-delimited elements",
            id="short-credential",
        ),
        pytest.param(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261127/us-east-1/glue/aws4_request, "
            "SignedHeaders=host;;x-amz-date, Signature=abc",
            "empty header name",
            id="empty-signed-header",
        ),
        pytest.param(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261127/us-east-1/glue/aws4_request, "
            "SignedHeaders, Signature=abc",
            "'SignedHeaders' must be of the form name=value",
            id="no-equals",
        ),
        pytest.param(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261127/us-east-1/glue/aws4_request, "
            "Signature=abc, SignedHeaders=host;x-amz-date, Signature=abd",
            "'Signature' is repeated",
            id="repeated",
        ),
    ],
)
def test_a_malformed_authorization_header_is_incomplete(authorization: str, named: str) -> None:
    wire = sign().changed(headers={"Authorization": authorization})
    error = wire.refused("IncompleteSignatureException")
    assert named in error.message
    assert parse_key_id(wire.headers) is None


def test_a_payload_hash_header_must_match_the_body() -> None:
    body = b'{"JobName": "j"}'
    wire = sign(body=body, headers={"X-Amz-Content-SHA256": hashlib.sha256(body).hexdigest()})
    error = wire.changed(body=b'{"JobName": "k"}').refused("InvalidSignatureException")
    assert "'x-amz-content-sha256' header does not match" in error.message


def test_an_unsigned_payload_is_refused() -> None:
    error = sign(headers={"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"}).refused(
        "InvalidSignatureException"
    )
    assert "not accepted" in error.message


# -- parse_key_id ---------------------------------------------------------------------------


def test_parse_key_id_reads_the_credential_without_verifying() -> None:
    wire = sign(key=AccessKey("AKIDUNKNOWN", "s", "nobody"))
    assert parse_key_id(wire.headers) == "AKIDUNKNOWN"
    assert parse_key_id({"authorization": wire.header("Authorization")}) == "AKIDUNKNOWN"
    assert parse_key_id({"Content-Type": "application/x-amz-json-1.1"}) is None


def test_an_access_key_repr_hides_the_secret() -> None:
    assert KEY.secret not in repr(KEY)
    assert KEY.key_id in repr(KEY)


# -- the access-keys file -------------------------------------------------------------------

ENTRY_A = {"access_key_id": "AKIDA", "secret_access_key": "sa/+x", "identity": "user/a"}
ENTRY_B = {"access_key_id": "AKIDB", "secret_access_key": "sb", "identity": "arn:aws:iam::1:user/b"}


def write(tmp_path: Path, content: Any) -> Path:
    """Write ``content`` (JSON-encoded unless a str) to a keys file."""
    path = tmp_path / "access-keys.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content, indent=2))
    return path


@pytest.mark.parametrize(
    "document",
    [{"keys": [ENTRY_A, ENTRY_B]}, [ENTRY_A, ENTRY_B]],
    ids=["object", "list"],
)
def test_the_keys_file_loads(tmp_path: Path, document: Any) -> None:
    keys = load_access_keys(write(tmp_path, document))
    assert keys == {
        "AKIDA": AccessKey("AKIDA", "sa/+x", "user/a"),
        "AKIDB": AccessKey("AKIDB", "sb", "arn:aws:iam::1:user/b"),
    }


def test_loaded_keys_verify_requests(tmp_path: Path) -> None:
    keys = load_access_keys(write(tmp_path, [ENTRY_A]))
    wire = sign(key=keys["AKIDA"])
    assert (
        verify(wire.method, wire.path, wire.query, wire.headers, wire.body, keys, now=NOW)
        == (keys["AKIDA"])
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param('{"keys": [\n  {"access_key_id": }\n]}', "line 2 column", id="bad-json"),
        pytest.param({"keys": []}, "no access keys defined", id="empty"),
        pytest.param({"key": [ENTRY_A]}, "exactly one member, 'keys'", id="wrong-top-member"),
        pytest.param({"keys": [ENTRY_A], "x": 1}, "exactly one member, 'keys'", id="extra-top"),
        pytest.param({"keys": ENTRY_A}, "expected a list of keys", id="keys-not-list"),
        pytest.param('"AKIDA"', "expected a list of keys", id="string"),
        pytest.param([ENTRY_A, "AKIDB"], "keys[1]: expected an object", id="entry-not-object"),
        pytest.param(
            [ENTRY_A, {k: v for k, v in ENTRY_B.items() if k != "secret_access_key"}],
            "keys[1]: missing 'secret_access_key'",
            id="missing-secret",
        ),
        pytest.param(
            [{k: v for k, v in ENTRY_A.items() if k != "identity"}],
            "keys[0]: missing 'identity'",
            id="missing-identity",
        ),
        pytest.param(
            [{**ENTRY_A, "secret_access_key": ""}],
            "keys[0]: 'secret_access_key' must be a non-empty string",
            id="empty-secret",
        ),
        pytest.param(
            [{**ENTRY_A, "identity": 7}],
            "keys[0]: 'identity' must be a non-empty string",
            id="identity-not-string",
        ),
        pytest.param(
            [{**ENTRY_A, "secret_key": "x"}],
            "keys[0]: unknown member(s) ['secret_key']",
            id="unknown-member",
        ),
        pytest.param(
            [ENTRY_A, ENTRY_B, {**ENTRY_B, "secret_access_key": "other"}],
            "keys[2]: duplicate access_key_id 'AKIDB' (first defined in keys[1])",
            id="duplicate",
        ),
        pytest.param(
            [{**ENTRY_A, "access_key_id": "AKID/A"}],
            "keys[0]: access_key_id 'AKID/A' may not contain",
            id="slash-in-key-id",
        ),
        pytest.param(
            [{**ENTRY_A, "access_key_id": "AKID A"}],
            "keys[0]: access_key_id 'AKID A' may not contain",
            id="space-in-key-id",
        ),
    ],
)
def test_a_bad_keys_file_names_the_file_and_entry(
    tmp_path: Path, content: Any, message: str
) -> None:
    path = write(tmp_path, content)
    with pytest.raises(ValueError, match=r"access-keys\.json") as caught:
        load_access_keys(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert message in str(caught.value)


def test_a_bad_secret_is_not_echoed(tmp_path: Path) -> None:
    path = write(tmp_path, [{**ENTRY_A, "secret_access_key": ["hunter2"]}])
    with pytest.raises(ValueError, match="'secret_access_key' must be") as caught:
        load_access_keys(path)
    assert "hunter2" not in str(caught.value)


def test_a_keys_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "access-keys.json"
    path.write_bytes(b'{"keys": ["\xff"]}')
    with pytest.raises(ValueError, match="not UTF-8"):
        load_access_keys(path)


def test_a_missing_keys_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_access_keys(tmp_path / "absent.json")
