"""What every service app shares: one exit stack owning all it opens, and its database."""

from __future__ import annotations

from contextlib import AsyncExitStack
from types import TracebackType
from typing import Self

from servicekit.db import Database, SingleProcessLock


class ServiceApp:
    """A running service; an async context manager.

    ``_start`` opens things and registers each one's close on ``self._stack``; leaving the
    context (or a start that fails part-way) closes them in reverse order.
    """

    def __init__(self) -> None:
        self._stack = AsyncExitStack()

    async def __aenter__(self) -> Self:
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.aclose()

    async def _start(self) -> None:
        raise NotImplementedError

    def open_database(self, url: str, service: str) -> Database:
        """The service's database, disposed on leaving; on SQLite, one process per file."""
        db = Database(url)
        if db.is_sqlite:
            lock = SingleProcessLock(url)
            lock.acquire(service)
            self._stack.callback(lock.release)
        self._stack.push_async_callback(db.dispose)
        return db
