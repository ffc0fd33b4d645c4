"""Glue-form documents from --from-json files, checked against the request's members, and
requests built from them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from google.protobuf.message import Message

from clients.glue_client import build_request, check_members
from clients.gluectl.command_kit import UsageError
from glue_vocabulary.shapes import GlueDict, message_members

M = TypeVar("M", bound=Message)


def read_json_document(source: str) -> GlueDict:
    """The JSON object in a file (``-``: stdin).

    Raises:
        UsageError: the file cannot be read, is not JSON, or is not an object.
    """
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
        doc = json.loads(text)
    except OSError as exc:
        raise UsageError(f"--from-json: cannot read {source}: {exc.strerror}") from None
    except ValueError as exc:
        raise UsageError(f"--from-json: {source} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise UsageError(f"--from-json: {source} must hold a JSON object")
    return doc


def _only_members(doc: Mapping[str, Any], message_type: type[Message]) -> GlueDict:
    # A `jobs get` document carries read-only members (CreatedOn, ProfileName ...) that no
    # request takes; they are dropped rather than refused, so a job can be cloned.
    wanted = set(message_members(message_type))
    return {k: v for k, v in doc.items() if k in wanted}


def _checked(doc: GlueDict, message_type: type[Message], source: str) -> GlueDict:
    try:
        check_members(message_type, doc)
    except ValueError as exc:
        raise UsageError(f"--from-json: {source}: {exc}") from None
    return doc


def _structure(doc: Mapping[str, Any], member: str) -> GlueDict:
    # A --from-json file may hold anything where a structure belongs; flags are merged into it.
    value = doc.get(member)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise UsageError(f"--from-json: {member} must be a JSON object")
    return dict(value)


def _request(message_type: type[M], doc: GlueDict) -> M:
    # Flags are typed by argparse, but a --from-json file can hold a string where a number
    # belongs, and a number can overflow int32: both are usage errors, not tracebacks.
    try:
        return build_request(message_type, doc, {})
    except ValueError as exc:
        raise UsageError(f"invalid request: {exc}") from None
