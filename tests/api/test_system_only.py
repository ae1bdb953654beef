"""A conversation of system messages only (LibreChat's classic title request) is answered on
every route, streaming and not, with LibreChat's usual knobs; the providers that need a user
turn get the instructions as one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.conftest import make_app
from tests.upstreams import (
    SocketUpstream,
    anthropic_stream,
    gemini_stream,
    openai_stream,
    text_reply,
)

TITLE_PROMPT = "Write a concise title for this conversation: 'how do tides work?'"
LIBRECHAT = {
    "temperature": 0.2,
    "presence_penalty": 0,
    "frequency_penalty": 0,
    "max_tokens": 16,
    "user": "6650c1f0a1b2c3d4e5f60718",
}
ROUTES: dict[str, tuple[str, Callable[[list[str]], bytes] | None]] = {
    "openai": ("gpt-4o-mini", openai_stream),
    "anthropic": ("claude-3-5-haiku-20241022", anthropic_stream),
    "google": ("gemini-2.0-flash", gemini_stream),
    "mock": ("echo-mock", None),
}


def _check_upstream_body(kind: str, body: dict[str, Any]) -> None:
    if kind == "anthropic":
        assert body["messages"] == [
            {"role": "user", "content": [{"type": "text", "text": TITLE_PROMPT}]}
        ]
        assert "system" not in body and body["max_tokens"] == 16
    elif kind == "google":
        assert body["contents"] == [{"role": "user", "parts": [{"text": TITLE_PROMPT}]}]
        assert "systemInstruction" not in body
        assert body["generationConfig"]["maxOutputTokens"] == 16
    else:
        assert body["messages"] == [{"role": "system", "content": TITLE_PROMPT}]


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "whole"])
@pytest.mark.parametrize("kind", sorted(ROUTES))
async def test_system_only_conversations_are_answered(kind: str, stream: bool) -> None:
    model, builder = ROUTES[kind]
    upstream = SocketUpstream(text_reply(builder, ["Tides", " explained"])) if builder else None
    transport = httpx.ASGITransport(app=make_app(upstream))
    request = {
        "model": model,
        "messages": [{"role": "system", "content": TITLE_PROMPT}],
        "stream": stream,
        **LIBRECHAT,
    }
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        response = await client.post("/v1/chat/completions", json=request)
    assert response.status_code == 200, response.text
    if stream:
        assert response.text.rstrip().endswith("data: [DONE]")
        assert '"content":' in response.text
    else:
        assert response.json()["choices"][0]["message"]["content"]
    if upstream is not None:
        _check_upstream_body(kind, upstream.bodies[0])
