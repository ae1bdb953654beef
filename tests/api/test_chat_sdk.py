"""End to end with the real `openai` SDK against a live gateway, one test per provider route."""

from __future__ import annotations

from collections.abc import Callable

import openai
import pytest

from tests.conftest import make_app
from tests.upstreams import (
    Reply,
    SocketUpstream,
    anthropic_stream,
    gemini_stream,
    openai_stream,
    openai_tool_stream,
    random_pieces,
    text_reply,
)

PIECES = ["Hello", " there", "! Caf", "é ☕", " and 日本語", " — done."]
TEXT = "".join(PIECES)
ROUTES = [
    ("gpt-4o-mini", openai_stream, "/v1/chat/completions"),
    ("claude-sonnet-4-20250514", anthropic_stream, "/v1/messages"),
    ("gemini-2.5-flash", gemini_stream, "/v1beta/models/gemini-2.5-flash:streamGenerateContent"),
]


def _client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url + "/v1", api_key="unused", max_retries=0)


@pytest.mark.parametrize(("model", "builder", "path"), ROUTES)
def test_streaming_through_each_provider(
    server: Callable[..., str], model: str, builder: Callable[[list[str]], bytes], path: str
) -> None:
    upstream = SocketUpstream(text_reply(builder, PIECES, seed=7))
    client = _client(server(make_app(upstream)))
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert upstream.requests[0].path.startswith(path)
    assert {chunk.id for chunk in chunks} == {chunks[0].id}
    assert {chunk.model for chunk in chunks} == {model}
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == TEXT
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes == ["stop"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0


@pytest.mark.parametrize(("model", "builder", "path"), ROUTES)
def test_non_streaming_through_each_provider(
    server: Callable[..., str], model: str, builder: Callable[[list[str]], bytes], path: str
) -> None:
    upstream = SocketUpstream(text_reply(builder, PIECES, seed=3))
    client = _client(server(make_app(upstream)))
    completion = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hi"}]
    )
    assert completion.object == "chat.completion"
    assert completion.model == model
    assert completion.choices[0].message.content == TEXT
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.prompt_tokens > 0


def test_usage_chunk_only_when_asked(server: Callable[..., str]) -> None:
    upstream = SocketUpstream(text_reply(openai_stream, PIECES))
    client = _client(server(make_app(upstream)))
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )
    assert all(chunk.choices for chunk in chunks)
    assert all(chunk.usage is None for chunk in chunks)


def test_streamed_tool_calls_assemble_in_the_sdk(server: Callable[..., str]) -> None:
    upstream = SocketUpstream(
        Reply(pieces=random_pieces(openai_tool_stream(), __import__("random").Random(1)))
    )
    client = _client(server(make_app(upstream)))
    stream = client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "weather and time?"}],
        tools=[
            {
                "type": "function",
                "function": {"name": "get_weather", "parameters": {"type": "object"}},
            },
            {
                "type": "function",
                "function": {"name": "get_time", "parameters": {"type": "object"}},
            },
        ],
        stream=True,
    )
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in stream:
        choice = chunk.choices[0]
        finish = choice.finish_reason or finish
        for call in choice.delta.tool_calls or ():
            entry = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
            if call.id:
                assert not entry["id"], "id must appear only on a call's first fragment"
                entry["id"] = call.id
            if call.function and call.function.name:
                entry["name"] += call.function.name
            if call.function and call.function.arguments:
                entry["arguments"] += call.function.arguments
    assert finish == "tool_calls"
    assert calls == {
        0: {"id": "call_0", "name": "get_weather", "arguments": '{"city": "Paris"}'},
        1: {"id": "call_1", "name": "get_time", "arguments": "{}"},
    }


def test_non_streaming_tool_calls(server: Callable[..., str]) -> None:
    upstream = SocketUpstream(Reply(pieces=[openai_tool_stream()]))
    client = _client(server(make_app(upstream)))
    completion = client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "weather?"}],
        tools=[{"type": "function", "function": {"name": "get_weather"}}],
    )
    message = completion.choices[0].message
    assert completion.choices[0].finish_reason == "tool_calls"
    assert message.content is None
    assert [(c.id, c.function.name, c.function.arguments) for c in message.tool_calls or ()] == [
        ("call_0", "get_weather", '{"city": "Paris"}'),
        ("call_1", "get_time", "{}"),
    ]


def test_mock_model_streams_without_any_key(server: Callable[..., str]) -> None:
    app = make_app(openai_api_key=None, anthropic_api_key=None, google_api_key=None)
    client = _client(server(app))
    text = "".join(
        chunk.choices[0].delta.content or ""
        for chunk in client.chat.completions.create(
            model="echo-mock", messages=[{"role": "user", "content": "What is SSE?"}], stream=True
        )
        if chunk.choices
    )
    assert 'Thanks for asking about "What is SSE?"' in text
    assert "```python" in text and "- Answers stream token by token" in text
    assert [m.id for m in client.models.list()] == ["echo-mock"]
