"""The gateway's access keys and the file that configures them.

The access-keys file (JSON, UTF-8)::

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
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from catalog_service.access.policy import Policy, parse_policy
from catalog_service.identity import Caller

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
