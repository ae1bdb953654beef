"""Every request gets an id, one log line and its metrics, whatever the face; a live server and
the real openai SDK on the client side."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable

import httpx
import openai
import pytest

from tests.conftest import make_app
from tests.ops.redis_env import REDIS_URL, redis_prefix_fixture  # noqa: F401
from tests.upstreams import Reply, SocketUpstream, openai_stream, text_reply

MESSAGES = [{"role": "user", "content": "Tell me about streaming"}]
LOGGER = "echo_stream.request"


def _request_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [r.__dict__["fields"] for r in caplog.records if r.name == LOGGER]


def _line(caplog: pytest.LogCaptureFixture, **match: object) -> dict[str, object]:
    """The one request line matching `match`; it is written just after the response ends, so
    the client can be a moment ahead of it."""
    deadline = time.monotonic() + 10
    while True:
        found = [f for f in _request_lines(caplog) if all(f.get(k) == v for k, v in match.items())]
        if found or time.monotonic() > deadline:
            assert len(found) == 1, found
            return found[0]
        time.sleep(0.02)


def _metrics(base: str, ready: str, headers: dict[str, str] | None = None) -> str:
    """`/metrics` once it shows `ready` (requests are counted just after their response)."""
    deadline = time.monotonic() + 10
    while True:
        text = httpx.get(base + "/metrics", headers=headers).text
        if ready in text or time.monotonic() > deadline:
            return text
        time.sleep(0.02)


def test_request_id_is_made_or_kept_and_returned_everywhere(server: Callable[..., str]) -> None:
    base = server(make_app())
    made = httpx.get(base + "/health")
    assert re.fullmatch(r"req_[0-9a-f]{24}", made.headers["x-request-id"])
    kept = httpx.get(base + "/v1/models", headers={"X-Request-Id": "trace-42.a:b"})
    assert kept.headers.get_list("x-request-id") == ["trace-42.a:b"]
    # An id that could smuggle text into logs or headers is replaced, not echoed.
    bad = httpx.get(base + "/v1/models", headers={"X-Request-Id": "x" * 200})
    assert bad.headers["x-request-id"].startswith("req_")
    missing = httpx.get(base + "/nowhere", headers={"X-Request-Id": "abc"})
    assert missing.status_code == 404
    assert missing.json()["error"]["request_id"] == "abc" == missing.headers["x-request-id"]


def test_streamed_answer_logs_one_line_with_its_facts(
    server: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    upstream = SocketUpstream(text_reply(openai_stream, ["Hello", " there", "."]))
    client = openai.OpenAI(
        base_url=server(make_app(upstream, echo_api_keys="sk-client-secret-1")) + "/v1",
        api_key="sk-client-secret-1",
        max_retries=0,
    )
    caplog.set_level(logging.INFO, logger=LOGGER)
    stream = client.chat.completions.with_raw_response.create(
        model="gpt-4o",
        messages=MESSAGES,
        stream=True,
        user="alice",
        stream_options={"include_usage": True},
    )
    request_id = stream.headers["x-request-id"]
    assert len(stream.headers.get_list("x-request-id")) == 1
    text = "".join(c.choices[0].delta.content or "" for c in stream.parse() if c.choices)
    assert text == "Hello there."
    line = _line(caplog, request_id=request_id)
    assert line["route"] == "/v1/chat/completions" and line["status"] == 200
    assert line["model"] == "gpt-4o" and line["provider"] == "openai"
    assert line["streamed"] is True and line["user"] == "alice"
    assert line["input_tokens"] == 11 and line["output_tokens"] == 3
    assert line["finish"] == "stop" and "error_type" not in line
    assert isinstance(line["ttft_ms"], float) and line["duration_ms"] >= line["ttft_ms"]
    assert re.fullmatch(r"key_[0-9a-f]{12}", str(line["key_id"]))
    assert "sk-client-secret-1" not in json.dumps(line)


def test_upstream_failure_and_retry_are_on_the_line_and_in_metrics(
    server: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    failing = Reply(status=503, pieces=[b'{"error": {"message": "overloaded"}}'])
    upstream = SocketUpstream(failing, failing)
    base = server(
        make_app(upstream, upstream_max_retries=1, echo_admin_keys="adm", metrics_open=False)
    )
    client = openai.OpenAI(base_url=base + "/v1", api_key="x", max_retries=0)
    caplog.set_level(logging.INFO, logger=LOGGER)
    with pytest.raises(openai.APIStatusError):
        client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    line = _line(caplog, route="/v1/chat/completions")
    assert line["status"] == 502 and line["retries"] == 1 and line["streamed"] is False
    assert line["error_type"] == "upstream_unavailable"
    assert httpx.get(base + "/metrics").status_code == 401
    metrics = _metrics(base, 'status="502"', {"Authorization": "Bearer adm"})
    assert 'echo_upstream_retries_total{kind="status_503",provider="openai"} 1.0' in metrics
    assert (
        'echo_upstream_errors_total{provider="openai",type="upstream_unavailable"} 1.0' in metrics
    )
    assert (
        'echo_requests_total{model="gpt-4o",provider="openai",route="/v1/chat/completions",'
        'status="502"} 1.0'
    ) in metrics


def test_metrics_count_answers_tokens_and_ads(server: Callable[..., str]) -> None:
    base = server(make_app(metrics_open=True, ad_injection_rate=1.0, min_response_length=0))
    client = openai.OpenAI(base_url=base + "/v1", api_key="x", max_retries=0)
    for _ in range(2):
        for _chunk in client.chat.completions.create(
            model="echo-mock", messages=MESSAGES, stream=True
        ):
            pass
    metrics = _metrics(base, "echo_ad_impressions_total 2.0")
    assert re.search(
        r'echo_tokens_total\{direction="output",model="echo-mock",provider="mock"\} \d+', metrics
    )
    assert re.search(r'echo_stream_chunks_total\{provider="mock"\} [1-9]', metrics)
    assert 'echo_ad_decisions_total{decision="placed",reason=""} 2.0' in metrics
    assert "echo_ad_impressions_total 2.0" in metrics
    assert (
        'echo_time_to_first_token_seconds_count{model="echo-mock",provider="mock"} 2.0' in metrics
    )
    assert "echo_active_streams 0.0" in metrics


def test_ad_reason_reaches_the_log_line(
    server: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    base = server(make_app(ad_injection_rate=1.0, ad_free_keys="vip"))
    client = openai.OpenAI(base_url=base + "/v1", api_key="vip", max_retries=0)
    caplog.set_level(logging.INFO, logger=LOGGER)
    client.chat.completions.create(model="echo-mock", messages=MESSAGES)
    line = _line(caplog, route="/v1/chat/completions")
    assert line["ad"] == "none" and line["ad_reason"] == "ad_free_key"


def test_health_answers_head_and_ready_reports_checks(server: Callable[..., str]) -> None:
    app = make_app()
    base = server(app)
    assert httpx.head(base + "/health").status_code == 200
    # The conversation store (SQLite by default) is the one dependency without Redis.
    assert httpx.get(base + "/ready").json() == {"status": "ok", "checks": {"database": "ok"}}


def test_ready_names_what_is_down(server: Callable[..., str]) -> None:
    from echo_stream.app import build_state, create_app
    from tests.conftest import make_settings

    settings = make_settings()
    state = build_state(settings)
    assert state.ops is not None

    async def database() -> None:
        raise ConnectionError("connection refused")

    async def cache() -> None:
        return None

    state.ops.readiness += [("database", database), ("cache", cache)]
    base = server(create_app(settings, state))
    response = httpx.get(base + "/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"] == {"database": "ConnectionError: connection refused", "cache": "ok"}
    assert set(body["down"]) == {"database"}


def test_ready_fails_when_redis_is_down(server: Callable[..., str]) -> None:
    base = server(make_app(redis_url="redis://127.0.0.1:1/0"))
    response = httpx.get(base + "/ready")
    assert response.status_code == 503 and "redis" in response.json()["down"]
    assert httpx.get(base + "/health").status_code == 200


@pytest.mark.redis
def test_ready_passes_with_redis(server: Callable[..., str], redis_prefix: str) -> None:
    base = server(make_app(redis_url=REDIS_URL, redis_key_prefix=redis_prefix))
    assert httpx.get(base + "/ready").json()["checks"] == {"redis": "ok", "database": "ok"}


def test_usage_is_per_key_and_model_and_admin_only(server: Callable[..., str]) -> None:
    base = server(make_app(echo_api_keys="sk-one-aaaaaaaa,sk-two-bbbbbbbb", echo_admin_keys="adm"))
    for key, times in (("sk-one-aaaaaaaa", 2), ("sk-two-bbbbbbbb", 1)):
        client = openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0)
        for _ in range(times):
            client.chat.completions.create(model="echo-mock", messages=MESSAGES)
    assert httpx.get(base + "/v1/usage").status_code == 401
    admin = {"Authorization": "Bearer adm"}
    rows = httpx.get(base + "/v1/usage", headers=admin).json()["data"]
    assert sorted(row["requests"] for row in rows) == [1, 2]
    assert all(row["model"] == "echo-mock" and row["output_tokens"] > 0 for row in rows)
    assert all(row["key_id"].startswith("key_") for row in rows)
    assert httpx.get(base + "/v1/usage?date=yesterday", headers=admin).status_code == 400
    assert httpx.get(base + "/v1/usage?date=2001-01-01", headers=admin).json()["data"] == []


def test_unknown_model_names_do_not_become_metric_labels(server: Callable[..., str]) -> None:
    base = server(make_app(metrics_open=True))
    client = openai.OpenAI(base_url=base + "/v1", api_key="x", max_retries=0)
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="made-up-name-123", messages=MESSAGES)
    metrics = _metrics(base, 'status="404"')
    assert "made-up-name-123" not in metrics
    assert 'route="/v1/chat/completions",status="404"' in metrics


def test_active_streams_counts_answers_in_progress(server: Callable[..., str]) -> None:
    base = server(make_app(metrics_open=True, mock_delay_ms=20))
    body = {"model": "echo-mock", "stream": True, "messages": MESSAGES}
    with httpx.stream("POST", base + "/v1/chat/completions", json=body, timeout=30) as response:
        lines = response.iter_lines()  # kept: a dropped iterator closes the connection
        next(lines)  # the answer has started
        assert "echo_active_streams 1.0" in httpx.get(base + "/metrics").text
    assert "echo_active_streams 0.0" in _metrics(base, "echo_active_streams 0.0")


def test_every_fast_route_is_labelled_by_its_template(
    server: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    base = server(make_app())
    with caplog.at_level(logging.INFO, logger=LOGGER):
        lobe = httpx.post(base + "/api/chat", json={"model": "echo-mock", "messages": MESSAGES})
        assert lobe.status_code == 200
        # No JWT key is configured: the session face answers 503, still under its template.
        httpx.get(base + "/stream/some-session-id?access_token=t")
        line = _line(caplog, route="/api/chat")
        assert line["model"] == "echo-mock"
        stream_line = _line(caplog, route="/stream/{session_id}")
    assert "some-session-id" not in str(stream_line["route"])


def test_the_gateway_grants_the_direct_body_writer_even_behind_its_cors_layer(
    server: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing wraps the app's `send` from outside here, so the middle of a stream is written
    # straight to the connection (`http_protocol.BodyWriter`), CORS layer or not: it only adds
    # headers to the response's start.
    from echo_stream.http_protocol import BodyWriter

    written: list[bytes] = []
    write_ready = BodyWriter.write_ready  # (`write` ends in it too)

    def counting(self: BodyWriter, data: bytes) -> None:
        write_ready(self, data)
        written.append(data)

    monkeypatch.setattr(BodyWriter, "write_ready", counting)
    pieces = [f"piece {n} " for n in range(12)]
    events = [event + b"\n\n" for event in openai_stream(pieces).split(b"\n\n") if event]
    upstream = SocketUpstream(Reply(pieces=events, delay=0.01))  # one read per event
    base = server(make_app(upstream, allowed_origins="https://chat.example"))
    client = openai.OpenAI(base_url=base + "/v1", api_key="unused", max_retries=0)
    stream = client.chat.completions.create(
        model="gpt-4o",
        messages=MESSAGES,
        stream=True,
        extra_headers={"Origin": "https://chat.example"},
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "".join(pieces)
    assert len(written) >= 5  # the reads between the first and the last
