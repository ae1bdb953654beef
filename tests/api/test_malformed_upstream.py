"""Every provider, fed well-formed JSON of the wrong shape, answers OpenAI's error JSON: a 502
naming the provider before the first byte (streaming or not), an error event after it; never a
plain-text 500. The upstream is a loopback server, so the production client is in the loop."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest

from tests.conftest import make_app
from tests.upstreams import Reply, SocketUpstream, anthropic_stream, gemini_stream, openai_stream

ANY_PROVIDER: list[Any] = [[], [1, 2], "abc", 123, None, True, 1.5]

WRONG: dict[str, list[Any]] = {
    "openai": [
        {"choices": "abc"},
        {"choices": [1]},
        {"choices": {"0": {}}},
        {"choices": [{"delta": "x"}]},
        {"choices": [{"index": "0", "delta": {"content": "x"}}]},
        {"choices": [{"index": -1, "delta": {"content": "x"}}]},
        {"choices": [{"delta": {"content": 5}}]},
        {"choices": [{"delta": {"content": ["a"]}}]},
        {"choices": [{"delta": {"refusal": {"x": 1}}}]},
        {"choices": [{"delta": {"tool_calls": "x"}}]},
        {"choices": [{"delta": {"tool_calls": [{"index": 0, "function": "f"}]}}]},
        {"choices": [{"delta": {"tool_calls": [{"index": 0, "id": 7, "function": {}}]}}]},
        {"choices": [{"delta": {}, "finish_reason": ["stop"]}]},
        {"choices": [], "usage": {"prompt_tokens": "5", "completion_tokens": "3"}},
        {"choices": [], "usage": "lots"},
        {"choices": [], "usage": {"prompt_tokens_details": "x", "prompt_tokens": 1}},
    ],
    "anthropic": [
        {"type": "content_block_delta"},
        {"type": "content_block_delta", "index": 0, "delta": "x"},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": 5}},
        {"type": "message_start", "message": []},
        {"type": "message_start"},
        {"type": "message_start", "message": {"usage": {"input_tokens": "5"}}},
        {"type": "content_block_start", "index": 0},
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "tool_use", "id": 1, "name": "f"},
        },
        {"type": "content_block_start", "index": [0], "content_block": {"type": "tool_use"}},
        {"type": "message_delta", "delta": "x"},
        {"type": "message_delta", "delta": {}, "usage": {"output_tokens": "9"}},
        {"type": ["message_stop"]},
    ],
    "google": [
        {"candidates": "x"},
        {"candidates": [1]},
        {"candidates": [{"content": "x"}]},
        {"candidates": [{"content": {"parts": "x"}}]},
        {"candidates": [{"content": {"parts": [{"text": 5}]}}]},
        {"candidates": [{"content": {"parts": [{"functionCall": {"name": 3}}]}}]},
        {"candidates": [{"index": "0", "content": {"parts": [{"text": "x"}]}}]},
        {"candidates": [{"finishReason": 1}]},
        {"candidates": [], "promptFeedback": "blocked"},
    ],
}
MODELS = {"openai": "gpt-4o", "anthropic": "claude-sonnet-4-5", "google": "gemini-2.5-flash"}
GOOD = {
    "openai": lambda: openai_stream(["fine", " words"]),
    "anthropic": lambda: anthropic_stream(["fine", " words"]),
    "google": lambda: gemini_stream(["fine", " words"]),
}
CASES = [(kind, payload) for kind in WRONG for payload in ANY_PROVIDER + WRONG[kind]]


def _sse(payload: Any) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


async def _post(upstream: SocketUpstream, model: str, stream: bool) -> httpx.Response:
    transport = httpx.ASGITransport(app=make_app(upstream))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        return await client.post(
            "/v1/chat/completions",
            json={
                "model": model,
                "messages": [{"role": "user", "content": "hi"}],
                "stream": stream,
            },
        )


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
@pytest.mark.parametrize(("kind", "payload"), CASES, ids=lambda v: json.dumps(v)[:40])
async def test_wrong_shape_before_the_first_byte_is_a_502_naming_the_provider(
    kind: str, payload: Any, stream: bool, caplog: pytest.LogCaptureFixture
) -> None:
    upstream = SocketUpstream(Reply(pieces=[_sse(payload), GOOD[kind]()]))
    with caplog.at_level(logging.ERROR):
        response = await _post(upstream, MODELS[kind], stream)
    assert response.status_code == 502, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["type"] == "upstream_error"
    assert kind in error["message"]
    assert not [r for r in caplog.records if "unhandled" in r.getMessage()]


@pytest.mark.parametrize("kind", sorted(WRONG))
async def test_wrong_shape_after_the_first_byte_is_an_error_event(kind: str) -> None:
    good = GOOD[kind]().replace(b"\r\n", b"\n")
    first = good[: good.index(b"fine")]
    first = first[: first.rfind(b"\n\n") + 2]  # whole events up to the first text
    text_event = good[len(first) :]
    text_event = text_event[: text_event.index(b"\n\n") + 2]
    wrong = WRONG[kind][4]
    upstream = SocketUpstream(Reply(pieces=[first + text_event, _sse(wrong)], delay=0.05))
    response = await _post(upstream, MODELS[kind], True)
    assert response.status_code == 200
    body = response.text
    assert "fine" in body
    last = [event for event in body.split("\n\n") if event][-1]
    assert last.startswith('data: {"error":')
    assert kind in json.loads(last.removeprefix("data: "))["error"]["message"]
    assert "[DONE]" not in body
