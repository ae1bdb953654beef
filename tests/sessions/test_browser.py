"""End to end in a real browser: Chromium's own EventSource reads a session stream, loses its
connection mid-answer, reconnects with Last-Event-ID and rebuilds the answer exactly."""

from __future__ import annotations

import time
from typing import Any

import httpx
import jwt

from echo_stream.app import build_state, create_app
from tests.browser import SCREENSHOTS
from tests.conftest import make_settings
from tests.live import serve
from tests.sessions.fakes import SECRET, fake_n8n
from tests.sessions.proxy import cutting_proxy

WATCH = """
(url) => new Promise((resolve) => {
  const source = new EventSource(url);
  const seen = {full: "", ids: [], errors: 0, opens: 0};
  const finish = () => { source.close(); resolve(seen); };
  source.onopen = () => { seen.opens += 1; };
  source.onerror = () => { seen.errors += 1; };
  source.onmessage = (event) => {
    if (event.data === "[DONE]") { finish(); return; }
    seen.full += event.data;
    seen.ids.push(event.lastEventId);
  };
  setTimeout(finish, 90000);
})
"""

SHOW = """
(text) => {
  document.body.innerHTML = "<h3>EventSource rebuilt answer (after a dropped connection)</h3>";
  const pre = document.createElement("pre");
  pre.style.whiteSpace = "pre-wrap";
  pre.textContent = text;
  document.body.appendChild(pre);
}
"""


def test_chromium_eventsource_survives_a_dropped_connection(page: Any) -> None:
    with fake_n8n(running_attempts=1) as n8n:
        settings = make_settings(
            jwt_secret=SECRET,
            n8n_allowed_origins=n8n.url,
            n8n_private_hosts="127.0.0.1",
            n8n_callback_retry_seconds=20,
            mock_delay_ms=8,
        )
        app = create_app(settings, build_state(settings))
        with serve(app) as gateway, cutting_proxy(gateway.port, cut_after=1500) as proxy:
            base = f"http://127.0.0.1:{proxy.port}"
            token = jwt.encode({"exp": int(time.time()) + 60}, SECRET, algorithm="HS256")
            init = httpx.post(
                base + "/init-stream",
                json={
                    "n8nToken": token,
                    "resumeUrl": n8n.resume_url(),
                    "prompt": "Line one\nline two",
                    "userId": "browser",
                },
                timeout=30,
            )
            assert init.status_code == 200, init.text
            stream_url = init.json()["streamUrl"]
            assert stream_url.startswith(base)
            page.goto(base + "/health")  # same origin as the stream
            seen = page.evaluate(WATCH, stream_url)
            page.evaluate(SHOW, seen["full"])
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "session-stream-eventsource.png"))
            calls = n8n.wait_for(2)
        assert proxy.cut, "the connection was never cut"
        assert seen["errors"] >= 1 and seen["opens"] >= 2  # it dropped and reconnected
        assert len(proxy.stream_requests) >= 2
        resumed = proxy.stream_requests[1].decode(errors="replace")
        headers = dict(line.split(": ", 1) for line in resumed.split("\r\n")[1:] if ": " in line)
        last_id = {k.lower(): v for k, v in headers.items()}["last-event-id"]
        assert last_id in seen["ids"]  # it resumed after an event it had
        assert len(seen["ids"]) == len(set(seen["ids"]))  # no duplicate event
        delivered = [c for c in calls if c["status"] == 200]
        assert len(delivered) == 1
        assert delivered[0]["json"]["answer"] == seen["full"]  # no gap: byte for byte
        assert delivered[0]["json"]["status"] == "complete"
        assert "\n" in seen["full"]


ENDS = """
(url) => new Promise((resolve) => {
  const source = new EventSource(url);
  let messages = 0;
  source.onmessage = () => { messages += 1; };
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) resolve({closed: true, messages});
  };
  setTimeout(() => { resolve({closed: source.readyState === EventSource.CLOSED, messages}); source.close(); }, 20000);
})
"""


def test_chromium_stops_on_401_404_and_204(page: Any) -> None:
    with fake_n8n() as n8n:
        settings = make_settings(
            jwt_secret=SECRET, n8n_allowed_origins=n8n.url, n8n_private_hosts="127.0.0.1"
        )
        with serve(create_app(settings, build_state(settings))) as gateway:
            token = jwt.encode({"exp": int(time.time()) + 60}, SECRET, algorithm="HS256")
            body = {"n8nToken": token, "resumeUrl": n8n.resume_url(), "prompt": "hi"}
            url = httpx.post(gateway.url + "/init-stream", json=body).json()["streamUrl"]
            base, _, _token = url.partition("?access_token=")
            page.goto(gateway.url + "/health")
            wrong = page.evaluate(ENDS, base + "?access_token=wrong")
            unknown = page.evaluate(ENDS, gateway.url + "/stream/nope?access_token=x")
            httpx.get(url, timeout=30)  # read the whole answer once: the stream is finished
            finished = page.evaluate(ENDS, url)
    assert wrong == {"closed": True, "messages": 0}
    assert unknown == {"closed": True, "messages": 0}
    assert finished == {"closed": True, "messages": 0}
