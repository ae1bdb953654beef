"""The offline voice: eSpeak NG, installed by pip alone, speaking WAV into memory.

`espeakng-loader` ships `libespeak-ng` and its voice data inside its wheel, so nothing is
downloaded at run time and no system package is needed. The library is driven through ctypes in
synchronous mode: each call renders 16-bit mono PCM (22,050 Hz) through a callback into a buffer,
which is wrapped as WAV. eSpeak keeps one global state per process, so syntheses take turns
behind a lock, each in a worker thread so the event loop never waits on it; at a real-time factor
of well under 0.05 (see README) one segment takes milliseconds.
"""

from __future__ import annotations

import asyncio
import ctypes
import io
import re
import threading
import wave
from collections.abc import AsyncIterator
from typing import Any

from echo_stream.speech.base import Audio, TTSRejected, TTSUnavailable, Voice

# fmt: off
VOICES = (
    Voice("en-us", "English (US)"), Voice("en-us+f3", "English (US), female"),
    Voice("en", "English (UK)"), Voice("en-gb-scotland", "English (Scotland)"),
    Voice("de", "German"), Voice("fr", "French"), Voice("es", "Spanish"), Voice("it", "Italian"),
)
# fmt: on
# eSpeak looks voice names up as file paths: only plain names (and "+variant") are passed on.
_VOICE_NAME = re.compile(r"[A-Za-z0-9_-]{1,40}(?:\+[A-Za-z0-9_-]{1,20})?")
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000  # report errors instead of exiting the process
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_RATE = 1  # espeakRATE: words per minute
_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class _Engine:
    """The process's one eSpeak NG instance; every call holds `lock`."""

    def __init__(self) -> None:
        import espeakng_loader  # type: ignore[import-untyped]

        self.lock = threading.Lock()
        self._lib: Any = ctypes.CDLL(espeakng_loader.get_library_path())
        self._lib.espeak_Initialize.restype = ctypes.c_int
        self._lib.espeak_Initialize.argtypes = [
            ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int,
        ]  # fmt: skip
        self._lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        self._lib.espeak_Synth.argtypes = [
            ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip
        data = espeakng_loader.get_data_path().encode()
        rate = self._lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, data, _INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            raise TTSUnavailable("eSpeak NG could not start (its voice data is missing?)")
        self.sample_rate = int(rate)
        self._chunks: list[bytes] = []
        self._cancel: threading.Event | None = None
        self._callback = _CALLBACK(self._on_audio)  # kept referenced while the library uses it
        self._lib.espeak_SetSynthCallback(self._callback)

    def _on_audio(self, wav: Any, samples: int, events: Any) -> int:
        if samples > 0:
            self._chunks.append(ctypes.string_at(wav, samples * 2))
        return 1 if self._cancel is not None and self._cancel.is_set() else 0

    def speak(self, text: str, voice: str, rate: int, cancel: threading.Event) -> bytes:
        """16-bit mono PCM of `text`; empty if `cancel` was set on the way."""
        with self.lock:
            if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise TTSRejected(f"Unknown offline voice '{voice}'", status=400)
            self._lib.espeak_SetParameter(_RATE, rate, 0)
            self._chunks, self._cancel = [], cancel
            encoded = text.encode()
            try:
                status = self._lib.espeak_Synth(
                    encoded, len(encoded) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
                )
                self._lib.espeak_Synchronize()
            finally:
                self._cancel = None
            if status != 0:
                raise TTSUnavailable(f"eSpeak NG failed to synthesise (status {status})")
            return b"".join(self._chunks)


_engine: _Engine | None = None
_engine_lock = threading.Lock()


def engine() -> _Engine:
    """The process's eSpeak NG instance, started on first use (the library is process-global)."""
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = _Engine()
        return _engine


def wav_bytes(pcm: bytes, sample_rate: int) -> bytes:
    """16-bit mono PCM wrapped as a WAV file."""
    out = io.BytesIO()
    with wave.open(out, "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(sample_rate)
        writer.writeframes(pcm)
    return out.getvalue()


class OfflineTTS:
    """eSpeak NG as a TTS provider: always available, WAV output."""

    id = "offline"
    name = "Offline voice (eSpeak NG)"

    def __init__(self, default_voice: str = "en-us", rate_wpm: int = 175) -> None:
        self.default_voice = default_voice
        self._rate = rate_wpm

    @property
    def available(self) -> bool:
        """Always: the voice ships with the package."""
        return True

    async def synthesize(self, text: str, voice: str, *, previous_text: str = "") -> Audio:
        """The segment as one WAV file (`previous_text` is not used by eSpeak)."""
        voice = voice or self.default_voice
        if not _VOICE_NAME.fullmatch(voice):
            raise TTSRejected(f"Unknown offline voice '{voice[:40]}'", status=400)
        cancel = threading.Event()
        try:
            pcm = await asyncio.to_thread(self._speak, text, voice, cancel)
        except asyncio.CancelledError:
            cancel.set()  # the thread stops at its next audio buffer
            raise
        return Audio(wav_bytes(pcm, engine().sample_rate), "audio/wav")

    async def stream_synthesize(
        self, text: str, voice: str, *, previous_text: str = ""
    ) -> AsyncIterator[Audio]:
        """One piece: eSpeak renders a segment faster than it could be sent in parts."""
        yield await self.synthesize(text, voice, previous_text=previous_text)

    def _speak(self, text: str, voice: str, cancel: threading.Event) -> bytes:
        return engine().speak(text, voice, self._rate, cancel)

    async def voices(self) -> list[Voice]:
        """A short list of the bundled voices (eSpeak has more: any of its names works)."""
        return list(VOICES)

    async def aclose(self) -> None:
        """Nothing to release."""
