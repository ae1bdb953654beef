"""The browser harness itself works: Chromium loads a page from a live gateway."""

from __future__ import annotations

from typing import Any

from tests.conftest import make_app
from tests.live import serve


def test_chromium_reads_a_page_the_gateway_serves(page: Any) -> None:
    with serve(make_app()) as server:
        page.goto(server.url + "/health")
        assert '"status"' in page.content()
