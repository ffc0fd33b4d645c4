"""Who is calling: the caller of the request being served, for authorization and the records
it creates.

Each front door sets it per request from the credentials it verified (the HTTP gateway from
the SigV4 access key, the gRPC server from the bearer key); it is None when no access keys are
configured (a loopback-only service, where every caller may do everything). A ContextVar,
because each request is served in its own task, and it spares every domain method a parameter.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from catalog_service.access.policy import Policy


@dataclass(frozen=True, slots=True)
class Caller:
    """A verified caller."""

    name: str
    """The identity recorded on what the caller creates (the key's ``identity``)."""
    policy: Policy | None = None
    """What the caller may do; None: everything."""


caller: ContextVar[Caller | None] = ContextVar("caller", default=None)


def caller_name() -> str | None:
    """The identity of the current caller, None when callers are not authenticated."""
    current = caller.get()
    return None if current is None else current.name
