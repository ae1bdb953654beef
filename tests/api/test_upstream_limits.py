"""Limits on what an upstream may send, seen from a client: a 502 before the first byte, an
error event after it, both saying which limit and which provider."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import make_app
from tests.upstreams import Reply, SocketUpstream, openai_stream

LIMIT = 64 * 1024
BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


async def _post(upstream: SocketUpstream, stream: bool, **settings: int) -> httpx.Response:
    transport = httpx.ASGITransport(app=make_app(upstream, **settings))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        return await client.post("/v1/chat/completions", json={**BODY, "stream": stream})


@pytest.mark.parametrize("stream", [True, False])
async def test_an_endless_sse_line_is_a_502_before_the_first_byte(stream: bool) -> None:
    endless = [b"data: {"] + [b"x" * 8192] * 40  # 320 KiB, never a newline
    upstream = SocketUpstream(Reply(pieces=endless))
    response = await _post(upstream, stream, upstream_max_event_bytes=LIMIT)
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "upstream_too_large"
    assert "openai" in error["message"] and str(LIMIT) in error["message"]


async def test_an_oversized_event_after_the_first_byte_is_an_error_event() -> None:
    good = openai_stream(["fine"])
    first = good[: good.index(b"fine")]
    first = good[: good.index(b"\n\n", len(first)) + 2]
    upstream = SocketUpstream(Reply(pieces=[first, b"data: " + b"y" * (2 * LIMIT)], delay=0.05))
    response = await _post(upstream, True, upstream_max_event_bytes=LIMIT)
    assert response.status_code == 200
    last = [event for event in response.text.split("\n\n") if event][-1]
    assert last.startswith('data: {"error":') and "upstream_too_large" in last
    assert "[DONE]" not in response.text


@pytest.mark.parametrize("stream", [True, False])
async def test_an_oversized_response_head_is_a_502(stream: bool) -> None:
    upstream = SocketUpstream(Reply(pieces=[openai_stream(["x"])], headers={"x-big": "h" * 8000}))
    response = await _post(upstream, stream, upstream_max_head_bytes=4096)
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "upstream_too_large"
