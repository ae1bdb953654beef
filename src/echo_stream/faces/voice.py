"""The voice stream's wire format: the answer's text and its speech as one SSE stream.

Each event is one `data: <json>` line. The text goes out as it arrives (`text`); meanwhile the
model's own text is cut into segments (`speech.segmenter`) and each segment is synthesised
while the answer goes on, up to `concurrency` at a time for this request and within the
process-wide `limiter`. Audio goes out in `playSequence` order (0, 1, 2...), so a client may
play events as they come: `audio` (one per segment, or several marked `"streaming": true`),
then that segment's `audio_complete` or `tts_error`. A TTS failure never stops the text.
After the text, `tts_total`; after every segment, `done`. A failure of the model after the first
event is an `error` event that ends the stream; before it, the error propagates (the endpoint
answers with its HTTP status and `{"error": message}`).

Sponsored blocks (`AdBlock`) are sent as `text` like the rest of what the client shows, but not
spoken: an ad read aloud in the middle of an answer is not what a listener asked for.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

import orjson

from echo_stream.errors import EchoError
from echo_stream.events import AdBlock, EventStream, RefusalDelta, TextDelta
from echo_stream.speech.base import Audio, TTSError, TTSProvider
from echo_stream.speech.segmenter import Segmenter

log = logging.getLogger(__name__)


class VoiceError(EchoError):
    """An error of the voice face, answered as `{"error": message}` like the original API."""

    def body(self) -> dict[str, Any]:
        """The flat error body of the voice stream."""
        return {"error": self.message}

    @classmethod
    def wrap(cls, error: EchoError) -> VoiceError:
        """The same error (status, headers) in the voice stream's shape."""
        return cls(error.message, status=error.status, headers=error.headers)


@dataclass(frozen=True, slots=True)
class VoiceOptions:
    """How one request is spoken; `tts` None means text only (`enableTTS: false`)."""

    tts: TTSProvider | None
    voice: str
    limiter: asyncio.Semaphore
    stream_tts: bool = False
    concurrency: int = 3
    segment_chars: int = 100
    first_segment_chars: int = 40
    max_segment_chars: int = 250
    started: float = field(default_factory=time.perf_counter)


def sse(event: dict[str, Any]) -> bytes:
    """One voice stream event as SSE bytes."""
    return b"data: " + orjson.dumps(event) + b"\n\n"


def _ms(start: float, end: float | None = None) -> float:
    return round(((end if end is not None else time.perf_counter()) - start) * 1000, 1)


_END = object()  # the answer and its speech are over


class _Failure:
    """The model failed; carried through the queue to the encoder."""

    def __init__(self, error: EchoError) -> None:
        self.error = error


Item = bytes | _Failure | object


class _Speaker:
    """Synthesises segments concurrently and releases their events in `playSequence` order."""

    def __init__(self, options: VoiceOptions, out: asyncio.Queue[Item]) -> None:
        assert options.tts is not None
        self._tts = options.tts
        self._options = options
        self._out = out
        self._slots = asyncio.Semaphore(options.concurrency)
        self.tasks: list[asyncio.Task[None]] = []
        self._previous = ""
        self._head = 0  # the sequence whose events go out now
        self._held: dict[int, list[bytes]] = {}
        self._finished: set[int] = set()
        self.latencies: list[float] = []
        self.first_audio: float | None = None
        self.failed = 0

    @property
    def count(self) -> int:
        return len(self.tasks)

    def start(self, text: str) -> None:
        """Begin speaking the next segment."""
        sequence = len(self.tasks)
        task = asyncio.create_task(self._speak(sequence, text, self._previous))
        self.tasks.append(task)
        self._previous = text

    async def _speak(self, sequence: int, text: str, previous: str) -> None:
        options = self._options
        queued = time.perf_counter()
        try:
            async with self._slots, options.limiter:
                began = time.perf_counter()
                if options.stream_tts:
                    async for audio in self._tts.stream_synthesize(
                        text, options.voice, previous_text=previous
                    ):
                        self._audio(sequence, text, audio, queued, began, streaming=True)
                else:
                    audio = await self._tts.synthesize(text, options.voice, previous_text=previous)
                    self._audio(sequence, text, audio, queued, began, streaming=False)
                self.latencies.append(_ms(began))
            self._emit(sequence, {"type": "audio_complete", "playSequence": sequence}, last=True)
        except TTSError as error:
            self._failed(sequence, error.message)
        except Exception:  # a bug must not end the answer either; the log has the details
            log.exception("TTS of segment %d failed", sequence)
            self._failed(sequence, "Speech synthesis failed")

    def _failed(self, sequence: int, message: str) -> None:
        self.failed += 1
        event = {"type": "tts_error", "playSequence": sequence, "error": message}
        self._emit(sequence, event, last=True)

    def _audio(
        self, sequence: int, text: str, audio: Audio, queued: float, began: float, streaming: bool
    ) -> None:
        if self.first_audio is None:
            self.first_audio = time.perf_counter()
        event: dict[str, Any] = {
            "type": "audio",
            "audio": base64.b64encode(audio.data).decode(),
            "contentType": audio.content_type,
            "playSequence": sequence,
            "text": text,
            "metrics": {
                "ttsLatencyMs": _ms(began),
                "queuedMs": _ms(queued, began),
                "sinceRequestMs": _ms(self._options.started),
                "textLength": len(text),
                "audioBytes": len(audio.data),
            },
        }
        if streaming:
            event["streaming"] = True
        self._emit(sequence, event, last=False)

    def _emit(self, sequence: int, event: dict[str, Any], last: bool) -> None:
        """Queue `event`, holding it back until every earlier segment has finished."""
        self._held.setdefault(sequence, []).append(sse(event))
        if last:
            self._finished.add(sequence)
        while self._head in self._held:
            for chunk in self._held.pop(self._head):
                self._out.put_nowait(chunk)
            if self._head not in self._finished:
                break
            self._head += 1

    def metrics(self) -> dict[str, Any]:
        """`ttsMetrics` of the `done` event."""
        mean = sum(self.latencies) / len(self.latencies) if self.latencies else None
        first = _ms(self._options.started, self.first_audio) if self.first_audio else None
        return {
            "latencyMs": round(mean, 1) if mean is not None else None,
            "firstAudioMs": first,
            "segments": self.count,
            "failed": self.failed,
        }


class _Answer:
    """Reads the model's events: text out at once, segments to the speaker, then the summary."""

    def __init__(self, options: VoiceOptions, out: asyncio.Queue[Item]) -> None:
        self._options = options
        self._out = out
        self.speaker = _Speaker(options, out) if options.tts is not None else None
        self._segmenter = Segmenter(
            options.segment_chars, options.first_segment_chars, options.max_segment_chars
        )
        self._text: list[str] = []
        self._first_token: float | None = None

    async def run(self, events: EventStream) -> None:
        try:
            await self._read(events)
        except EchoError as error:
            self._out.put_nowait(_Failure(error))
        except Exception:
            log.exception("the voice stream's answer failed")
            self._out.put_nowait(_Failure(EchoError("The answer failed")))
        finally:
            await events.aclose()
            self._out.put_nowait(_END)

    async def _read(self, events: EventStream) -> None:
        async for event in events:
            if isinstance(event, TextDelta | RefusalDelta) and event.choice == 0 and event.text:
                self._text_event(event.text)
                if not isinstance(event, AdBlock):
                    self._speak(self._segmenter.feed(event.text))
        llm_done = time.perf_counter()
        self._speak(self._segmenter.flush())
        speaker = self.speaker
        if speaker is not None:
            self._out.put_nowait(sse({"type": "tts_total", "totalSequences": speaker.count}))
            await asyncio.gather(*speaker.tasks)
        start = self._options.started
        done = {
            "type": "done",
            "fullText": "".join(self._text),
            "llmMetrics": {
                "totalLatencyMs": _ms(start, llm_done),
                "timeToFirstTokenMs": _ms(start, self._first_token) if self._first_token else None,
            },
            "ttsMetrics": speaker.metrics() if speaker is not None else None,
            "totalTime": _ms(start),
        }
        self._out.put_nowait(sse(done))

    def _text_event(self, text: str) -> None:
        if self._first_token is None:
            self._first_token = time.perf_counter()
        self._text.append(text)
        self._out.put_nowait(sse({"type": "text", "content": text}))

    def _speak(self, segments: list[str]) -> None:
        if self.speaker is not None:
            for segment in segments:
                self.speaker.start(segment)


async def encode_voice(events: EventStream, options: VoiceOptions) -> AsyncGenerator[bytes, None]:
    """The voice stream for `events`; closing it cancels the model's stream and every TTS call."""
    out: asyncio.Queue[Item] = asyncio.Queue()
    answer = _Answer(options, out)
    reader = asyncio.create_task(answer.run(events))
    sent = False
    waiting: Item | None = None  # taken from the queue while batching, not sent yet
    try:
        while (item := waiting if waiting is not None else await out.get()) is not _END:
            waiting = None
            if isinstance(item, _Failure):
                if not sent:
                    raise VoiceError.wrap(item.error)
                yield sse({"type": "error", "error": item.error.message})
                return
            assert isinstance(item, bytes)
            batch = [item]
            while not out.empty():  # whatever else is ready goes out in the same write
                waiting = out.get_nowait()
                if not isinstance(waiting, bytes):
                    break
                batch.append(waiting)
                waiting = None
            sent = True
            yield b"".join(batch)
    finally:
        tasks = [reader, *(answer.speaker.tasks if answer.speaker else ())]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
