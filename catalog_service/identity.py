"""Who is calling: the caller identity of the request being served, for the records it creates.

The HTTP gateway sets it per request from the verified SigV4 access key; gRPC calls carry none
(None). A ContextVar, because each request is served in its own task, and it spares every
domain method an extra parameter that only creates use.
"""

from __future__ import annotations

from contextvars import ContextVar

caller: ContextVar[str | None] = ContextVar("caller", default=None)
