"""The real ElevenLabs and Inworld services, used only when their keys are in the environment."""

from __future__ import annotations

import os

import pytest

from echo_stream.speech.elevenlabs import ElevenLabsTTS
from echo_stream.speech.inworld import InworldTTS
from echo_stream.speech.remote import RemoteOptions, make_http_client

ELEVENLABS_KEY = os.environ.get("ELEVENLABS_API_KEY")
INWORLD_KEY = os.environ.get("INWORLD_API_KEY")


@pytest.mark.skipif(
    not ELEVENLABS_KEY, reason="ELEVENLABS_API_KEY is not set: real service skipped"
)
async def test_real_elevenlabs() -> None:
    tts = ElevenLabsTTS(ELEVENLABS_KEY, make_http_client(RemoteOptions()))
    audio = await tts.synthesize("Hello from Echo Stream.", tts.default_voice)
    assert audio.content_type == "audio/mpeg" and len(audio.data) > 1000
    pieces = [a async for a in tts.stream_synthesize("Streaming works too.", tts.default_voice)]
    assert sum(len(p.data) for p in pieces) > 1000
    await tts.aclose()


@pytest.mark.skipif(not INWORLD_KEY, reason="INWORLD_API_KEY is not set: real service skipped")
async def test_real_inworld() -> None:
    tts = InworldTTS(INWORLD_KEY, make_http_client(RemoteOptions()))
    audio = await tts.synthesize("Hello from Echo Stream.", tts.default_voice)
    assert audio.content_type == "audio/mpeg" and len(audio.data) > 1000
    pieces = [a async for a in tts.stream_synthesize("Streaming works too.", tts.default_voice)]
    assert pieces and sum(len(p.data) for p in pieces) > 1000
    await tts.aclose()
