"""Runs a service app until SIGTERM or SIGINT, then shuts it down gracefully."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

log = logging.getLogger(__name__)


async def _serve(app: AbstractAsyncContextManager[Any], name: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with app:
        await stop.wait()
        log.info("shutting down", extra={"service": name})
    log.info("stopped", extra={"service": name})


def run_service(make_app: Callable[[], AbstractAsyncContextManager[Any]], name: str) -> int:
    """Serve until a stop signal; returns the process exit status (start-up errors are one line)."""
    try:
        asyncio.run(_serve(make_app(), name))
    except (RuntimeError, OSError, ValueError) as exc:
        # Start-up problems an operator can fix (port taken, database locked or unreachable,
        # bad URL): one clear line, no traceback.
        print(f"{name}: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    return 0
