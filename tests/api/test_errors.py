"""Every error path, seen through the real `openai` SDK and raw HTTP: shape, status, headers."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import openai
import pytest

from tests.conftest import make_app
from tests.upstreams import Reply, SocketUpstream, openai_stream, random_pieces, text_reply

MESSAGES = [{"role": "user", "content": "hi"}]


def _client(base_url: str, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url + "/v1", api_key=key, max_retries=0)


def _error_body(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code", "request_id"}
    assert body["error"]["request_id"] == response.headers["x-request-id"]
    return dict(body["error"])


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        (b"{not json", None),
        (b"[1, 2]", None),
        (b'{"model": "echo-mock"}', "messages"),
        (b'{"messages": [{"role": "user", "content": "x"}]}', "model"),
        (b'{"model": "echo-mock", "messages": []}', "messages"),
        (
            b'{"model": "echo-mock", "messages": [{"role": "wizard", "content": "x"}]}',
            "messages.0.role",
        ),
        (
            b'{"model": "echo-mock", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"}',
            "temperature",
        ),
        (
            b'{"model": "echo-mock", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}',
            "max_tokens",
        ),
        (
            b'{"model": "echo-mock", "messages": [{"role": "user", "content": [{"type": "text"}]}]}',
            "messages.0.content",
        ),
    ],
)
def test_invalid_requests_are_400(
    server: Callable[..., str], payload: bytes, param: str | None
) -> None:
    base = server(make_app())
    response = httpx.post(base + "/v1/chat/completions", content=payload)
    assert response.status_code == 400
    error = _error_body(response)
    assert error["type"] == "invalid_request_error"
    if param is not None:
        assert str(error["param"]).startswith(param)


def test_extra_fields_and_penalties_are_tolerated(server: Callable[..., str]) -> None:
    client = _client(server(make_app()))
    completion = client.chat.completions.create(
        model="echo-mock",
        messages=MESSAGES,
        frequency_penalty=0.5,
        presence_penalty=0.2,
        extra_body={"some_future_field": {"x": 1}, "top_k": 3},
    )
    assert completion.choices[0].finish_reason == "stop"


def test_unknown_model_is_404(server: Callable[..., str]) -> None:
    client = _client(server(make_app()))
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="llama-unknown", messages=MESSAGES)
    assert caught.value.code == "model_not_found"


def test_provider_without_key_says_which_variable(server: Callable[..., str]) -> None:
    client = _client(server(make_app(anthropic_api_key=None)))
    with pytest.raises(openai.NotFoundError) as caught:
        client.chat.completions.create(model="claude-sonnet-4", messages=MESSAGES)
    assert "ANTHROPIC_API_KEY" in caught.value.message


def test_client_keys_are_enforced(server: Callable[..., str]) -> None:
    base = server(make_app(echo_api_keys="k-one, k-two"))
    with pytest.raises(openai.AuthenticationError):
        _client(base, key="wrong").chat.completions.create(model="echo-mock", messages=MESSAGES)
    missing = httpx.post(
        base + "/v1/chat/completions", json={"model": "echo-mock", "messages": MESSAGES}
    )
    assert missing.status_code == 401 and _error_body(missing)["code"] == "invalid_api_key"
    assert httpx.get(base + "/v1/models").status_code == 401
    assert httpx.get(base + "/health").status_code == 200
    ok = _client(base, key="k-two").chat.completions.create(model="echo-mock", messages=MESSAGES)
    assert ok.choices[0].message.content


def test_oversized_body_is_413(server: Callable[..., str]) -> None:
    base = server(make_app(max_request_bytes=2048))
    big = {"model": "echo-mock", "messages": [{"role": "user", "content": "x" * 5000}]}
    response = httpx.post(base + "/v1/chat/completions", json=big)
    assert response.status_code == 413
    assert _error_body(response)["code"] == "request_too_large"


def test_upstream_429_keeps_retry_after(server: Callable[..., str]) -> None:
    body = b'{"error": {"message": "Rate limit reached for gpt-4o", "type": "requests"}}'
    upstream = SocketUpstream(Reply(status=429, pieces=[body], headers={"retry-after": "7"}))
    client = _client(server(make_app(upstream)))
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    assert caught.value.response.headers["retry-after"] == "7"
    assert "Rate limit reached" in caught.value.message


def test_upstream_400_passes_through_with_its_message(server: Callable[..., str]) -> None:
    body = b'{"error": {"message": "Invalid schema for function", "type": "invalid_request_error"}}'
    upstream = SocketUpstream(Reply(status=400, pieces=[body]))
    client = _client(server(make_app(upstream)))
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert "Invalid schema for function" in caught.value.message


def test_upstream_5xx_is_retried_then_502(server: Callable[..., str]) -> None:
    upstream = SocketUpstream(Reply(status=503, pieces=[b"overloaded"]))
    client = _client(server(make_app(upstream, upstream_max_retries=2)))
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    assert caught.value.status_code == 502
    assert len(upstream.requests) == 3


def test_retry_before_first_byte_recovers(server: Callable[..., str]) -> None:
    upstream = SocketUpstream(
        Reply(status=500, pieces=[b"oops"]), text_reply(openai_stream, ["ok"])
    )
    client = _client(server(make_app(upstream, upstream_max_retries=1)))
    completion = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert completion.choices[0].message.content == "ok"
    assert len(upstream.requests) == 2


def test_unreachable_upstream_is_502(server: Callable[..., str]) -> None:
    upstream = SocketUpstream(Reply(raise_error=httpx.ConnectError("connection refused")))
    base = server(make_app(upstream))
    response = httpx.post(
        base + "/v1/chat/completions",
        json={"model": "gpt-4o", "messages": MESSAGES, "stream": True},
    )
    assert response.status_code == 502
    assert _error_body(response)["code"] == "upstream_unavailable"


def test_first_token_timeout_is_504(server: Callable[..., str]) -> None:
    reply = Reply(pieces=[openai_stream(["late"])], first_delay=2.0)
    upstream = SocketUpstream(reply)
    client = _client(server(make_app(upstream, upstream_first_token_timeout=0.2)))
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
    assert caught.value.status_code == 504
    assert upstream.closed.wait(2), "the timed-out upstream request must be closed"


def test_failure_after_first_byte_is_an_error_event(server: Callable[..., str]) -> None:
    pieces = random_pieces(
        openai_stream(["one", " two", " three", " four"]), __import__("random").Random(5), 30
    )
    upstream = SocketUpstream(Reply(pieces=pieces, fail_after=len(pieces) - 3))
    base = server(make_app(upstream))
    with httpx.stream(
        "POST",
        base + "/v1/chat/completions",
        json={"model": "gpt-4o", "messages": MESSAGES, "stream": True},
    ) as response:
        assert response.status_code == 200
        body = response.read().decode()
    events = [line for line in body.split("\n\n") if line]
    assert events[-1].startswith('data: {"error":')
    assert "[DONE]" not in body
    client = _client(base)
    upstream.requests.clear()
    with pytest.raises(openai.APIError):
        for _ in client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True):
            pass


def test_truncated_upstream_is_an_error_not_success(server: Callable[..., str]) -> None:
    cut = openai_stream(["half", " an answer"]).split(b'"finish_reason": "stop"')[0]
    cut = cut[: cut.rfind(b"\n\n") + 2]
    upstream = SocketUpstream(Reply(pieces=[cut]))
    client = _client(server(make_app(upstream)))
    with pytest.raises(openai.APIError):
        for _ in client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True):
            pass
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)


def test_unknown_path_has_openai_error_shape(server: Callable[..., str]) -> None:
    response = httpx.get(server(make_app()) + "/v1/nothing-here")
    assert response.status_code == 404
    _error_body(response)
