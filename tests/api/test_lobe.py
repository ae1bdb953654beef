"""`POST /api/chat` at the byte level against a live gateway: every provider and the mock."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import make_app
from tests.live import serve
from tests.upstreams import (
    FakeUpstream,
    Reply,
    SocketUpstream,
    anthropic_stream,
    gemini_stream,
    openai_stream,
    openai_tool_stream,
    text_reply,
)

PIECES = ["Hello", " from", " the", " upstream", "."]
PROVIDERS = [
    ("gpt-4o", openai_stream),
    ("claude-sonnet-4-20250514", anthropic_stream),
    ("gemini-2.5-flash", gemini_stream),
]


def _body(model: str, content: str = "hi", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


def _events(data: bytes) -> list[tuple[str, str, Any]]:
    """Strict Lobe framing: `id:`, `event:`, `data:` (JSON) and a blank line, nothing else."""
    assert data.endswith(b"\n\n"), data[-80:]
    out = []
    for block in data[:-2].split(b"\n\n"):
        lines = block.split(b"\n")
        assert [line.split(b":", 1)[0] for line in lines] == [b"id", b"event", b"data"], block
        out.append((lines[0][4:].decode(), lines[1][7:].decode(), orjson.loads(lines[2][6:])))
    return out


def _text(events: list[tuple[str, str, Any]]) -> str:
    return "".join(data for _, event, data in events if event == "text")


@pytest.mark.parametrize(("model", "builder"), PROVIDERS)
def test_every_provider_streams_lobe_events(
    server: Callable[..., str], model: str, builder: Callable[[list[str]], bytes]
) -> None:
    base = server(make_app(FakeUpstream(text_reply(builder, PIECES))))
    response = httpx.post(base + "/api/chat", json=_body(model), timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = _events(response.content)
    assert _text(events) == "Hello from the upstream."
    assert [event for _, event, _ in events][-3:] == ["stop", "speed", "usage"]
    assert events[-3][2] == "stop"
    assert events[-2][0] == "output_speed"
    assert set(events[-2][2]) == {"ttft", "tps", "latency", "duration"}
    usage = events[-1][2]
    assert usage["totalOutputTokens"] > 0 and usage["totalTokens"] >= usage["totalOutputTokens"]
    assert len({event_id for event_id, event, _ in events if event != "speed"}) == 1


def test_the_mock_streams_lobe_events_with_its_own_usage(server: Callable[..., str]) -> None:
    base = server(make_app())
    response = httpx.post(base + "/api/chat", json=_body("echo-mock", stream=True), timeout=30)
    events = _events(response.content)
    assert _text(events).startswith('Thanks for asking about "hi"')
    assert [event for _, event, _ in events][-3:] == ["stop", "speed", "usage"]
    assert events[-1][2]["inputTextTokens"] == 1


def test_tool_calls_arrive_as_lobe_tool_call_chunks(server: Callable[..., str]) -> None:
    base = server(make_app(FakeUpstream(Reply(pieces=[openai_tool_stream()]))))
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {}}}]
    response = httpx.post(base + "/api/chat", json=_body("gpt-4o", tools=tools), timeout=30)
    events = _events(response.content)
    calls = [data[0] for _, event, data in events if event == "tool_calls"]
    assert calls[0]["function"] == {"name": "get_weather", "arguments": ""}
    assert calls[0]["id"] == "call_0" and calls[0]["type"] == "function"
    by_index: dict[int, str] = {}
    for call in calls:
        by_index[call["index"]] = by_index.get(call["index"], "") + call["function"]["arguments"]
    assert by_index == {0: '{"city": "Paris"}', 1: "{}"}
    assert ("stop", "tool_calls") in [(event, data) for _, event, data in events]


def test_a_sponsored_block_is_an_ad_event_never_text(server: Callable[..., str]) -> None:
    base = server(make_app(ad_injection_rate=1.0, ad_track_clicks=True))
    response = httpx.post(base + "/api/chat", json=_body("echo-mock", "pasta recipes"), timeout=30)
    events = _events(response.content)
    ads = [data for _, event, data in events if event == "ad"]
    assert len(ads) == 1
    assert set(ads[0]) == {"adId", "advertiser", "title", "text", "link"}
    assert ads[0]["link"].startswith(base + "/v1/ads/click/")
    assert "[ad]" not in _text(events) and "Sponsored ·" not in _text(events)


def test_an_upstream_cut_mid_answer_ends_with_an_error_event(server: Callable[..., str]) -> None:
    events_in = [event + b"\n\n" for event in openai_stream(PIECES).split(b"\n\n") if event]
    reply = Reply(pieces=events_in, fail_after=3, delay=0.05)
    base = server(make_app(FakeUpstream(reply)))
    events = _events(httpx.post(base + "/api/chat", json=_body("gpt-4o"), timeout=30).content)
    assert _text(events) == "Hello from"
    assert events[-1][1] == "error"
    assert events[-1][2]["type"] == "ProviderBizError"
    assert {"body", "message", "type"} <= set(events[-1][2])
    assert "stop" not in [event for _, event, _ in events]


def test_an_upstream_that_ends_without_a_finish_gets_a_synthetic_error(
    server: Callable[..., str],
) -> None:
    head = {"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    chunk = {**head, "choices": [{"index": 0, "delta": {"content": "half"}, "finish_reason": None}]}
    pieces = [f"data: {json.dumps(chunk)}\n\n".encode(), b"data: [DONE]\n\n"]
    base = server(make_app(FakeUpstream(Reply(pieces=pieces, delay=0.05))))
    events = _events(httpx.post(base + "/api/chat", json=_body("gpt-4o"), timeout=30).content)
    assert _text(events) == "half"
    assert events[-1][1] == "error"
    assert events[-1][2]["type"] == "StreamChunkError"
    assert [event for _, event, _ in events].count("error") == 1


@pytest.mark.parametrize(
    ("reply", "status", "error_type"),
    [
        (
            Reply(status=429, pieces=[b'{"error": {"message": "slow down"}}']),
            429,
            "QuotaLimitReached",
        ),
        (
            Reply(status=401, pieces=[b'{"error": {"message": "bad key"}}']),
            401,
            "InvalidProviderAPIKey",
        ),
        (Reply(status=500, pieces=[b'{"error": {"message": "boom"}}']), 502, "ProviderBizError"),
    ],
)
def test_upstream_errors_before_the_stream_are_lobe_json_with_their_status(
    server: Callable[..., str], reply: Reply, status: int, error_type: str
) -> None:
    base = server(make_app(FakeUpstream(reply)))
    response = httpx.post(base + "/api/chat", json=_body("gpt-4o"), timeout=30)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["errorType"] == error_type
    assert body["body"]["provider"] == "openai" and body["body"]["message"]


@pytest.mark.parametrize(
    ("content", "status", "error_type"),
    [
        (b"{", 400, 400),
        (b"[]", 400, 400),
        (json.dumps({"model": "echo-mock", "messages": []}).encode(), 400, 400),
        (json.dumps(_body("no-such-model")).encode(), 404, "ModelNotFound"),
    ],
)
def test_bad_requests_are_lobe_json_errors(
    server: Callable[..., str], content: bytes, status: int, error_type: str | int
) -> None:
    base = server(make_app())
    response = httpx.post(base + "/api/chat", content=content, timeout=30)
    assert response.status_code == status
    assert response.json()["errorType"] == error_type


def test_the_client_key_is_required_when_configured(server: Callable[..., str]) -> None:
    base = server(make_app(echo_api_keys="k1"))
    missing = httpx.post(base + "/api/chat", json=_body("echo-mock"), timeout=30)
    assert missing.status_code == 401 and missing.json()["errorType"] == "InvalidAccessCode"
    ok = httpx.post(
        base + "/api/chat",
        json=_body("echo-mock"),
        headers={"Authorization": "Bearer k1", "X-Conversation-Id": "new"},
        timeout=30,
    )
    assert ok.status_code == 200 and _events(ok.content)[-1][1] == "usage"


def test_a_client_that_leaves_cancels_the_upstream() -> None:
    data = openai_stream([f" word{i}" for i in range(400)])
    pieces = [event + b"\n\n" for event in data.split(b"\n\n") if event]
    upstream = SocketUpstream(Reply(pieces=pieces, delay=0.02))
    with serve(make_app(upstream)) as live:
        body = json.dumps(_body("gpt-4o")).encode()
        sock = socket.create_connection(("127.0.0.1", live.port))
        sock.sendall(
            f"POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        received = sock.recv(4096)
        assert b"200 OK" in received and b"text/event-stream" in received
        assert not upstream.closed.is_set()
        sock.close()
        assert upstream.closed.wait(5.0), "upstream request was not cancelled"


def test_lobe_s_payload_fields_are_forwarded_and_its_own_are_not(
    server: Callable[..., str],
) -> None:
    upstream = FakeUpstream(text_reply(openai_stream, PIECES))
    base = server(make_app(upstream))
    body = _body(
        "gpt-4o",
        stream=False,  # Lobe's server streams anyway
        temperature=0.3,
        top_p=0.9,
        max_tokens=50,
        provider="openai",
        responseMode="stream",
    )
    response = httpx.post(base + "/api/chat", json=body, timeout=30)
    assert response.headers["content-type"].startswith("text/event-stream")
    assert _text(_events(response.content)) == "Hello from the upstream."
    sent = upstream.bodies[0]
    assert (sent["temperature"], sent["top_p"], sent["stream"]) == (0.3, 0.9, True)
    assert "provider" not in sent and "responseMode" not in sent


def test_invalid_fields_are_named(server: Callable[..., str]) -> None:
    base = server(make_app())
    response = httpx.post(base + "/api/chat", json=_body("echo-mock", temperature=5), timeout=30)
    assert response.status_code == 400
    assert response.json()["body"]["param"] == "temperature"


def test_every_lobe_answer_carries_one_request_id(server: Callable[..., str]) -> None:
    """Lobe's route is served without the observer's per-write wrapper: its answers (streams
    and errors alike) add the request id themselves, exactly once."""
    base = server(make_app())
    with httpx.Client(base_url=base) as client:
        ok = client.post("/api/chat", json=_body("echo-mock"))
        bad = client.post("/api/chat", json=_body("no-such-model-xyz"))
        not_json = client.post(
            "/api/chat", content=b"{", headers={"content-type": "application/json"}
        )
    for response in (ok, bad, not_json):
        ids = [v for k, v in response.headers.multi_items() if k == "x-request-id"]
        assert len(ids) == 1 and ids[0].startswith("req_"), response.headers
    assert ok.status_code == 200 and bad.status_code >= 400 and not_json.status_code == 400
