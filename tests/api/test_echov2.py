"""EchoV2's `POST /chat` and `POST /chat/conversation` against a live gateway, on both stores."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.conftest import make_app
from tests.databases import database_url  # noqa: F401  (fixture)
from tests.upstreams import Reply, SocketUpstream, openai_stream, text_reply

PIECES = ["Hello", " there", "! Caf", "é ☕", " — done."]
TEXT = "".join(PIECES)


def sse_events(body: str) -> list[dict[str, Any]]:
    """EchoV2 events from a raw SSE body."""
    return [json.loads(block[len("data: ") :]) for block in body.split("\n\n") if block.strip()]


def stream_chat(
    base: str, payload: dict[str, Any], **kw: Any
) -> tuple[httpx.Response, list[dict[str, Any]]]:
    with httpx.stream(
        "POST", base + "/chat", json={"stream": True, **payload}, timeout=60, **kw
    ) as r:
        body = r.read().decode()
    return r, sse_events(body) if r.status_code == 200 else [json.loads(body)]


def stored(base: str, conversation_id: str, **kw: Any) -> dict[str, Any]:
    response = httpx.get(f"{base}/v1/conversations/{conversation_id}", timeout=30, **kw)
    assert response.status_code == 200, response.text
    return dict(response.json())


def wait_for_status(base: str, conversation_id: str, status: str) -> dict[str, Any]:
    """The stored answer once it reaches `status` (the outcome write follows the stream)."""
    deadline = time.monotonic() + 30
    while True:
        answer = stored(base, conversation_id)["messages"][-1]
        if answer["status"] == status or time.monotonic() > deadline:
            return dict(answer)
        time.sleep(0.05)


def test_streamed_chat_is_echov2_sse_and_is_stored(
    server: Callable[..., str],
    database_url: str,  # noqa: F811
) -> None:
    upstream = SocketUpstream(text_reply(openai_stream, PIECES, seed=3))
    base = server(make_app(upstream, database_url=database_url))
    response, events = stream_chat(base, {"prompt": "Say hello to the café", "model": "gpt-4o"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    content = [e for e in events if e["type"] == "content"]
    assert "".join(e["chunk"] for e in content) == TEXT
    done = events[-1]
    assert done["type"] == "done" and done["finish_reason"] == "stop"
    assert done["conversation_id"] == response.headers["x-conversation-id"]
    assert done["usage"] == {"input_tokens": 11, "output_tokens": len(PIECES), "total_tokens": 16}
    conversation = stored(base, done["conversation_id"])
    assert conversation["title"] == "Say hello to the café"
    user, answer = conversation["messages"]
    assert (user["role"], user["content"]) == ("user", "Say hello to the café")
    assert answer["id"] == done["message_id"]
    assert (answer["status"], answer["content"], answer["finish_reason"]) == (
        "complete",
        TEXT,
        "stop",
    )
    assert (answer["provider"], answer["model"]) == ("openai", "gpt-4o")
    assert (answer["input_tokens"], answer["output_tokens"]) == (11, len(PIECES))


def test_non_streamed_chat_and_continuing_with_stored_history(
    server: Callable[..., str],
    database_url: str,  # noqa: F811
) -> None:
    upstream = SocketUpstream(text_reply(openai_stream, PIECES))
    base = server(make_app(upstream, database_url=database_url))
    first = httpx.post(
        base + "/chat", json={"prompt": "first", "model": "gpt-4o", "stream": False}, timeout=30
    )
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["response"] == TEXT and body["usage"]["output_tokens"] == len(PIECES)
    assert first.headers["x-conversation-id"] == body["conversation_id"]
    second = httpx.post(
        base + "/chat",
        json={"prompt": "second", "model": "gpt-4o", "stream": False,
              "conversation_id": body["conversation_id"]},
        timeout=30,
    )  # fmt: skip
    assert second.status_code == 200 and second.json()["conversation_id"] == body["conversation_id"]
    assert upstream.bodies[1]["messages"] == [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": TEXT},
        {"role": "user", "content": "second"},
    ]
    roles = [m["role"] for m in stored(base, body["conversation_id"])["messages"]]
    assert roles == ["user", "assistant", "user", "assistant"]


def test_chat_conversation_takes_messages_or_a_stored_id(
    server: Callable[..., str],
    database_url: str,  # noqa: F811
) -> None:
    upstream = SocketUpstream(text_reply(openai_stream, PIECES))
    base = server(make_app(upstream, database_url=database_url))
    history = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
               {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "And?"}]  # fmt: skip
    response = httpx.post(base + "/chat/conversation",
                          json={"messages": history, "model": "gpt-4o", "stream": False}, timeout=30)  # fmt: skip
    assert response.status_code == 200, response.text
    assert upstream.bodies[0]["messages"] == history
    cid = response.json()["conversation_id"]
    # Only the last user message and the answer are stored (the client keeps its own history).
    assert [m["content"] for m in stored(base, cid)["messages"]] == ["And?", TEXT]
    again = httpx.post(base + "/chat/conversation",
                       json={"conversation_id": cid, "prompt": "More", "model": "gpt-4o", "stream": False},
                       timeout=30)  # fmt: skip
    assert again.status_code == 200, again.text
    assert upstream.bodies[1]["messages"] == [
        {"role": "user", "content": "And?"}, {"role": "assistant", "content": TEXT},
        {"role": "user", "content": "More"},
    ]  # fmt: skip
    missing = httpx.post(base + "/chat/conversation", json={"prompt": "x"}, timeout=30)
    assert missing.status_code == 400


@pytest.mark.parametrize(
    ("payload", "status", "needle"),
    [
        ({"prompt": "x" * 101}, 400, "limit is 100"),
        ({"prompt": "bad \x00 byte"}, 400, "U+0000"),
        ({"prompt": "bell\x07"}, 400, "U+0007"),
        ({"prompt": "   \n "}, 400, "empty"),
        ({}, 400, "Missing required parameter: 'prompt'"),
        ({"prompt": 5}, 400, "prompt"),
        ({"prompt": "hi", "conversation_id": "../../etc"}, 400, "conversation id"),
        ({"prompt": "hi", "conversation_id": "conv_unknown"}, 404, "No conversation"),
        ({"prompt": "hi", "model": "echo-mock", "provider": "openai"}, 400, "served by 'mock'"),
        ({"prompt": "hi", "model": "no-such-model-xyz"}, 404, "model"),
    ],
)
def test_bad_requests_get_clear_errors(
    server: Callable[..., str], payload: dict[str, Any], status: int, needle: str
) -> None:
    base = server(make_app(chat_max_prompt_chars=100))
    response = httpx.post(base + "/chat", json=payload, timeout=30)
    assert response.status_code == status, response.text
    assert needle in response.json()["error"]["message"]


def test_tabs_and_newlines_are_fine_and_a_matching_provider_is_accepted(
    server: Callable[..., str],
) -> None:
    base = server(make_app())
    response = httpx.post(base + "/chat", json={"prompt": "line one\n\tline two\r\n",
                          "provider": "mock", "stream": False}, timeout=30)  # fmt: skip
    assert response.status_code == 200, response.text
    assert response.json()["provider"] == "mock"


def test_idempotency_key_attaches_a_retry_to_the_same_answer(
    server: Callable[..., str],
    database_url: str,  # noqa: F811
) -> None:
    upstream = SocketUpstream(text_reply(openai_stream, PIECES))
    base = server(make_app(upstream, database_url=database_url))
    payload = {"prompt": "once", "model": "gpt-4o", "idempotency_key": "retry-42"}
    _, first = stream_chat(base, payload)
    _, second = stream_chat(base, payload)
    assert len(upstream.requests) == 1  # the provider was asked once
    assert second[-1]["message_id"] == first[-1]["message_id"]
    assert "".join(e.get("chunk", "") for e in second) == TEXT
    # The header form works too, and for non-streamed retries.
    third = httpx.post(base + "/chat", json={"prompt": "once", "model": "gpt-4o", "stream": False},
                       headers={"Idempotency-Key": "retry-42"}, timeout=30)  # fmt: skip
    assert third.json()["response"] == TEXT and len(upstream.requests) == 1
    assert len(stored(base, first[-1]["conversation_id"])["messages"]) == 2


def test_two_retries_sent_together_ask_the_provider_once(
    server: Callable[..., str],
    database_url: str,  # noqa: F811
) -> None:
    # A client that timed out and retried while the first request was still being answered:
    # one answer, the provider asked once (`test_recording` makes the race itself certain).
    from concurrent.futures import ThreadPoolExecutor
    from threading import Barrier

    reply = text_reply(openai_stream, PIECES)
    reply.first_delay = 0.5  # both requests arrive while the provider is still thinking
    upstream = SocketUpstream(reply)
    base = server(make_app(upstream, database_url=database_url))
    payload = {"prompt": "once", "model": "gpt-4o", "idempotency_key": "together-1"}
    barrier = Barrier(2)

    def send() -> list[dict[str, Any]]:
        barrier.wait()
        return stream_chat(base, payload)[1]

    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(lambda _: send(), range(2))
    assert len(upstream.requests) == 1
    assert first[-1]["message_id"] == second[-1]["message_id"]
    assert "".join(e.get("chunk", "") for e in first) == TEXT
    assert "".join(e.get("chunk", "") for e in second) == TEXT
    assert len(stored(base, first[-1]["conversation_id"])["messages"]) == 2


def test_between_chunks_timeout_ends_with_error_event_and_marks_the_message(
    server: Callable[..., str],
) -> None:
    pieces = openai_stream(["only this", " never"]).split(b"\n\n")
    reply = Reply(pieces=[b"\n\n".join(pieces[:2]) + b"\n\n", b"\n\n".join(pieces[2:])], delay=30)
    upstream = SocketUpstream(reply)
    base = server(make_app(upstream, chat_chunk_timeout=0.3))
    response, events = stream_chat(base, {"prompt": "hi", "model": "gpt-4o"})
    assert response.status_code == 200
    assert events[0] == {"chunk": "only this", "type": "content"}
    assert events[-1]["type"] == "error" and "between-chunks" in events[-1]["message"]
    answer = wait_for_status(base, response.headers["x-conversation-id"], "error")
    assert (answer["status"], answer["content"]) == ("error", "only this")
    assert "between-chunks" in answer["error"]


def test_total_timeout_before_any_chunk_is_a_504_and_marks_the_message(
    server: Callable[..., str],
) -> None:
    upstream = SocketUpstream(Reply(pieces=[openai_stream(["late"])], first_delay=30))
    base = server(make_app(upstream, chat_total_timeout=0.3, chat_stream_fallback=False))
    response, events = stream_chat(base, {"prompt": "hi", "model": "gpt-4o"})
    assert response.status_code == 504
    assert "total timeout" in events[0]["error"]["message"]
    listing = httpx.get(base + "/v1/conversations", timeout=30).json()
    answer = wait_for_status(base, listing["data"][0]["id"], "error")
    assert answer["error"] and "total" in answer["error"]


def test_stream_failing_before_first_chunk_falls_back_once(server: Callable[..., str]) -> None:
    upstream = SocketUpstream(Reply(raise_error=OSError("drop")), text_reply(openai_stream, PIECES))
    base = server(make_app(upstream))
    response, events = stream_chat(base, {"prompt": "hi", "model": "gpt-4o"})
    assert response.status_code == 200
    assert len(upstream.requests) == 2
    assert "".join(e.get("chunk", "") for e in events) == TEXT
    assert events[-1]["type"] == "done"


def test_without_fallback_the_failure_is_reported(server: Callable[..., str]) -> None:
    upstream = SocketUpstream(Reply(raise_error=OSError("drop")), text_reply(openai_stream, PIECES))
    base = server(make_app(upstream, chat_stream_fallback=False))
    response, _ = stream_chat(base, {"prompt": "hi", "model": "gpt-4o"})
    assert response.status_code == 502 and len(upstream.requests) == 1


def test_client_disconnect_marks_the_answer_aborted(
    server: Callable[..., str],
    database_url: str,  # noqa: F811
) -> None:
    events = openai_stream([f" w{n}" for n in range(50)]).split(b"\n\n")
    reply = Reply(pieces=[event + b"\n\n" for event in events if event], delay=0.2)
    upstream = SocketUpstream(reply)
    base = server(make_app(upstream, database_url=database_url))
    with httpx.stream(
        "POST", base + "/chat", json={"prompt": "hi", "model": "gpt-4o"}, timeout=30
    ) as r:
        cid = r.headers["x-conversation-id"]
        for line in r.iter_lines():
            if '"content"' in line:
                break
    answer = wait_for_status(base, cid, "aborted")
    assert answer["status"] == "aborted"
    assert answer["content"].startswith(" w0") and len(answer["content"]) < len(" w0" * 50)


def test_the_ad_is_stored_beside_the_models_exact_text(
    server: Callable[..., str],
    database_url: str,  # noqa: F811
) -> None:
    base = server(make_app(database_url=database_url, ad_injection_rate=1.0, min_response_length=0,
                           ad_seed=1))  # fmt: skip
    response, events = stream_chat(base, {"prompt": "Tell me about Python programming"})
    shown = "".join(e.get("chunk", "") for e in events)
    answer = stored(base, response.headers["x-conversation-id"])["messages"][-1]
    ad = answer["ad"]
    assert ad is not None and ad["text"] in shown
    assert ad["text"] not in answer["content"]
    position = ad["position"]
    assert answer["content"][:position] + ad["text"] + answer["content"][position:] == shown
    assert {"ad_id", "advertiser", "title", "body", "url"} <= set(ad)


def test_openapi_describes_the_chat_endpoints(server: Callable[..., str]) -> None:
    spec = httpx.get(server(make_app()) + "/openapi.json", timeout=30).json()
    body = spec["paths"]["/chat"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"prompt", "model", "provider", "conversation_id", "stream"} <= set(body["properties"])
    messages = spec["paths"]["/chat/conversation"]["post"]["requestBody"]["content"]
    assert "messages" in messages["application/json"]["schema"]["properties"]


def test_a_title_model_renames_a_new_conversation_after_its_first_answer(
    server: Callable[..., str],
) -> None:
    upstream = SocketUpstream(text_reply(openai_stream, PIECES),
                              text_reply(openai_stream, ['"Greeting the', ' café."']))  # fmt: skip
    base = server(make_app(upstream, conversation_title_model="gpt-4o"))
    response, _ = stream_chat(base, {"prompt": "Say hello to everyone in the café today please",
                                          "model": "gpt-4o"})  # fmt: skip
    cid = response.headers["x-conversation-id"]
    deadline = time.monotonic() + 30
    title = ""
    while time.monotonic() < deadline:
        title = stored(base, cid)["title"]
        if title == "Greeting the café":
            break
        time.sleep(0.05)
    assert title == "Greeting the café"
    assert "Question: Say hello" in upstream.bodies[1]["messages"][1]["content"]
