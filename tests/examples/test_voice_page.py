"""The example page plays a voice stream in order: a real Chromium receives every segment of the
offline voice's answer and schedules each with the Web Audio API, one after the other."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from tests.browser import SCREENSHOTS
from tests.conftest import make_app
from tests.live import serve

PAGE = Path(__file__).resolve().parents[2] / "examples" / "voice-stream.html"


@pytest.fixture(autouse=True)
def _no_tts_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ELEVENLABS_API_KEY", "INWORLD_API_KEY", "TTS_DEFAULT_PROVIDER"):
        monkeypatch.delenv(name, raising=False)


def test_page_receives_and_schedules_every_segment_in_order(page: Any) -> None:
    with serve(make_app(mock_delay_ms=2)) as server:
        # Served from the gateway's own origin, as the page expects.
        page.route(
            server.url + "/examples/voice-stream.html",
            lambda route: route.fulfill(body=PAGE.read_text(), content_type="text/html"),
        )
        page.goto(server.url + "/examples/voice-stream.html")
        page.wait_for_function("document.querySelectorAll('#tts option').length === 3")
        assert page.eval_on_selector("#tts", "s => s.value") == "offline"
        page.click("#go")
        page.wait_for_function("window.voiceLog.done", timeout=60_000)
        log = page.evaluate("window.voiceLog")
        total = log["total"]
        assert log["error"] is None and log["failed"] == []
        assert total >= 4
        assert log["received"] == list(range(total))
        scheduled = log["scheduled"]
        assert [s["sequence"] for s in scheduled] == list(range(total))
        for before, after in itertools.pairwise(scheduled):
            assert after["start"] >= before["start"] + before["duration"] - 1e-6  # back to back
        assert all(s["duration"] > 0.3 for s in scheduled)
        assert page.inner_text("#answer").startswith("Thanks for asking")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "voice-stream-example.png"), full_page=True)
