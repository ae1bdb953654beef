"""The voice face at the stage level: ordering when later segments finish first, the bounds,
a model error mid-answer, and closing the stream cancelling every synthesis at once."""

from __future__ import annotations

import asyncio
from base64 import b64decode
from collections.abc import AsyncIterator

import orjson
import pytest

from echo_stream.errors import UpstreamUnavailable
from echo_stream.events import FLUSH, AdBlock, EventStream, Finish, ReasoningDelta, TextDelta
from echo_stream.faces.voice import VoiceError, VoiceOptions, encode_voice
from echo_stream.speech.base import Audio, TTSRateLimited, Voice

SENTENCES = [f"Sentence number {n} is long enough to be its own segment here." for n in range(6)]


class ScriptedTTS:
    """In-process TTS: the first segments take longest, so later ones finish first."""

    id = "scripted"
    name = "Scripted"
    default_voice = "v"
    available = True

    def __init__(self, fail: set[str] | None = None, forever: bool = False) -> None:
        self.started: list[str] = []
        self.active = 0
        self.max_active = 0
        self.cancelled = 0
        self.fail = fail or set()
        self.forever = forever

    async def synthesize(self, text: str, voice: str, *, previous_text: str = "") -> Audio:
        self.started.append(text)
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            await asyncio.sleep(3600 if self.forever else 0.05 * (8 - len(self.started)))
            if text in self.fail:
                raise TTSRateLimited("scripted 429", status=429)
            return Audio(text.encode(), "audio/test")
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.active -= 1

    async def stream_synthesize(
        self, text: str, voice: str, *, previous_text: str = ""
    ) -> AsyncIterator[Audio]:
        audio = await self.synthesize(text, voice)
        for i in range(0, len(audio.data), 10):
            yield Audio(audio.data[i : i + 10], audio.content_type)

    async def voices(self) -> list[Voice]:
        return []

    async def aclose(self) -> None:
        return None


async def answer(pieces: list[str], fail_at: int | None = None) -> EventStream:
    for number, piece in enumerate(pieces):
        if number == fail_at:
            raise UpstreamUnavailable("upstream broke")
        yield TextDelta(piece)
        yield FLUSH
        await asyncio.sleep(0)  # a real model's pieces arrive over time
    yield Finish("stop")


def options(tts: ScriptedTTS, **overrides: object) -> VoiceOptions:
    values: dict[str, object] = {"tts": tts, "voice": "v", "limiter": asyncio.Semaphore(32)}
    values.update(overrides)
    return VoiceOptions(segment_chars=40, first_segment_chars=40, **values)  # type: ignore[arg-type]


async def collect(stream: AsyncIterator[bytes]) -> list[dict[str, object]]:
    body = b"".join([chunk async for chunk in stream])
    return [orjson.loads(block[6:]) for block in body.split(b"\n\n") if block]


@pytest.mark.parametrize("stream_tts", [False, True])
async def test_audio_goes_out_in_play_sequence_order(stream_tts: bool) -> None:
    tts = ScriptedTTS()
    pieces = [w + " " for w in " ".join(SENTENCES).split()]
    events = await collect(encode_voice(answer(pieces), options(tts, stream_tts=stream_tts)))
    audio = [e for e in events if e["type"] == "audio"]
    assert [e["playSequence"] for e in audio] == sorted(e["playSequence"] for e in audio)
    closing = [e["playSequence"] for e in events if e["type"] == "audio_complete"]
    assert closing == list(range(len(SENTENCES)))
    for n, sentence in enumerate(SENTENCES):
        data = b"".join(b64decode(str(e["audio"])) for e in audio if e["playSequence"] == n)
        assert data == sentence.encode()
    assert all(bool(e.get("streaming")) is stream_tts for e in audio)
    assert tts.max_active == 3  # the per-request default
    kinds = [e["type"] for e in events]
    assert kinds.index("tts_total") > max(i for i, k in enumerate(kinds) if k == "text")
    assert kinds[-1] == "done"


async def test_process_limiter_bounds_concurrency() -> None:
    tts = ScriptedTTS()
    pieces = [w + " " for w in " ".join(SENTENCES).split()]
    await collect(encode_voice(answer(pieces), options(tts, limiter=asyncio.Semaphore(1))))
    assert tts.max_active == 1


async def test_a_failed_segment_is_reported_in_its_place() -> None:
    tts = ScriptedTTS(fail={SENTENCES[1]})
    events = await collect(encode_voice(answer([" ".join(SENTENCES)]), options(tts)))
    closing = [
        (e["type"], e["playSequence"])
        for e in events
        if "playSequence" in e and e["type"] != "audio"
    ]
    assert closing[:3] == [("audio_complete", 0), ("tts_error", 1), ("audio_complete", 2)]
    assert "429" in next(str(e["error"]) for e in events if e["type"] == "tts_error")
    done = events[-1]
    assert done["type"] == "done" and done["ttsMetrics"]["failed"] == 1  # type: ignore[index]


async def test_ads_are_text_but_never_spoken() -> None:
    tts = ScriptedTTS()

    async def with_ad() -> EventStream:
        yield TextDelta(SENTENCES[0] + " ")
        yield AdBlock("[Sponsored: Buy Widgets today at widgets.example] ", ad_id="ad1")
        yield TextDelta(SENTENCES[1])
        yield Finish("stop")

    events = await collect(encode_voice(with_ad(), options(tts)))
    assert "Widgets" in str(events[-1]["fullText"])
    assert tts.started and not any("Widgets" in text for text in tts.started)


async def test_model_error_before_any_text_raises_after_it_is_an_event() -> None:
    with pytest.raises(VoiceError) as raised:
        await collect(encode_voice(answer(["never"], fail_at=0), options(ScriptedTTS())))
    assert raised.value.status == 502 and raised.value.body() == {"error": "upstream broke"}
    tts = ScriptedTTS(forever=True)
    pieces = [w + " " for w in " ".join(SENTENCES).split()]
    events = await collect(encode_voice(answer(pieces, fail_at=30), options(tts)))
    assert events[-1] == {"type": "error", "error": "upstream broke"}
    assert tts.active == 0 and tts.cancelled >= 1  # pending speech is dropped with the answer


async def test_closing_the_stream_cancels_every_synthesis_and_the_model() -> None:
    tts = ScriptedTTS(forever=True)
    model_closed = asyncio.Event()

    async def endless() -> EventStream:
        try:
            for sentence in SENTENCES * 100:
                yield TextDelta(sentence + " ")
                await asyncio.sleep(0.001)
        finally:
            model_closed.set()

    stream = encode_voice(endless(), options(tts))
    async for _ in stream:
        if tts.active == 3:
            break
    await stream.aclose()
    assert model_closed.is_set()
    assert tts.active == 0 and tts.cancelled == 3


async def test_reasoning_is_neither_shown_nor_spoken() -> None:
    tts = ScriptedTTS()

    async def with_reasoning() -> EventStream:
        yield ReasoningDelta("Secret plan: mention Widgets first. ")
        yield FLUSH
        yield TextDelta(SENTENCES[0])
        yield Finish("stop")

    events = await collect(encode_voice(with_reasoning(), options(tts)))
    assert not any("Widgets" in str(event) for event in events)
    assert tts.started == [SENTENCES[0]]
    assert events[-1]["fullText"] == SENTENCES[0]
