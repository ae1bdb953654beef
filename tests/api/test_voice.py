"""`POST /api/stream` end to end: text and ordered speech, validation, provider mapping through
the one router, TTS failures that never stop the text, bounded concurrency, and disconnects."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import socket
import time
import wave
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from echo_stream.providers.mock import _ANSWER
from tests.conftest import make_app
from tests.live import serve
from tests.speech.fake_tts import KEY, FakeTTS, audio_for
from tests.upstreams import (
    FakeUpstream,
    Reply,
    SocketUpstream,
    anthropic_stream,
    gemini_stream,
    openai_stream,
    text_reply,
)

MOCK_ANSWER = _ANSWER.format(topic="Tell me about voices")
TTS_ENV = ("ELEVENLABS_API_KEY", "INWORLD_API_KEY", "TTS_DEFAULT_PROVIDER", "ALLOWED_ORIGINS")


@pytest.fixture(autouse=True)
def _no_tts_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in TTS_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fake_tts() -> Iterator[tuple[FakeTTS, str]]:
    tts = FakeTTS()
    with serve(tts.app) as live:
        yield tts, live.url


def events_of(body: bytes) -> list[dict[str, Any]]:
    out = []
    for block in body.decode().split("\n\n"):
        if block.strip():
            assert block.startswith("data: "), block
            out.append(json.loads(block[len("data: ") :]))
    return out


async def post(app: Any, payload: dict[str, Any], **headers: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        return await client.post("/api/stream", json=payload, headers=headers, timeout=60)


def check_order(events: list[dict[str, Any]]) -> int:
    """Audio in playSequence order, each segment closed once; returns the segment count."""
    total = next(e for e in events if e["type"] == "tts_total")["totalSequences"]
    closing = [e for e in events if e["type"] in ("audio_complete", "tts_error")]
    assert [e["playSequence"] for e in closing] == list(range(total))
    audio = [e["playSequence"] for e in events if e["type"] == "audio"]
    assert audio == sorted(audio)
    assert events[-1]["type"] == "done"
    return int(total)


async def test_mock_answer_spoken_by_the_offline_voice() -> None:
    app = make_app()
    response = await post(app, {"prompt": "Tell me about voices", "llmProvider": "mock"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = events_of(response.content)
    text = "".join(e["content"] for e in events if e["type"] == "text")
    assert text == MOCK_ANSWER
    total = check_order(events)
    assert total >= 4
    audio = [e for e in events if e["type"] == "audio"]
    assert len(audio) == total and all(e["contentType"] == "audio/wav" for e in audio)
    durations = []
    for event in audio:
        with wave.open(io.BytesIO(base64.b64decode(event["audio"]))) as reader:
            assert reader.getframerate() == 22050
            durations.append(reader.getnframes() / 22050)
        assert event["metrics"]["textLength"] == len(event["text"])
    assert all(d > 0.5 for d in durations)
    assert "print(" not in " ".join(e["text"] for e in audio)  # the code block is not read
    done = events[-1]
    assert done["fullText"] == MOCK_ANSWER
    assert done["llmMetrics"]["timeToFirstTokenMs"] <= done["llmMetrics"]["totalLatencyMs"]
    assert done["ttsMetrics"]["segments"] == total and done["ttsMetrics"]["failed"] == 0
    assert done["totalTime"] >= done["llmMetrics"]["totalLatencyMs"]


async def test_text_only_when_tts_is_off() -> None:
    response = await post(make_app(), {"prompt": "Hi", "llmProvider": "mock", "enableTTS": False})
    events = events_of(response.content)
    assert {e["type"] for e in events} == {"text", "done"}
    assert events[-1]["ttsMetrics"] is None


async def test_ads_are_shown_but_not_spoken() -> None:
    app = make_app(ad_injection_rate=1.0, ad_seed=1, min_response_length=0)
    response = await post(app, {"prompt": "Tell me about voices", "llmProvider": "mock"})
    events = events_of(response.content)
    text = "".join(e["content"] for e in events if e["type"] == "text")
    assert text != MOCK_ANSWER and len(text) > len(MOCK_ANSWER)  # the ad block is in the text
    ad = text.replace(MOCK_ANSWER, "") if MOCK_ANSWER in text else None
    spoken = " ".join(e["text"] for e in events if e["type"] == "audio")
    words = {w for w in (ad or text).split() if len(w) > 6} - set(MOCK_ANSWER.split())
    assert words and not any(w in spoken for w in words)


@pytest.mark.parametrize(
    ("payload", "status", "message"),
    [
        ({}, 400, "Prompt is required"),
        ({"prompt": "   "}, 400, "Prompt is required"),
        ({"prompt": "hi", "llmProvider": "nope"}, 400, "Unknown llmProvider 'nope'"),
        ({"prompt": "hi", "llmProvider": "mock", "ttsProvider": "nope"}, 400, "offline"),
        (
            {"prompt": "hi", "llmProvider": "mock", "ttsProvider": "elevenlabs"},
            400,
            "not configured",
        ),
        ({"prompt": "hi", "options": {"temperature": 9}}, 400, "temperature"),
    ],
)
async def test_bad_requests(payload: dict[str, Any], status: int, message: str) -> None:
    response = await post(make_app(), payload)
    assert response.status_code == status
    error = response.json()["error"]
    assert isinstance(error, str) and message in error


async def test_an_unconfigured_llm_provider_is_a_404() -> None:
    response = await post(make_app(google_api_key=None), {"prompt": "hi", "llmProvider": "gemini"})
    assert response.status_code == 404 and "GOOGLE_API_KEY" in response.json()["error"]


async def test_default_llm_provider_is_openai_when_configured_else_the_mock() -> None:
    upstream = FakeUpstream(text_reply(openai_stream, ["From OpenAI."]))
    events = events_of(
        (await post(make_app(upstream), {"prompt": "hi", "enableTTS": False})).content
    )
    assert events[-1]["fullText"] == "From OpenAI." and upstream.requests
    keyless = make_app(openai_api_key=None)
    events = events_of((await post(keyless, {"prompt": "hi", "enableTTS": False})).content)
    assert events[-1]["fullText"].startswith("Thanks for asking")
    chosen = make_app(upstream, voice_default_llm_provider="mock")
    events = events_of((await post(chosen, {"prompt": "hi", "enableTTS": False})).content)
    assert events[-1]["fullText"].startswith("Thanks for asking")


async def test_unknown_llm_provider_names_the_known_ones() -> None:
    response = await post(make_app(), {"prompt": "hi", "llmProvider": "x"})
    assert all(name in response.json()["error"] for name in ("openai", "gemini", "claude", "mock"))


async def test_not_json_and_missing_key() -> None:
    transport = httpx.ASGITransport(app=make_app(echo_api_keys="k1"))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        bad = await client.post(
            "/api/stream", content=b"{nope", headers={"authorization": "Bearer k1"}
        )
        assert bad.status_code == 400 and "not valid JSON" in bad.json()["error"]
        denied = await client.post("/api/stream", json={"prompt": "hi"})
        assert denied.status_code == 401 and isinstance(denied.json()["error"], str)
        listing = await client.get("/api/tts/providers")
        assert listing.status_code == 401


@pytest.mark.parametrize(
    ("provider", "model", "reply", "path", "sent_model"),
    [
        ("openai", "gpt-4o", openai_stream, "/v1/chat/completions", "gpt-4o"),
        ("openai", None, openai_stream, "/v1/chat/completions", "gpt-4o-mini"),
        (
            "gemini",
            "gemini-2.5-flash",
            gemini_stream,
            "gemini-2.5-flash:streamGenerateContent",
            None,
        ),
        ("claude", "claude-sonnet-4-5", anthropic_stream, "/v1/messages", "claude-sonnet-4-5"),
        ("anthropic", "claude-sonnet-4-5", anthropic_stream, "/v1/messages", "claude-sonnet-4-5"),
    ],
)
async def test_llm_provider_and_model_go_through_the_router(
    provider: str, model: str | None, reply: Any, path: str, sent_model: str | None
) -> None:
    upstream = FakeUpstream(text_reply(reply, ["Hello from ", "the model. ", "Bye now."]))
    payload: dict[str, Any] = {"prompt": "hi", "llmProvider": provider, "enableTTS": False}
    payload["options"] = {"maxTokens": 50, "temperature": 0.5}
    if model:
        payload["llmModel"] = model
    response = await post(make_app(upstream), payload)
    events = events_of(response.content)
    assert events[-1]["fullText"] == "Hello from the model. Bye now."
    request = upstream.requests[0]
    assert path in request.url.path
    body = json.loads(request.content)
    if sent_model:
        assert body["model"] == sent_model
    assert '"hi"' in request.content.decode()  # the prompt, in the provider's own shape
    assert "50" in request.content.decode()  # options.maxTokens


async def test_messages_are_earlier_turns() -> None:
    upstream = FakeUpstream(text_reply(openai_stream, ["Sure."]))
    payload = {
        "prompt": "And then?",
        "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
        "llmProvider": "openai",
        "enableTTS": False,
    }
    await post(make_app(upstream), payload)
    sent = json.loads(upstream.requests[0].content)["messages"]
    assert [m["content"] for m in sent] == ["Hi", "Hello", "And then?"]


async def test_model_error_before_any_text_is_an_http_error() -> None:
    upstream = FakeUpstream(Reply(status=429, pieces=[b'{"error": {"message": "slow down"}}']))
    response = await post(make_app(upstream), {"prompt": "hi", "llmProvider": "openai"})
    assert response.status_code == 429
    assert isinstance(response.json()["error"], str)


async def test_model_error_mid_answer_is_an_error_event() -> None:
    data = openai_stream([f" word{i}." for i in range(60)])
    pieces = [event + b"\n\n" for event in data.split(b"\n\n") if event]
    upstream = FakeUpstream(Reply(pieces=pieces, fail_after=40))
    response = await post(make_app(upstream), {"prompt": "hi", "llmProvider": "openai"})
    events = events_of(response.content)
    assert events[0]["type"] == "text"
    assert events[-1]["type"] == "error" and isinstance(events[-1]["error"], str)
    assert not any(e["type"] == "done" for e in events)


async def test_tts_failures_never_stop_the_text(fake_tts: tuple[FakeTTS, str]) -> None:
    tts, url = fake_tts
    tts.mode = "500"
    app = make_app(elevenlabs_api_key=KEY, elevenlabs_base_url=url)
    response = await post(app, {"prompt": "Tell me about voices", "llmProvider": "mock"})
    events = events_of(response.content)
    assert events[-1]["fullText"] == MOCK_ANSWER
    total = check_order(events)
    errors = [e for e in events if e["type"] == "tts_error"]
    assert len(errors) == total and "500" in errors[0]["error"]
    assert KEY not in response.text
    assert events[-1]["ttsMetrics"]["failed"] == total


async def test_elevenlabs_is_the_default_with_a_key_and_streams_pieces(
    fake_tts: tuple[FakeTTS, str],
) -> None:
    tts, url = fake_tts
    app = make_app(elevenlabs_api_key=KEY, elevenlabs_base_url=url)
    payload = {"prompt": "Tell me about voices", "llmProvider": "mock", "streamTTS": True}
    events = events_of((await post(app, payload)).content)
    total = check_order(events)
    audio = [e for e in events if e["type"] == "audio"]
    assert len(audio) > total and all(e["streaming"] for e in audio)
    for sequence in range(total):
        pieces = [e for e in audio if e["playSequence"] == sequence]
        joined = b"".join(base64.b64decode(e["audio"]) for e in pieces)
        assert joined == audio_for(pieces[0]["text"])
    sent = [r for r in tts.requests if r["path"].endswith("/stream")]
    assert len(sent) == total
    # Each segment after the first carries the one before it, for prosody.
    by_text = {r["body"]["text"]: r["body"].get("previous_text") for r in sent}
    texts = [next(e for e in audio if e["playSequence"] == n)["text"] for n in range(total)]
    assert [by_text[t] for t in texts[1:]] == texts[:-1]


async def test_inworld_voice_chosen_by_the_request(fake_tts: tuple[FakeTTS, str]) -> None:
    tts, url = fake_tts
    app = make_app(inworld_api_key=KEY, inworld_base_url=url)
    payload = {"prompt": "Hi", "llmProvider": "mock", "ttsProvider": "inworld", "voiceId": "Dennis"}
    events = events_of((await post(app, payload)).content)
    check_order(events)
    assert {r["body"]["voiceId"] for r in tts.requests} == {"Dennis"}


async def test_concurrency_is_bounded_per_request(fake_tts: tuple[FakeTTS, str]) -> None:
    tts, url = fake_tts
    tts.hold = 0.3
    app = make_app(elevenlabs_api_key=KEY, elevenlabs_base_url=url, tts_concurrency=3)
    events = events_of((await post(app, {"prompt": "x", "llmProvider": "mock"})).content)
    assert check_order(events) >= 5
    assert 2 <= tts.max_active <= 3


async def test_concurrency_is_bounded_across_the_process(fake_tts: tuple[FakeTTS, str]) -> None:
    tts, url = fake_tts
    tts.hold = 0.3
    app = make_app(
        elevenlabs_api_key=KEY,
        elevenlabs_base_url=url,
        tts_concurrency=3,
        tts_process_concurrency=2,
    )
    payload = {"prompt": "x", "llmProvider": "mock"}
    responses = await asyncio.gather(post(app, payload), post(app, payload))
    for response in responses:
        check_order(events_of(response.content))
    assert tts.max_active == 2


async def test_providers_listing(fake_tts: tuple[FakeTTS, str]) -> None:
    transport = httpx.ASGITransport(app=make_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        listing = (await client.get("/api/tts/providers")).json()
    assert listing["default"] == "offline"
    by_id = {p["id"]: p for p in listing["providers"]}
    assert set(by_id) == {"elevenlabs", "inworld", "offline"}
    assert by_id["offline"]["available"] and not by_id["elevenlabs"]["available"]
    assert {"id": "en-us", "name": "English (US)"} in by_id["offline"]["voices"]
    assert set(by_id["inworld"]) == {"id", "name", "available", "voices", "default_voice"}

    _, url = fake_tts
    app = make_app(elevenlabs_api_key=KEY, elevenlabs_base_url=url)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        listing = (await client.get("/api/tts/providers")).json()
    assert listing["default"] == "elevenlabs"
    assert listing["providers"][0]["voices"] == [{"id": "v1", "name": "Vera"}]


async def test_options_and_cors() -> None:
    transport = httpx.ASGITransport(app=make_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        plain = await client.options("/api/stream")
    assert plain.status_code == 204 and "POST" in plain.headers["allow"]
    transport = httpx.ASGITransport(app=make_app(allowed_origins="https://app.example"))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        preflight = await client.options(
            "/api/stream",
            headers={
                "origin": "https://app.example",
                "access-control-request-method": "POST",
                "access-control-request-headers": "content-type",
            },
        )
        stream = await client.post(
            "/api/stream",
            json={"prompt": "hi", "llmProvider": "mock", "enableTTS": False},
            headers={"origin": "https://app.example"},
        )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"
    assert stream.headers["access-control-allow-origin"] == "https://app.example"


def _raw_request(port: int, payload: dict[str, Any]) -> bytes:
    body = json.dumps(payload).encode()
    head = (
        f"POST /api/stream HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _until(condition: Any, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return bool(condition())


def test_disconnect_cancels_the_model_and_every_tts_request(
    fake_tts: tuple[FakeTTS, str],
) -> None:
    tts, url = fake_tts
    tts.mode, tts.delay = "slow", 60.0  # every TTS request hangs until cancelled
    sentences = [f" Sentence number {i} is here and it goes on for a while." for i in range(400)]
    data = openai_stream(sentences)
    pieces = [event + b"\n\n" for event in data.split(b"\n\n") if event]
    upstream = SocketUpstream(Reply(pieces=pieces, delay=0.02))
    app = make_app(upstream, elevenlabs_api_key=KEY, elevenlabs_base_url=url)
    with serve(app) as live:
        baseline = live.task_count()
        sock = socket.create_connection(("127.0.0.1", live.port))
        sock.sendall(_raw_request(live.port, {"prompt": "hi", "llmProvider": "openai"}))
        received = sock.recv(4096)
        assert b"200 OK" in received
        assert _until(lambda: tts.active >= 3), "the TTS requests did not start"
        assert tts.active == 3  # bounded per request while the model goes on
        sock.close()
        assert upstream.closed.wait(3.0), "the model's stream was not cancelled"
        assert _until(lambda: tts.active == 0), "TTS requests were left running"
        assert tts.abandoned == 3
        assert _until(lambda: live.task_count() <= baseline)
