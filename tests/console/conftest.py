"""The console's fixtures: the stack with its HTTP listener, and one headless chromium.

The browser is Debian's chromium (``/usr/bin/chromium``) driven by Playwright's synchronous API
in one thread of its own, shared by the whole session: the services run on each test's event
loop, so the browser cannot live on it (nor on a loop that outlives the test). A test hands
its browser steps to that thread with ``await browser.run(steps)``, which leaves the test's loop
free to serve the pages the browser asks for.

Without chromium the browser tests are skipped locally; with ``CI_REQUIRE_BROWSER=1`` (set by
.ci/run) they fail instead, so CI cannot skip them silently.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest

from tests.conftest import Stack

CHROMIUM = Path("/usr/bin/chromium")
T = TypeVar("T")


@pytest.fixture
def backend() -> str:
    """SQLite only: the console adds no storage of its own, and the catalog's operations it
    calls are tested on both backends elsewhere."""
    return "sqlite"


@dataclass
class Browser:
    """One chromium, owned by one thread; every Playwright call runs there."""

    executor: ThreadPoolExecutor
    browser: Any
    screenshots: Path
    _shots: int = field(default=0)

    async def run(self, steps: Callable[[], T]) -> T:
        """Run browser steps in the browser's thread."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, steps)

    def new_page(self, timezone: str = "UTC") -> Any:
        """A page in a fresh context (own cookies); call inside ``run``."""
        context = self.browser.new_context(
            timezone_id=timezone, viewport={"width": 1280, "height": 900}
        )
        context.set_default_timeout(15_000)
        return context.new_page()

    def screenshot(self, page: Any, name: str) -> Path:
        """Save the page's screenshot (inside ``run``); numbered in the order taken."""
        self._shots += 1
        path = self.screenshots / f"{self._shots:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """The session's headless chromium (skipped, or failed under CI_REQUIRE_BROWSER=1,
    when it is not installed)."""
    if not CHROMIUM.exists() or shutil.which("chromium") is None:
        reason = f"{CHROMIUM} is missing: apt-get install -y chromium"
        if os.environ.get("CI_REQUIRE_BROWSER") == "1":
            pytest.fail(f"CI_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    screenshots = tmp_path_factory.mktemp("console-screenshots")
    print(f"\nconsole screenshots: {screenshots}")
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chromium")

    def launch() -> tuple[Any, Any]:
        playwright = sync_playwright().start()
        return playwright, playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )

    playwright, launched = executor.submit(launch).result()
    try:
        yield Browser(executor, launched, screenshots)
    finally:

        def close() -> None:
            launched.close()
            playwright.stop()

        executor.submit(close).result()
        executor.shutdown()
        print(f"\nconsole screenshots: {screenshots}")


def console_url(stack: Stack, path: str = "/console/") -> str:
    """The console's URL on the stack's HTTP listener."""
    assert stack.catalog is not None and stack.catalog.http_port
    return f"http://127.0.0.1:{stack.catalog.http_port}{path}"


@asynccontextmanager
async def console_client(stack: Stack) -> AsyncIterator[aiohttp.ClientSession]:
    """A cookie-keeping HTTP client (one browser's worth of cookies) for the console as it
    listens now (a restart binds a new port)."""
    async with aiohttp.ClientSession(
        base_url=console_url(stack, "/"), cookie_jar=aiohttp.CookieJar(unsafe=True)
    ) as session:
        yield session


@pytest.fixture
async def http(stack: Stack) -> AsyncIterator[aiohttp.ClientSession]:
    """A console client for the stack as started."""
    async with console_client(stack) as session:
        yield session
