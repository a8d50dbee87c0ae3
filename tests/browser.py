"""Headless Chromium (Debian's ``/usr/bin/chromium``) driven by Playwright, for the playground tests.

Fixtures (imported into ``conftest.py``):

* ``chromium`` (module): one browser per test module. Where Chromium is missing the browser tests are
  skipped on a developer's machine but fail under CI (``CI=true``), so a missing install step cannot
  hide behind a green run (``tests/needs.py``).
* ``pg_page`` (function): a fresh context and page at 1280×800 whose ``goto``/``shot`` helpers live on
  :class:`PlaygroundPage`. Every console error, page error and failed or ≥400 network request seen
  during the test fails it at teardown, unless the test declared it with ``expect_http_error``.
* Screenshots go to ``$HANIWA_ARTIFACTS`` (default ``test-artifacts/``) under ``screenshots/``.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.needs import need

CHROMIUM = os.environ.get("HANIWA_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(
    os.environ.get("HANIWA_ARTIFACTS", Path(__file__).resolve().parent.parent / "test-artifacts")
)


@dataclass
class PlaygroundPage:
    """A page plus the problems seen on it; ``page`` is Playwright's own ``Page``."""

    page: Any
    base_url: str
    problems: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)

    def goto(self, route: str = "#/chat") -> None:
        self.page.goto(f"{self.base_url}/{route}")
        self.page.wait_for_selector("#tabs .tab")

    def shot(self, name: str, *, full_page: bool = False) -> Path:
        out = ARTIFACTS / "screenshots" / f"{name}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(out), full_page=full_page)
        return out

    def expect_http_error(self, pattern: str) -> None:
        """Declare that a request matching ``pattern`` (``"400 POST /path"``) is meant to fail."""
        self.allowed.append(re.compile(pattern))

    def _problem(self, text: str) -> None:
        if not any(p.search(text) for p in self.allowed):
            self.problems.append(text)


# Module scope: while Playwright's sync API is open its event loop counts as running in this thread, so
# later tests that call asyncio.run() would fail; closing it with each browser module avoids that.
@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not Path(CHROMIUM).exists() or shutil.which(CHROMIUM) is None:
        need(f"Chromium ({CHROMIUM})", "apt-get install chromium (the README's test command does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def open_page(
    chromium: Any, base_url: str, *, width: int = 1280, height: int = 800
) -> Iterator[PlaygroundPage]:
    """A new context and page with problem tracking; used by ``pg_page`` and narrow-window tests."""
    context = chromium.new_context(viewport={"width": width, "height": height}, locale="en-US")
    context.set_default_timeout(20_000)
    page = context.new_page()
    pg = PlaygroundPage(page, base_url)

    def on_console(msg: Any) -> None:
        # "Failed to load resource: … status of 404" repeats a response that on_response judges
        if msg.type == "error" and not msg.text.startswith("Failed to load resource: the server responded"):
            pg._problem(f"console error: {msg.text}")

    def on_response(resp: Any) -> None:
        if resp.status >= 400:
            pg._problem(f"{resp.status} {resp.request.method} {resp.url.removeprefix(base_url)}")

    def on_failed(req: Any) -> None:
        failure = req.failure or ""
        if "ERR_ABORTED" in failure and req.resource_type in ("fetch", "xhr", "script"):
            # a request the page cancelled itself (Stop button, leaving a panel), or a panel's module
            # still loading when the test reloads the page; a script that is missing answers 404 above
            return
        pg._problem(f"failed {req.method} {req.url.removeprefix(base_url)}: {failure}")

    page.on("console", on_console)
    page.on("pageerror", lambda err: pg.problems.append(f"page error: {err}"))
    page.on("response", on_response)
    page.on("requestfailed", on_failed)
    try:
        yield pg
    finally:
        context.close()
    assert not pg.problems, "problems in the browser:\n" + "\n".join(pg.problems)


@pytest.fixture
def pg_page(chromium: Any, server: str) -> Iterator[PlaygroundPage]:
    """The playground of this test's ``server`` (override ``home`` to choose its models), 1280×800."""
    with open_page(chromium, server) as pg:
        yield pg
