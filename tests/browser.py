"""A real headless Chromium (Debian's package) driven by Playwright, for pages and EventSource.

Playwright's own browser download cannot reach the network here, so it is pointed at the system
executable. Without Chromium the browser tests skip with the reason (CI installs it and requires
it: `.ci/run` sets CI=true).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
# Flags that keep Chromium off the (closed) network and working as root in a container.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
# Tests write their screenshots here (ignored by git), so a test run never dirties the tree;
# `docs/screenshots/` holds the copies the README shows, refreshed by copying from here.
SCREENSHOTS = Path(
    os.environ.get("SCREENSHOT_DIR")
    or Path(__file__).resolve().parent.parent / "build" / "screenshots"
)


def _unavailable() -> str | None:
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[dev]')"
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """A launched headless Chromium `Browser` (sync Playwright API); use it from sync tests.

    Module-scoped: while sync Playwright runs, its event loop is the thread's running loop, so
    async tests collected after a browser test would fail if the browser outlived its module.
    """
    reason = _unavailable()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs a browser: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    """A fresh browser page (its own context: no shared storage between tests)."""
    context = chromium.new_context()
    try:
        yield context.new_page()
    finally:
        context.close()
