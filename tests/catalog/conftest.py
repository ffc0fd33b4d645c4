"""gluectl in-process against the stack: the ``gluectl`` fixture and what one call returns."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from clients.gluectl.__main__ import main
from tests.conftest import Stack

RUN_ID = re.compile(r"^jr_[0-9a-f]{64}$")
UNREACHABLE = "127.0.0.1:1"
COLUMNS = re.compile(r"\s{2,}")


@dataclass
class Result:
    """What one gluectl invocation printed and returned."""

    code: int
    out: str
    err: str

    def json(self) -> dict[str, Any]:
        """stdout as one JSON document."""
        doc = json.loads(self.out)
        assert isinstance(doc, dict)
        return doc

    def table(self) -> list[list[str]]:
        """stdout as a table: the header and the rows, split into cells."""
        return [COLUMNS.split(line) for line in self.out.splitlines()]


Gluectl = Callable[..., Awaitable[Result]]


@pytest.fixture
def gluectl(stack: Stack, capsys: pytest.CaptureFixture[str]) -> Gluectl:
    """Run ``gluectl --endpoint <the stack's catalog> *argv`` in-process (in a worker thread,
    while the test's loop runs the services)."""
    assert stack.catalog is not None
    endpoint = f"127.0.0.1:{stack.catalog.port}"

    async def run(*argv: str) -> Result:
        capsys.readouterr()
        code = await asyncio.to_thread(main, ["--endpoint", endpoint, *argv])
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err, captured.err
        return Result(code, captured.out, captured.err)

    return run
