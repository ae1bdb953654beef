"""The ad dashboard at /admin in a real browser: admin key, totals, tables, chart, refresh."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.browser import SCREENSHOTS
from tests.conftest import make_app
from tests.web.helpers import TIMEOUT_MS

ADMIN = "admin-key"


def _chat(base: str, content: str) -> None:
    body = {"model": "echo-mock", "messages": [{"role": "user", "content": content}]}
    assert httpx.post(base + "/api/chat", json=body, timeout=30).status_code == 200


def _open(page: Any, base: str) -> None:
    page.goto(base + "/admin")
    page.wait_for_selector("#key-dialog[open]", timeout=TIMEOUT_MS)
    page.fill("#key-input", ADMIN)
    page.click("#key-dialog button[value=save]")
    page.wait_for_selector("body[data-refreshed]", timeout=TIMEOUT_MS)


def test_the_dashboard_shows_totals_reasons_and_a_chart_and_keeps_refreshing(
    page: Any, server: Callable[..., str]
) -> None:
    base = server(
        make_app(ad_injection_rate=1.0, ad_track_clicks=True, echo_admin_keys=ADMIN, ad_seed=1)
    )
    _chat(base, "pasta recipes for dinner")
    _chat(base, "I feel sick, what medicine helps my health")  # a sensitive topic: no ad
    _open(page, base)
    page.wait_for_function(
        "() => document.getElementById('t-responses').textContent === '2'", timeout=TIMEOUT_MS
    )
    assert page.locator("#t-impressions").inner_text() == "1"
    assert page.locator("#t-fill").inner_text() == "50.0%"
    assert page.locator("#ads-table tbody tr").count() == 1
    reasons = page.locator("#reasons-table tbody tr")
    assert {reasons.nth(i).get_attribute("data-outcome") for i in range(reasons.count())} == {
        "placed",
        "sensitive_topic",
    }
    chart = page.locator("#chart svg")
    assert chart.get_attribute("role") == "img"
    assert "2 responses" in chart.get_attribute("aria-label")
    assert page.locator("#chart polyline").count() == 3
    assert page.evaluate("localStorage.getItem('echo.adminKey')") == ADMIN

    refreshed = int(page.evaluate("document.body.dataset.refreshed"))
    _chat(base, "more pasta recipes")
    page.wait_for_function(
        "() => document.getElementById('t-responses').textContent === '3'", timeout=TIMEOUT_MS
    )
    assert int(page.evaluate("document.body.dataset.refreshed")) > refreshed


def test_a_wrong_admin_key_is_refused(page: Any, server: Callable[..., str]) -> None:
    base = server(make_app(ad_injection_rate=1.0, echo_admin_keys=ADMIN))
    page.goto(base + "/admin")
    page.wait_for_selector("#key-dialog[open]", timeout=TIMEOUT_MS)
    page.fill("#key-input", "not-the-key")
    page.click("#key-dialog button[value=save]")
    page.wait_for_selector("#key-dialog[open]", timeout=TIMEOUT_MS)  # asked again
    page.click("#key-cancel")
    page.wait_for_selector("#banner:not([hidden])", timeout=TIMEOUT_MS)
    assert "admin key" in page.locator("#banner-message").inner_text()


@pytest.mark.parametrize(
    ("scheme", "width", "name"),
    [("light", 1280, "admin-light-desktop"), ("dark", 390, "admin-dark-phone")],
)
def test_dashboard_screenshots(
    chromium: Any, server: Callable[..., str], scheme: str, width: int, name: str
) -> None:
    base = server(make_app(ad_injection_rate=1.0, ad_track_clicks=True, echo_admin_keys=ADMIN))
    for topic in ("pasta recipes", "travel plans", "python code", "my health and medicine"):
        _chat(base, topic)
    context = chromium.new_context(color_scheme=scheme, viewport={"width": width, "height": 900})
    try:
        page = context.new_page()
        _open(page, base)
        page.wait_for_function(
            "() => document.getElementById('t-responses').textContent === '4'",
            timeout=TIMEOUT_MS,
        )
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
        if width < 500:
            assert page.evaluate("document.documentElement.scrollWidth") <= width
    finally:
        context.close()
