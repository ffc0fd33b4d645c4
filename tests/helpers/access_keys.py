"""Access keys for tests of an authenticating catalog: three keys, their policies, the key
file, and the stack restarted with it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from clients.credentials import Credentials
from tests.conftest import Stack

ADMIN = Credentials("AKIDADMIN", "admin-secret")
TEAM_A = Credentials("AKIDTEAMA", "team-a-secret")
OPERATOR = Credentials("AKIDOPERATOR", "operator-secret")
TEAM_A_IDENTITY = "arn:aws:iam::123456789012:user/team-a"
OPERATOR_IDENTITY = "arn:aws:iam::123456789012:user/operator"

# The two documented examples (docs/SECURITY.md): one team and its own jobs; a read-only
# operator.
TEAM_A_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": "glue:*",
            "Resource": ["arn:aws:glue:*:*:job/team-a-*", "arn:aws:glue:*:*:trigger/team-a-*"],
        }
    ],
}
OPERATOR_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["glue:Get*", "glue:List*", "glue:BatchGet*"],
            "Resource": "*",
        },
        {"Effect": "Deny", "Action": "glue:GetJobRunLog", "Resource": "*"},
    ],
}


def write_keys(path: Path) -> Path:
    entries: list[dict[str, Any]] = [
        {"access_key_id": ADMIN.access_key_id, "secret_access_key": ADMIN.secret_access_key,
         "identity": "admin"},
        {"access_key_id": TEAM_A.access_key_id, "secret_access_key": TEAM_A.secret_access_key,
         "identity": TEAM_A_IDENTITY, "policy": TEAM_A_POLICY},
        {"access_key_id": OPERATOR.access_key_id,
         "secret_access_key": OPERATOR.secret_access_key,
         "identity": OPERATOR_IDENTITY, "policy": OPERATOR_POLICY},
    ]  # fmt: skip
    path.write_text(json.dumps({"keys": entries}))
    # The catalog refuses a keys file others may read.
    path.chmod(0o600)
    return path


async def restart_with_keys(stack: Stack, path: Path) -> Stack:
    """The stack's catalog restarted with the three keys (written to ``path``); ``stack.glue``
    calls as the admin."""
    await stack.stop_catalog()
    stack.catalog_settings = dataclasses.replace(
        stack.catalog_settings, access_keys=write_keys(path)
    )
    stack.credentials = ADMIN
    await stack.start_catalog()
    return stack
