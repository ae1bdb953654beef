"""The OpenAI endpoint's storage opt-in, through the real `openai` SDK, on both stores."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import openai

from tests.conftest import make_app
from tests.databases import database_url  # noqa: F401  (fixture)
from tests.upstreams import SocketUpstream, openai_stream, text_reply

PIECES = ["Stored", " answer", " here."]
TEXT = "".join(PIECES)


def _client(base_url: str, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url + "/v1", api_key=key, max_retries=0)


def test_header_opt_in_stores_and_continues_a_conversation(
    server: Callable[..., str],
    database_url: str,  # noqa: F811
) -> None:
    upstream = SocketUpstream(text_reply(openai_stream, PIECES))
    base = server(make_app(upstream, database_url=database_url))
    client = _client(base)
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o", stream=True, messages=[{"role": "user", "content": "Remember me"}],
        extra_headers={"X-Conversation-Id": "new"},
    )  # fmt: skip
    cid = raw.headers["x-conversation-id"]
    text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    assert text == TEXT and cid.startswith("conv_")
    history = [{"role": "user", "content": "Remember me"}, {"role": "assistant", "content": TEXT},
               {"role": "user", "content": "Again"}]  # fmt: skip
    second = client.chat.completions.with_raw_response.create(
        model="gpt-4o",
        messages=history,
        extra_headers={"X-Conversation-Id": cid},  # type: ignore[arg-type]
    )
    assert second.headers["x-conversation-id"] == cid
    assert second.parse().choices[0].message.content == TEXT
    # Same caller: the key the SDK presented (with an open API, the presented key still names
    # the owner).
    auth = {"Authorization": "Bearer unused"}
    conversation = httpx.get(f"{base}/v1/conversations/{cid}", headers=auth, timeout=30).json()
    assert "messages" in conversation, conversation
    messages = [(m["role"], m["content"], m["status"]) for m in conversation["messages"]]
    assert messages == [("user", "Remember me", "complete"), ("assistant", TEXT, "complete"),
                        ("user", "Again", "complete"), ("assistant", TEXT, "complete")]  # fmt: skip


def test_metadata_opt_in_is_not_forwarded_upstream(server: Callable[..., str]) -> None:
    upstream = SocketUpstream(text_reply(openai_stream, PIECES))
    base = server(make_app(upstream))
    raw = _client(base).chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}],
        metadata={"conversation_id": "new", "team": "a"},
    )  # fmt: skip
    cid = raw.headers["x-conversation-id"]
    assert upstream.bodies[0]["metadata"] == {"team": "a"}
    auth = {"Authorization": "Bearer unused"}
    listing = httpx.get(base + "/v1/conversations", headers=auth, timeout=30).json()
    assert [c["id"] for c in listing["data"]] == [cid]


def test_without_opt_in_nothing_is_stored(server: Callable[..., str]) -> None:
    upstream = SocketUpstream(text_reply(openai_stream, PIECES))
    base = server(make_app(upstream))
    raw = _client(base).chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    list(raw.parse())
    assert "x-conversation-id" not in raw.headers
    auth = {"Authorization": "Bearer unused"}
    assert httpx.get(base + "/v1/conversations", headers=auth, timeout=30).json()["data"] == []


def test_opt_in_respects_ownership(server: Callable[..., str]) -> None:
    base = server(make_app(echo_api_keys="ka,kb"))
    raw = _client(base, "ka").chat.completions.with_raw_response.create(
        model="echo-mock", messages=[{"role": "user", "content": "mine"}],
        extra_headers={"X-Conversation-Id": "new"},
    )  # fmt: skip
    cid = raw.headers["x-conversation-id"]
    try:
        _client(base, "kb").chat.completions.create(
            model="echo-mock", messages=[{"role": "user", "content": "steal"}],
            extra_headers={"X-Conversation-Id": cid},
        )  # fmt: skip
        raise AssertionError("another key continued the conversation")
    except openai.NotFoundError as exc:
        assert "No conversation" in str(exc)
    bad = httpx.post(base + "/v1/chat/completions", headers={"Authorization": "Bearer ka",
                     "X-Conversation-Id": "../x"}, json={"model": "echo-mock",
                     "messages": [{"role": "user", "content": "x"}]}, timeout=30)  # fmt: skip
    assert bad.status_code == 400
