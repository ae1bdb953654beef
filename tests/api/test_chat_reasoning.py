"""Reasoning end to end: real provider-shaped upstreams, the real `openai` SDK and Lobe's events."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import httpx
import openai
import orjson
import pytest

from tests.conftest import make_app
from tests.upstreams import FakeUpstream, Reply, SocketUpstream, random_pieces

STREAMS = Path(__file__).parents[1] / "fixtures" / "streams"
# (model, fixture, reasoning, answer) for each provider's reasoning wire shape
CASES = [
    (
        "gpt-4o-mini",  # an OpenAI-compatible upstream (DeepSeek-reasoner's shape)
        "openai_reasoning.sse",
        "Okay, 9.11 vs 9.8: compare tenths — 1 < 8",
        "9.8 is larger.",
    ),
    (
        "claude-sonnet-4-20250514",
        "anthropic_thinking.sse",
        "Let me solve this step by step:\n\n1. First break down 27 * 453"
        "\n2. 453 = 400 + 50 + 3 → 10935 + 1296 = 12231",
        "27 * 453 = 12,231",
    ),
    (
        "gemini-2.5-flash",
        "gemini_text_crlf.sse",
        "**Listing the steps**\n\nThe user wants a short list.",
        "Here are three steps:\n\n1. Open the stream.\n2. Read each chunk.\n3. Close it.",
    ),
]


def _reply(fixture: str, seed: int) -> Reply:
    return Reply(pieces=random_pieces((STREAMS / fixture).read_bytes(), random.Random(seed)))


def _client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url + "/v1", api_key="unused", max_retries=0)


@pytest.mark.parametrize(("model", "fixture", "reasoning", "answer"), CASES)
def test_streamed_reasoning_reaches_the_sdk_as_reasoning_content(
    server: Callable[..., str], model: str, fixture: str, reasoning: str, answer: str
) -> None:
    client = _client(server(make_app(SocketUpstream(_reply(fixture, seed=5)))))
    chunks = list(
        client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )
    deltas = [chunk.choices[0].delta for chunk in chunks if chunk.choices]
    thought = "".join((d.model_extra or {}).get("reasoning_content") or "" for d in deltas)
    assert thought == reasoning
    assert "".join(d.content or "" for d in deltas) == answer
    first_text = next(i for i, d in enumerate(deltas) if d.content)
    last_thought = max(
        i for i, d in enumerate(deltas) if (d.model_extra or {}).get("reasoning_content")
    )
    assert last_thought < first_text


@pytest.mark.parametrize(("model", "fixture", "reasoning", "answer"), CASES)
def test_collected_answer_has_message_reasoning_content(
    server: Callable[..., str], model: str, fixture: str, reasoning: str, answer: str
) -> None:
    client = _client(server(make_app(SocketUpstream(_reply(fixture, seed=9)))))
    completion = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "hi"}]
    )
    message = completion.choices[0].message
    assert message.content == answer
    assert (message.model_extra or {}).get("reasoning_content") == reasoning


def test_an_answer_without_reasoning_has_no_reasoning_content(server: Callable[..., str]) -> None:
    client = _client(server(make_app(SocketUpstream(_reply("openai_text.sse", seed=1)))))
    completion = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
    )
    assert "reasoning_content" not in (completion.choices[0].message.model_extra or {})


@pytest.mark.parametrize(("model", "fixture", "reasoning", "answer"), CASES)
def test_lobe_sends_reasoning_events_before_the_text(
    server: Callable[..., str], model: str, fixture: str, reasoning: str, answer: str
) -> None:
    base = server(make_app(FakeUpstream(_reply(fixture, seed=2))))
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    response = httpx.post(base + "/api/chat", json=body, timeout=30)
    assert response.status_code == 200
    events = [
        (block.split(b"\n")[1][7:].decode(), orjson.loads(block.split(b"\n")[2][6:]))
        for block in response.content[:-2].split(b"\n\n")
    ]
    kinds = [kind for kind, _ in events]
    assert "".join(data for kind, data in events if kind == "reasoning") == reasoning
    assert "".join(data for kind, data in events if kind == "text") == answer
    assert max(i for i, k in enumerate(kinds) if k == "reasoning") < kinds.index("text")
    assert kinds[-1] == "usage"
