"""The offline voice speaks real audio: WAV that decodes, at eSpeak's rate, longer for more text."""

from __future__ import annotations

import asyncio
import io
import wave

import pytest

from echo_stream.speech.base import TTSRejected
from echo_stream.speech.offline import OfflineTTS


def decode(data: bytes) -> tuple[int, float, bytes]:
    with wave.open(io.BytesIO(data), "rb") as reader:
        assert reader.getnchannels() == 1 and reader.getsampwidth() == 2
        frames = reader.readframes(reader.getnframes())
        return reader.getframerate(), reader.getnframes() / reader.getframerate(), frames


async def test_speaks_wav_whose_duration_grows_with_the_text() -> None:
    tts = OfflineTTS()
    short = await tts.synthesize("Hello there.", "en-us")
    long = await tts.synthesize(
        "Hello there. This sentence is quite a lot longer, so it takes longer to say.", "en-us"
    )
    assert short.content_type == long.content_type == "audio/wav"
    rate, short_seconds, frames = decode(short.data)
    assert rate == 22050
    assert 0.3 < short_seconds < 3
    assert any(frames[i : i + 2] != b"\x00\x00" for i in range(0, len(frames), 2))  # not silence
    assert decode(long.data)[1] > 2 * short_seconds


async def test_other_voices_and_an_unknown_voice() -> None:
    tts = OfflineTTS()
    voices = {voice.id for voice in await tts.voices()}
    assert {"en-us", "de"} <= voices and tts.default_voice in voices
    german = await tts.synthesize("Guten Tag, wie geht es Ihnen?", "de")
    assert decode(german.data)[1] > 0.5
    for bad in ("no-such-voice", "../../../etc/passwd", "en us", "x" * 100):
        with pytest.raises(TTSRejected):
            await tts.synthesize("Hello.", bad)


async def test_concurrent_requests_take_turns_safely() -> None:
    tts = OfflineTTS()
    texts = [("Segment number one is here. " * (n + 1)).strip() for n in range(4)]
    together = await asyncio.gather(*(tts.synthesize(t, "en-us") for t in texts))
    for text, audio in zip(texts, together, strict=True):
        alone = decode((await tts.synthesize(text, "en-us")).data)[1]
        # eSpeak varies by a few samples between runs; no audio of another request is mixed in.
        assert abs(decode(audio.data)[1] - alone) < 0.05 * alone


async def test_stream_synthesize_yields_the_segment() -> None:
    pieces = [p async for p in OfflineTTS().stream_synthesize("One two three.", "en-us")]
    assert len(pieces) == 1 and decode(pieces[0].data)[1] > 0.3
