"""IAM policy documents: the subset a key's ``policy`` may use, parsed once and evaluated per call.

What is understood, as IAM's policy reference defines it
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements.html and
.../reference_policies_evaluation-logic.html):

- ``Version`` ``2012-10-17`` (or the legacy ``2008-10-17``), ``Statement`` one object or a list.
- Each statement: ``Effect`` Allow or Deny, ``Action`` or ``NotAction``, ``Resource`` or
  ``NotResource`` (a string or a list), an optional ``Sid``.
- Wildcards ``*`` (any run of characters, ``:`` and ``/`` included) and ``?`` (one character) in
  actions and resources. Actions compare case-insensitively, resources case-sensitively.
- Evaluation: an explicit Deny wins; otherwise an Allow that matches allows; otherwise the
  implicit deny refuses.

``Condition``, ``Principal`` and policy variables are refused when the file is loaded (a
condition the service silently ignored would grant more than its author meant).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

VERSIONS = ("2012-10-17", "2008-10-17")
_STATEMENT_MEMBERS = frozenset({"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource"})


@lru_cache(maxsize=4096)
def _pattern(text: str, *, ignore_case: bool) -> re.Pattern[str]:
    """An IAM wildcard string as an anchored regular expression."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in text)
    return re.compile(body, (re.IGNORECASE if ignore_case else 0) | re.DOTALL)


@dataclass(frozen=True, slots=True)
class _Match:
    """The Action/NotAction or Resource/NotResource element of one statement."""

    patterns: tuple[str, ...]
    negated: bool
    ignore_case: bool

    def __call__(self, value: str) -> bool:
        hit = any(_pattern(p, ignore_case=self.ignore_case).fullmatch(value) for p in self.patterns)
        return hit != self.negated


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement of a policy."""

    allow: bool
    actions: _Match
    resources: _Match

    def applies(self, action: str, resource: str) -> bool:
        """Whether the statement speaks about this action on this resource."""
        return self.actions(action) and self.resources(resource)


@dataclass(frozen=True, slots=True)
class Policy:
    """A parsed policy document; ``allows`` is the whole evaluation."""

    statements: tuple[Statement, ...]

    def allows(self, action: str, resource: str) -> bool:
        """Whether ``action`` (e.g. ``glue:StartJobRun``) on ``resource`` (an ARN) is allowed."""
        allowed = False
        for statement in self.statements:
            if statement.applies(action, resource):
                if not statement.allow:
                    return False
                allowed = True
        return allowed

    def may_allow(self, action: str) -> bool:
        """Whether some statement could allow ``action`` on some resource (a cheap pre-check)."""
        return any(s.allow and s.actions(action) for s in self.statements)


def parse_policy(document: Any, where: str) -> Policy:
    """Parse a policy document (already decoded JSON).

    Raises:
        ValueError: The document is not a policy this service can evaluate; the message names
            ``where`` and the statement.
    """
    if not isinstance(document, dict):
        raise ValueError(f"{where}: a policy must be a JSON object")  # noqa: TRY004 - bad file
    unknown = sorted(set(document) - {"Version", "Statement", "Id"})
    if unknown:
        raise ValueError(f"{where}: unknown member(s) {unknown}; allowed: Version, Statement, Id")
    if document.get("Version") not in VERSIONS:
        raise ValueError(f"{where}: Version must be one of {list(VERSIONS)}")
    raw = document.get("Statement")
    statements = [raw] if isinstance(raw, dict) else raw
    if not isinstance(statements, list) or not statements:
        raise ValueError(f"{where}: Statement must be an object or a non-empty list of them")
    return Policy(
        tuple(_statement(s, f"{where}: Statement[{i}]") for i, s in enumerate(statements))
    )


def _statement(raw: Any, where: str) -> Statement:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected an object")  # noqa: TRY004 - bad file
    unknown = sorted(set(raw) - _STATEMENT_MEMBERS)
    if unknown:
        raise ValueError(
            f"{where}: {unknown} not supported here (Condition, Principal and the like would "
            f"be ignored, granting more than meant); allowed: {sorted(_STATEMENT_MEMBERS)}"
        )
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise ValueError(f"{where}: Effect must be 'Allow' or 'Deny'")
    return Statement(
        allow=effect == "Allow",
        actions=_element(raw, "Action", where, ignore_case=True),
        resources=_element(raw, "Resource", where, ignore_case=False),
    )


def _element(raw: dict[str, Any], name: str, where: str, *, ignore_case: bool) -> _Match:
    present = [key for key in (name, f"Not{name}") if key in raw]
    if len(present) != 1:
        raise ValueError(f"{where}: exactly one of {name} and Not{name} is required")
    value = raw[present[0]]
    patterns = [value] if isinstance(value, str) else value
    if (
        not isinstance(patterns, list)
        or not patterns
        or not all(isinstance(p, str) and p for p in patterns)
    ):
        raise ValueError(f"{where}: {present[0]} must be a string or a list of strings")
    for pattern in patterns:
        if "${" in pattern:
            raise ValueError(f"{where}: policy variables ({pattern!r}) are not supported")
    return _Match(tuple(patterns), negated=present[0] != name, ignore_case=ignore_case)
