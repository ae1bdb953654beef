"""No model name changes an upstream request line: each adapter, through the production client
(`FastClient`) against a loopback upstream, with names that bypass the edge check (as a config
file's `model:` would)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from urllib.parse import unquote

import pytest

from echo_stream.providers.anthropic import AnthropicProvider
from echo_stream.providers.base import Provider
from echo_stream.providers.google import GoogleProvider
from echo_stream.providers.http import UpstreamOptions
from echo_stream.providers.openai import OpenAIProvider
from echo_stream.providers.transport.fastclient import FastClient
from tests.providers.conftest import chat, collect, text_of
from tests.providers.transport.test_urls import NASTY
from tests.upstreams import (
    SocketUpstream,
    anthropic_stream,
    gemini_stream,
    openai_stream,
    text_reply,
)

OPTIONS = UpstreamOptions(max_retries=0)


@pytest.fixture
def sockets() -> Iterator[list[SocketUpstream]]:
    started: list[SocketUpstream] = []
    yield started
    for upstream in started:
        upstream.close()


Case = tuple[Callable[[str], Provider], Callable[[list[str]], bytes], Callable[[str], str]]
CASES: dict[str, Case] = {
    "openai": (
        lambda base: OpenAIProvider(base + "/v1", "sk", OPTIONS, FastClient()),
        openai_stream,
        lambda model: "/v1/chat/completions",
    ),
    "anthropic": (
        lambda base: AnthropicProvider(base, "ak", OPTIONS, client=FastClient()),
        anthropic_stream,
        lambda model: "/v1/messages",
    ),
    "google": (
        lambda base: GoogleProvider(base, "gk", OPTIONS, FastClient()),
        gemini_stream,
        lambda model: "/v1beta/models/{}:streamGenerateContent?alt=sse",
    ),
}


@pytest.mark.parametrize("model", NASTY, ids=lambda m: repr(m[:30]))
@pytest.mark.parametrize("kind", sorted(CASES))
async def test_no_model_name_changes_the_request_line(
    kind: str, model: str, sockets: list[SocketUpstream]
) -> None:
    make, stream, expected = CASES[kind]
    upstream = SocketUpstream(text_reply(stream, ["fine"]))
    sockets.append(upstream)
    provider = make(upstream.base_url)
    try:
        events = await collect(provider.stream(chat(), model))
    finally:
        await provider.aclose()
    assert text_of(events) == "fine"
    [request] = upstream.requests
    assert request.method == "POST"
    assert request.headers["host"] == f"127.0.0.1:{upstream.port}"
    assert "x-injected" not in request.headers
    if kind == "google":
        prefix, suffix = "/v1beta/models/", ":streamGenerateContent?alt=sse"
        assert request.path.startswith(prefix) and request.path.endswith(suffix)
        segment = request.path.removeprefix(prefix).removesuffix(suffix)
        assert "/" not in segment and "?" not in segment and "#" not in segment
        assert unquote(segment) == model
    else:
        assert request.path == expected(model)
        assert upstream.bodies[0]["model"] == model
