"""`POST /init-stream` and `GET /stream/{id}` on a live gateway, with a fake n8n Wait node."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest

from echo_stream.app import build_state, create_app
from echo_stream.http_protocol import BodyWriter, CoalescingHttpToolsProtocol
from echo_stream.ops.logs import RedactArgs
from echo_stream.sessions.store import MemorySessionStore
from echo_stream.state import AppState
from tests.conftest import make_settings
from tests.live import serve
from tests.sessions.conftest import REDIS_URL, redis_prefix  # noqa: F401
from tests.sessions.fakes import SECRET, FakeN8n, fake_n8n, read_stream, text_of
from tests.upstreams import FakeUpstream, Reply, openai_stream, text_reply


@dataclass
class Gateway:
    url: str
    n8n: FakeN8n
    state: AppState

    def token(self, **claims: Any) -> str:
        payload = {"exp": int(time.time()) + 60, **claims}
        return jwt.encode(payload, SECRET, algorithm="HS256")

    def init(self, **fields: Any) -> httpx.Response:
        body: dict[str, Any] = {
            "n8nToken": self.token(),
            "resumeUrl": self.n8n.resume_url(),
            "prompt": "Tell me about streams",
            "userId": "u-1",
            "chatId": 99,
        }
        body.update(fields)
        return httpx.post(self.url + "/init-stream", json=body, timeout=30)

    def stream_url(self, **fields: Any) -> str:
        response = self.init(**fields)
        assert response.status_code == 200, response.text
        return str(response.json()["streamUrl"])

    def stored(self) -> int:
        store = self.state.sessions.store
        assert isinstance(store, MemorySessionStore)
        return len(store._records)


@contextmanager
def gateway(
    upstream: FakeUpstream | None = None,
    http: type[asyncio.Protocol] | str = CoalescingHttpToolsProtocol,
    **overrides: Any,
) -> Iterator[Gateway]:
    with fake_n8n() as n8n:
        values: dict[str, Any] = {
            "jwt_secret": SECRET,
            "n8n_allowed_origins": n8n.url,
            "n8n_private_hosts": "127.0.0.1",
            "n8n_callback_secret": "cb-secret",
            "n8n_callback_retry_seconds": 10,
            "mock_delay_ms": 1,
        }
        values.update(overrides)
        settings = make_settings(**values)
        state = build_state(settings, upstream.transport if upstream else None)
        with serve(create_app(settings, state), http) as server:
            yield Gateway(server.url, n8n, state)


def test_init_answers_a_stream_url_and_the_answer_streams_then_calls_back() -> None:
    with gateway() as gw:
        response = gw.init()
        assert response.status_code == 200
        body = response.json()
        assert body["ok"] is True
        url = body["streamUrl"]
        assert url.startswith(gw.url + "/stream/")
        assert "?access_token=" in url
        assert len(gw.state.sessions._expiry) == 1  # the TTL watcher of the new session
        read = read_stream(url)
        assert read.status == 200
        assert gw.state.sessions._expiry == {}  # attached here: the watcher is gone
        assert read.headers["content-type"].startswith("text/event-stream")
        assert read.headers["cache-control"] == "no-cache"
        assert read.headers["x-accel-buffering"] == "no"
        assert read.headers["referrer-policy"] == "no-referrer"
        # Added by the response itself (no observer wrapper on the stream's writes): once.
        assert read.headers["x-request-id"].startswith("req_")
        assert "," not in read.headers["x-request-id"]
        assert read.events[-1].data == "[DONE]"
        ids = [e.id for e in read.events]
        assert len(set(ids)) == len(ids)
        shown = text_of(read.events)
        assert "Tell me about streams" in shown
        [call] = gw.n8n.wait_for(1)
        assert call["headers"]["x-echo-callback-secret"] == "cb-secret"
        payload = call["json"]
        assert payload["userId"] == "u-1" and payload["chatId"] == 99
        assert payload["prompt"] == "Tell me about streams"
        assert payload["answer"] == shown
        assert payload["status"] == "complete" and payload["finish_reason"] == "stop"
        assert payload["input_tokens"] > 0 and payload["output_tokens"] > 0
        assert payload["tokens_estimated"] is False
        assert payload["model"] == "echo-mock" and payload["provider"] == "mock"
        assert payload["streamId"] in url
        # After the end: 204 stops EventSource from reconnecting.
        finished = read_stream(url)
        assert finished.status == 204
        assert finished.headers["referrer-policy"] == "no-referrer"
        assert finished.headers["x-request-id"].startswith("req_")
        assert read_stream(url, last_event_id=read.last_event_id).status == 204
        time.sleep(0.3)
        assert len(gw.n8n.requests) == 1


def _paced(pieces: list[str], delay: float = 0.02) -> FakeUpstream:
    """An upstream sending each SSE event of an answer as its own read, `delay` s apart."""
    events = openai_stream(pieces).split(b"\n\n")
    return FakeUpstream(Reply(pieces=[e + b"\n\n" for e in events if e], delay=delay))


def test_a_caught_up_viewer_is_written_to_by_the_generation_byte_for_byte(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pieces = ["One", " two\nthree", "\n\nfour", " five."]
    writes: list[bytes] = []
    original = BodyWriter.write

    def counted(self: BodyWriter, data: bytes) -> bool:
        done = original(self, data)
        if done:
            writes.append(data)
        return done

    monkeypatch.setattr(BodyWriter, "write", counted)
    bodies = {}
    for http in (CoalescingHttpToolsProtocol, "httptools"):  # the gateway's server; plain uvicorn
        with gateway(_paced(pieces), http) as gw:
            url = gw.stream_url(model="gpt-4o-mini")
            with httpx.stream("GET", url, timeout=30) as response:
                bodies[http] = response.read()
            [call] = gw.n8n.wait_for(1)
            assert call["json"]["answer"] == "".join(pieces)
        if http is CoalescingHttpToolsProtocol:
            # Every piece after the first went straight from the generating task.
            assert 1 <= len(writes) <= len(pieces) - 1, writes
            assert b"".join(writes) in bodies[http]
    assert bodies[CoalescingHttpToolsProtocol] == bodies["httptools"]
    assert bodies["httptools"].startswith(b"retry: 1000\n\nid: 1\ndata: One\n\n")
    assert b"id: 2\ndata:  two\ndata: three\n\n" in bodies["httptools"]
    assert bodies["httptools"].endswith(b"data: [DONE]\n\n")


def test_a_viewer_that_stops_reading_never_holds_up_the_generation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # ~8 MB: more than the kernel's socket buffers and the server's write buffer hold, so
    # the connection pushes back while the answer is still being generated.
    pieces = [f"{n:04d}" + "x" * 50_000 + "\n" for n in range(160)]
    refused_paused = 0
    original = BodyWriter.write

    def watched(self: BodyWriter, data: bytes) -> bool:
        nonlocal refused_paused
        done = original(self, data)
        refused_paused += not done and self._cycle.flow.write_paused
        return done

    monkeypatch.setattr(BodyWriter, "write", watched)
    with gateway(_paced(pieces, delay=0.001)) as gw:
        url = httpx.URL(gw.stream_url(model="gpt-4o-mini"))
        with socket.create_connection((url.host, url.port)) as viewer:
            target = url.raw_path.decode()
            viewer.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            viewer.recv(1024)  # the head and the first piece's start; then it stops reading
            [call] = gw.n8n.wait_for(1)  # the whole answer was generated meanwhile
            assert call["json"]["status"] == "complete"
            assert refused_paused > 0  # pushes stopped while the client pushed back
            rest = bytearray()
            while not rest.endswith(b"data: [DONE]\n\n\r\n0\r\n\r\n"):
                data = viewer.recv(1 << 20)
                assert data, "the stream ended early"
                rest += data
    assert call["json"]["answer"] == "".join(pieces)
    for number in range(1, 160):  # every piece reached the viewer, once, in order
        assert rest.count(f"data: {number:04d}x".encode()) == 1


def test_public_base_url_builds_the_stream_url() -> None:
    with gateway(public_base_url="https://chat.example.com/") as gw:
        url = gw.stream_url()
        assert url.startswith("https://chat.example.com/stream/")


def test_wrong_token_is_401_unknown_is_404() -> None:
    with gateway() as gw:
        url = gw.stream_url()
        base, _, token = url.partition("?access_token=")
        wrong = httpx.get(f"{base}?access_token={token[:-2]}xx")
        assert wrong.status_code == 401
        assert wrong.json()["error"]["code"] == "invalid_token"
        assert httpx.get(base).status_code == 401
        unknown = httpx.get(f"{gw.url}/stream/nope?access_token={token}")
        assert unknown.status_code == 404
        assert unknown.json()["error"]["type"] == "invalid_request_error"
        assert gw.n8n.requests == []  # nothing started


@pytest.mark.parametrize("store", ["memory", pytest.param("redis", marks=pytest.mark.redis)])
def test_a_reconnect_with_last_event_id_gets_the_rest_with_no_gap_or_duplicate(
    store: str, request: pytest.FixtureRequest
) -> None:
    redis: dict[str, Any] = {}
    if store == "redis":
        redis = {
            "redis_url": REDIS_URL,
            "redis_key_prefix": request.getfixturevalue("redis_prefix"),
        }
    with gateway(mock_delay_ms=5, **redis) as gw:
        url = gw.stream_url()
        first = read_stream(url, limit=5)  # the viewer drops after five events
        assert len(first.events) == 5
        rest = read_stream(url, last_event_id=first.last_event_id)
        assert rest.status == 200
        ids = [e.id for e in first.events + rest.events]
        assert len(set(ids)) == len(ids)
        [call] = gw.n8n.wait_for(1)
        assert text_of(first.events) + text_of(rest.events) == call["json"]["answer"]
        assert call["json"]["status"] == "complete"


def test_a_malformed_last_event_id_is_400() -> None:
    with gateway() as gw:
        url = gw.stream_url()
        response = httpx.get(url, headers={"last-event-id": "not-an-id"})
        assert response.status_code == 400


def test_generation_goes_on_without_any_viewer() -> None:
    with gateway(mock_delay_ms=3) as gw:
        url = gw.stream_url()
        read = read_stream(url, limit=2)
        assert len(read.events) == 2
        [call] = gw.n8n.wait_for(1)
        assert call["json"]["status"] == "complete"
        assert len(call["json"]["answer"]) > 500


@pytest.mark.parametrize(
    ("fields", "status", "param"),
    [
        ({"n8nToken": None}, 401, None),
        ({"n8nToken": "garbage"}, 401, None),
        ({"n8nToken": jwt.encode({"exp": 1}, SECRET, algorithm="HS256")}, 401, None),
        ({"n8nToken": jwt.encode({"exp": 9999999999}, "x" * 64, algorithm="HS256")}, 401, None),
        ({"resumeUrl": "http://evil.example.com/webhook-waiting/1"}, 400, "resumeUrl"),
        ({"resumeUrl": "SAME/webhook/1"}, 400, "resumeUrl"),
        ({"prompt": ""}, 400, "prompt"),
        ({"prompt": None}, 400, "prompt"),
        ({"max_tokens": 0}, 400, "max_tokens"),
        ({"userId": "u" * 300}, 400, "userId"),
        ({"model": "no-such-provider-model"}, 404, "model"),
    ],
)
def test_bad_inits_store_nothing(fields: dict[str, Any], status: int, param: str | None) -> None:
    with gateway() as gw:
        if fields.get("resumeUrl", "").startswith("SAME"):
            fields["resumeUrl"] = fields["resumeUrl"].replace("SAME", gw.n8n.url)
        response = gw.init(**fields)
        assert response.status_code == status, response.text
        assert response.headers["content-type"] == "application/json"
        assert response.json()["error"]["param"] == param
        assert gw.stored() == 0


def test_a_missing_token_field_is_401_before_any_validation() -> None:
    with gateway() as gw:
        response = httpx.post(gw.url + "/init-stream", json={"prompt": 5})
        assert response.status_code == 401
        assert httpx.post(gw.url + "/init-stream", content=b"{nope").status_code == 400


def test_a_token_bound_to_another_resume_url_is_400() -> None:
    with gateway() as gw:
        token = gw.token(resumeUrl=gw.n8n.resume_url(execution=1))
        response = gw.init(n8nToken=token, resumeUrl=gw.n8n.resume_url(execution=2))
        assert response.status_code == 400
        assert gw.stored() == 0
        ok = gw.init(n8nToken=token, resumeUrl=gw.n8n.resume_url(execution=1))
        assert ok.status_code == 200


def test_without_a_jwt_key_init_is_503() -> None:
    with gateway(jwt_secret=None) as gw:
        response = gw.init()
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "sessions_not_configured"


def test_a_session_nobody_attaches_to_is_cancelled_at_its_ttl() -> None:
    with gateway(stream_session_ttl=1) as gw:
        url = gw.stream_url()
        [call] = gw.n8n.wait_for(1)
        payload = call["json"]
        assert payload["status"] == "expired"
        assert payload["answer"] == "" and payload["output_tokens"] == 0
        assert read_stream(url).status == 204  # ended: the browser stops


def test_only_the_sessions_nobody_attached_to_expire() -> None:
    with gateway(stream_session_ttl=1) as gw:
        watched, left, also_watched = gw.stream_url(), gw.stream_url(), gw.stream_url()
        assert read_stream(watched).status == 200
        assert read_stream(also_watched).status == 200
        calls = gw.n8n.wait_for(3)
        outcomes = {call["json"]["streamId"]: call["json"]["status"] for call in calls}
        stream_id = {url: url.split("/stream/")[1].split("?")[0] for url in (watched, left)}
        assert outcomes[stream_id[left]] == "expired"
        assert outcomes[stream_id[watched]] == "complete"
        assert sorted(outcomes.values()) == ["complete", "complete", "expired"]
        assert gw.state.sessions._expiry == {}


def test_a_failed_generation_still_calls_back_with_its_status() -> None:
    upstream = FakeUpstream(Reply(status=500, pieces=[b'{"error": {"message": "boom"}}']))
    with gateway(upstream, n8n_callback_retry_seconds=2) as gw:
        url = gw.stream_url(model="gpt-4o-mini")
        read = read_stream(url)
        assert [e.event for e in read.events] == ["status", "message"]
        assert read.events[-1].data == "[DONE]"
        [call] = gw.n8n.wait_for(1)
        assert call["json"]["status"] == "error"
        assert call["json"]["error"]


def test_without_provider_usage_tokens_are_estimated_and_marked() -> None:
    upstream = FakeUpstream(text_reply(lambda p: openai_stream(p, usage=False), ["Hi", " there."]))
    with gateway(upstream) as gw:
        url = gw.stream_url(model="gpt-4o-mini", prompt="x" * 40)
        assert text_of(read_stream(url).events) == "Hi there."
        [call] = gw.n8n.wait_for(1)
        payload = call["json"]
        assert payload["tokens_estimated"] is True
        assert payload["input_tokens"] == 10 and payload["output_tokens"] == 3
        assert (
            upstream.bodies[0]["max_tokens"] == 4096
            or upstream.bodies[0].get("max_completion_tokens") == 4096
        )


def test_provider_usage_is_passed_on() -> None:
    upstream = FakeUpstream(text_reply(openai_stream, ["One", " two", " three."]))
    with gateway(upstream) as gw:
        url = gw.stream_url(model="gpt-4o-mini", max_tokens=50)
        read_stream(url)
        [call] = gw.n8n.wait_for(1)
        assert call["json"]["input_tokens"] == 11 and call["json"]["output_tokens"] == 3
        assert call["json"]["tokens_estimated"] is False


def test_an_idle_stream_gets_keep_alive_comments() -> None:
    upstream = FakeUpstream(Reply(pieces=[openai_stream(["late"])], first_delay=1.0))
    with gateway(upstream, stream_keepalive_seconds=0.2) as gw:
        read = read_stream(gw.stream_url(model="gpt-4o-mini"))
        assert " keep-alive" in read.comments
        assert text_of(read.events) == "late"


def test_ads_show_in_the_stream_but_not_in_the_answer() -> None:
    with gateway(ad_injection_rate=1.0, ad_seed=1, ad_placement="end") as gw:
        read = read_stream(gw.stream_url())
        [call] = gw.n8n.wait_for(1)
        payload = call["json"]
        assert payload["ads"], payload
        ad = payload["ads"][0]
        shown = text_of(read.events)
        assert len(shown) > len(payload["answer"])
        assert shown.startswith(payload["answer"][: ad["position"]])


def test_cors_follows_allowed_origins() -> None:
    with gateway(allowed_origins="https://app.example.com") as gw:
        url = gw.stream_url()
        response = httpx.get(url, headers={"origin": "https://app.example.com"})
        assert response.headers["access-control-allow-origin"] == "https://app.example.com"
        other = httpx.get(url, headers={"origin": "https://evil.example.com"})
        assert "access-control-allow-origin" not in other.headers


def test_access_tokens_are_redacted_from_access_logs() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/stream/abc?access_token=SECRET123&x=1", "1.1", 200),
        None,
    )
    assert RedactArgs().filter(record)
    assert "SECRET123" not in record.getMessage()
    assert "access_token=[redacted]&x=1" in record.getMessage()


def test_a_gateway_shutting_down_mid_answer_still_calls_back() -> None:
    with fake_n8n() as n8n:
        settings = make_settings(
            jwt_secret=SECRET,
            n8n_allowed_origins=n8n.url,
            n8n_private_hosts="127.0.0.1",
            mock_delay_ms=40,
        )
        with serve(create_app(settings, build_state(settings))) as server:
            token = jwt.encode({"exp": int(time.time()) + 60}, SECRET, algorithm="HS256")
            body = {"n8nToken": token, "resumeUrl": n8n.resume_url(), "prompt": "long one"}
            url = httpx.post(server.url + "/init-stream", json=body).json()["streamUrl"]
            part = read_stream(url, limit=3)
            assert len(part.events) == 3
        [call] = n8n.wait_for(1)  # the server is gone; its callback went out on the way down
        payload = call["json"]
        assert payload["status"] == "cancelled"
        assert payload["answer"].startswith(text_of(part.events))
        assert payload["tokens_estimated"] is True  # the mock's usage comes at the end


def test_several_workers_without_redis_get_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    from echo_stream.sessions.service import SessionService

    with caplog.at_level(logging.WARNING, logger="echo_stream.sessions.service"):
        SessionService.from_settings(make_settings(jwt_secret=SECRET, workers=2))
    assert "REDIS_URL" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="echo_stream.sessions.service"):
        SessionService.from_settings(make_settings(jwt_secret=SECRET, workers=1))
    assert caplog.text == ""
