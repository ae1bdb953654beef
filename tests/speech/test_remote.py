"""ElevenLabs and Inworld adapters against a loopback fake of their wire formats: requests,
audio, streaming, and every failure (401, 429, 5xx, slow, cut off) as a `TTSError`."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from urllib.parse import unquote, urlsplit

import pytest

from echo_stream.speech.base import (
    TTSError,
    TTSRateLimited,
    TTSRejected,
    TTSTimeout,
    TTSUnavailable,
)
from echo_stream.speech.elevenlabs import ElevenLabsTTS, content_type
from echo_stream.speech.inworld import InworldTTS
from echo_stream.speech.remote import RemoteOptions, make_http_client
from tests.live import serve
from tests.speech.fake_tts import KEY, FakeTTS, audio_for

Provider = ElevenLabsTTS | InworldTTS


@pytest.fixture
def fake() -> Iterator[tuple[FakeTTS, str]]:
    tts = FakeTTS()
    with serve(tts.app) as live:
        yield tts, live.url


def make(kind: str, url: str, key: str = KEY, read_timeout: float = 5.0) -> Provider:
    client = make_http_client(RemoteOptions(connect_timeout=2, read_timeout=read_timeout))
    if kind == "elevenlabs":
        return ElevenLabsTTS(
            key, client, base_url=url, voice_settings={"stability": 0.4, "similarity_boost": 0.8}
        )
    return InworldTTS(key, client, base_url=url)


KINDS = ["elevenlabs", "inworld"]


async def test_elevenlabs_request_shape(fake: tuple[FakeTTS, str]) -> None:
    tts, url = fake
    provider = make("elevenlabs", url)
    audio = await provider.synthesize("Hello there.", "my voice", previous_text="Before.")
    assert audio.data == audio_for("Hello there.") and audio.content_type == "audio/mpeg"
    sent = tts.requests[-1]
    assert sent["path"] in ("/v1/text-to-speech/my%20voice", "/v1/text-to-speech/my voice")
    assert sent["query"] == {"output_format": "mp3_44100_128"}
    assert sent["headers"]["xi-api-key"] == KEY
    assert sent["body"] == {
        "text": "Hello there.",
        "model_id": "eleven_flash_v2_5",
        "voice_settings": {"stability": 0.4, "similarity_boost": 0.8},
        "previous_text": "Before.",
    }
    pieces = [a async for a in provider.stream_synthesize("Streamed words here.", "v")]
    assert len(pieces) > 1 and b"".join(p.data for p in pieces) == audio_for("Streamed words here.")
    assert tts.requests[-1]["path"] == "/v1/text-to-speech/v/stream"
    await provider.aclose()


async def test_inworld_request_shape(fake: tuple[FakeTTS, str]) -> None:
    tts, url = fake
    provider = make("inworld", url)
    audio = await provider.synthesize("Hello there.", "Dennis")
    assert audio.data == audio_for("Hello there.") and audio.content_type == "audio/mpeg"
    sent = tts.requests[-1]
    assert sent["path"] == "/tts/v1/voice"
    assert sent["headers"]["authorization"] == f"Basic {KEY}"
    assert sent["body"] == {
        "text": "Hello there.",
        "voiceId": "Dennis",
        "modelId": "inworld-tts-1.5-mini",
        "audioConfig": {"audioEncoding": "MP3", "sampleRateHertz": 24000},
    }
    pieces = [a async for a in provider.stream_synthesize("Streamed words here.", "")]
    assert len(pieces) == 2 and b"".join(p.data for p in pieces) == audio_for(
        "Streamed words here."
    )
    assert tts.requests[-1]["path"] == "/tts/v1/voice:stream"
    assert tts.requests[-1]["body"]["voiceId"] == "Ashley"  # the default voice
    await provider.aclose()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("mode", "error", "status"),
    [("401", TTSRejected, 401), ("429", TTSRateLimited, 429), ("500", TTSUnavailable, 500)],
)
@pytest.mark.parametrize("streamed", [False, True])
async def test_error_statuses(
    fake: tuple[FakeTTS, str],
    kind: str,
    mode: str,
    error: type[TTSError],
    status: int,
    streamed: bool,
) -> None:
    tts, url = fake
    tts.mode = mode
    provider = make(kind, url)
    with pytest.raises(error) as raised:
        if streamed:
            _ = [a async for a in provider.stream_synthesize("Hi.", "v")]
        else:
            await provider.synthesize("Hi.", "v")
    assert raised.value.status == status
    assert {"401": "Invalid API key", "429": "Too many", "500": "Internal"}[mode] in str(
        raised.value
    )
    await provider.aclose()


@pytest.mark.parametrize("kind", KINDS)
async def test_a_wrong_key_is_rejected_and_never_logged(
    fake: tuple[FakeTTS, str], kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    _, url = fake
    caplog.set_level(logging.DEBUG)
    provider = make(kind, url, key="wrong-secret-key-456")
    with pytest.raises(TTSRejected) as raised:
        await provider.synthesize("Hi.", "v")
    assert "wrong-secret-key-456" not in str(raised.value)
    assert "wrong-secret-key-456" not in caplog.text
    await provider.aclose()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("streamed", [False, True])
async def test_slow_answers_time_out(fake: tuple[FakeTTS, str], kind: str, streamed: bool) -> None:
    tts, url = fake
    tts.mode, tts.delay = "slow", 5.0
    provider = make(kind, url, read_timeout=0.3)
    with pytest.raises(TTSTimeout):
        if streamed:
            _ = [a async for a in provider.stream_synthesize("Hi there.", "v")]
        else:
            await provider.synthesize("Hi there.", "v")
    await provider.aclose()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("streamed", [False, True])
async def test_cut_off_answers_fail(fake: tuple[FakeTTS, str], kind: str, streamed: bool) -> None:
    tts, url = fake
    tts.mode = "cutoff"
    provider = make(kind, url)
    with pytest.raises(TTSUnavailable):
        if streamed:
            _ = [a async for a in provider.stream_synthesize("A longer text to cut off.", "v")]
        else:
            await provider.synthesize("A longer text to cut off.", "v")
    await provider.aclose()


@pytest.mark.parametrize("kind", KINDS)
async def test_unreachable_provider(kind: str) -> None:
    provider = make(kind, "http://127.0.0.1:9")  # the discard port: nothing listens
    with pytest.raises(TTSUnavailable):
        await provider.synthesize("Hi.", "v")
    await provider.aclose()


async def test_voices_from_the_account_or_built_in(fake: tuple[FakeTTS, str]) -> None:
    _, url = fake
    eleven, inworld = make("elevenlabs", url), make("inworld", url)
    assert [v.name for v in await eleven.voices()] == ["Vera"]
    assert [v.id for v in await inworld.voices()] == ["Ashley"]
    offline_list = make("elevenlabs", url, key="bad")
    assert len(await offline_list.voices()) >= 2  # premade voices when the list cannot be had
    for provider in (eleven, inworld, offline_list):
        await provider.aclose()


async def test_without_a_key_nothing_is_sent(fake: tuple[FakeTTS, str]) -> None:
    tts, url = fake
    for kind in KINDS:
        provider = make(kind, url, key="")
        assert not provider.available
        with pytest.raises(TTSError, match="not configured"):
            await provider.synthesize("Hi.", "v")
        await provider.aclose()
    assert tts.requests == []


def test_content_types() -> None:
    assert content_type("mp3_22050_32") == "audio/mpeg"
    assert content_type("pcm_16000") == "audio/L16;rate=16000"


@pytest.mark.parametrize("voice", ["..", ".", "../../v1/user", "a/b", "x?y#z", "é voice"])
@pytest.mark.parametrize("stream", [False, True])
def test_an_elevenlabs_voice_id_never_changes_the_path(voice: str, stream: bool) -> None:
    provider = make("elevenlabs", "https://api.elevenlabs.io")
    url = urlsplit(provider._request("Hi.", voice, "", stream)["url"])
    parts = url.path.split("/")
    assert parts[:3] == ["", "v1", "text-to-speech"]
    assert len(parts) == (5 if stream else 4) and parts[-1] == ("stream" if stream else parts[3])
    assert (parts[3] not in ("", ".", "..") and "/" not in unquote(parts[3])) or "%2F" in parts[3]
    assert unquote(parts[3]).replace("%2E", ".") in (voice, voice.replace(".", "%2E"))
    assert (url.query, url.fragment) == ("", "")
