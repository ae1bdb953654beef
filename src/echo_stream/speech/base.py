"""The text-to-speech interface every voice provider implements, and its errors.

    TTSError              any failure to turn a segment into speech (status: what the provider said)
    ├── TTSRejected       the provider refused the request (bad key 401/403, bad voice 4xx)
    ├── TTSRateLimited    429
    ├── TTSTimeout        connect, first-byte or between-chunk timeout
    └── TTSUnavailable    connection failure, 5xx, a cut-off or malformed response

A TTS failure concerns one segment only: the voice face reports it as a `tts_error` event and
the text goes on. Messages never carry a key.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Voice:
    """A voice a provider offers."""

    id: str
    name: str


@dataclass(frozen=True, slots=True)
class Audio:
    """Encoded audio: a whole segment, or one piece of it when streamed."""

    data: bytes
    content_type: str


class TTSError(Exception):
    """A segment could not be spoken."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class TTSRejected(TTSError):
    """The provider refused the request (a bad key, an unknown voice, text it will not take)."""


class TTSRateLimited(TTSError):
    """The provider is rate-limiting this key."""


class TTSTimeout(TTSError):
    """The provider took too long to answer or to send the next piece."""


class TTSUnavailable(TTSError):
    """The provider could not be reached, failed (5xx), or cut its answer off."""


class TTSProvider(Protocol):
    """One text-to-speech service; `id` is what clients send as `ttsProvider`."""

    id: str
    name: str
    default_voice: str

    @property
    def available(self) -> bool:
        """True when the provider can be used (its key is set)."""
        ...

    async def synthesize(self, text: str, voice: str, *, previous_text: str = "") -> Audio:
        """The whole segment's audio. `previous_text` is what was said just before (prosody)."""
        ...

    def stream_synthesize(
        self, text: str, voice: str, *, previous_text: str = ""
    ) -> AsyncIterator[Audio]:
        """The segment's audio in pieces, each playable as it arrives."""
        ...

    async def voices(self) -> list[Voice]:
        """The voices this provider offers."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
