"""Inworld text to speech: `POST /tts/v1/voice` and `POST /tts/v1/voice:stream`.

The credential is sent exactly as Inworld issues it (already Base64) after `Basic`. The body
names `voiceId`, `modelId` and an `audioConfig`; the answer is JSON with Base64 `audioContent`,
and the streaming endpoint sends newline-delimited JSON, one `{"result": {"audioContent": ...}}`
per line (or `{"error": {...}}`).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson

from echo_stream.speech.base import Audio, TTSError, TTSUnavailable, Voice
from echo_stream.speech.remote import get_json, open_stream, post_for_body

DEFAULT_URL = "https://api.inworld.ai"
DEFAULT_MODEL = "inworld-tts-1.5-mini"
DEFAULT_VOICE = "Ashley"
BUILT_IN = tuple(Voice(name, name) for name in ("Ashley", "Dennis", "Alex", "Sarah", "Edward"))
_CONTENT_TYPES = {"MP3": "audio/mpeg", "LINEAR16": "audio/wav", "OGG_OPUS": "audio/ogg"}


def _audio(payload: Any, kind: str) -> Audio:
    """The audio in one Inworld JSON object (`{"audioContent": ...}`)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("audioContent"), str):
        raise TTSUnavailable("Inworld sent an answer without audioContent")
    try:
        return Audio(base64.b64decode(payload["audioContent"], validate=True), kind)
    except binascii.Error:
        raise TTSUnavailable("Inworld sent audioContent that is not Base64") from None


def _line(line: bytes) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        raise TTSUnavailable("Inworld sent a malformed stream line") from None


class InworldTTS:
    """Inworld as a TTS provider."""

    id = "inworld"
    name = "Inworld"

    def __init__(
        self,
        api_key: str | None,
        client: httpx.AsyncClient,
        *,
        base_url: str = DEFAULT_URL,
        model_id: str = DEFAULT_MODEL,
        audio_encoding: str = "MP3",
        sample_rate: int = 24000,
        default_voice: str = DEFAULT_VOICE,
    ) -> None:
        self._key = api_key or ""
        self._client = client
        self._base = base_url.rstrip("/")
        self._model = model_id
        self._encoding = audio_encoding
        self._rate = sample_rate
        self.default_voice = default_voice
        self._voices: list[Voice] | None = None

    @property
    def available(self) -> bool:
        """True when `INWORLD_API_KEY` is set."""
        return bool(self._key)

    @property
    def _kind(self) -> str:
        return _CONTENT_TYPES.get(self._encoding, "application/octet-stream")

    def _request(self, text: str, voice: str, stream: bool) -> dict[str, Any]:
        if not self._key:
            raise TTSError("Inworld is not configured: set INWORLD_API_KEY")
        body = {
            "text": text,
            "voiceId": voice or self.default_voice,
            "modelId": self._model,
            "audioConfig": {"audioEncoding": self._encoding, "sampleRateHertz": self._rate},
        }
        return {
            "url": self._base + ("/tts/v1/voice:stream" if stream else "/tts/v1/voice"),
            "headers": {"authorization": f"Basic {self._key}"},
            "body": body,
            "secret": self._key,
        }

    async def synthesize(self, text: str, voice: str, *, previous_text: str = "") -> Audio:
        """The segment's audio in one answer (Inworld takes no previous text)."""
        data = await post_for_body(self._client, self.name, **self._request(text, voice, False))
        return _audio(_line(data), self._kind)

    async def stream_synthesize(
        self, text: str, voice: str, *, previous_text: str = ""
    ) -> AsyncIterator[Audio]:
        """The segment's audio, one piece per line of Inworld's stream."""
        sent = False
        pending = b""
        async with open_stream(self._client, self.name, **self._request(text, voice, True)) as body:
            async for chunk in body:
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    if line.strip():
                        yield self._piece(_line(line))
                        sent = True
        if pending.strip():  # a last line without its newline: whole if it parses
            yield self._piece(_line(pending))
            sent = True
        if not sent:
            raise TTSUnavailable("Inworld answered with no audio")

    def _piece(self, message: Any) -> Audio:
        if isinstance(message, dict) and message.get("error"):
            error = message["error"]
            text = error.get("message") if isinstance(error, dict) else str(error)
            raise TTSUnavailable(f"Inworld failed mid-stream: {text}")
        return _audio(message.get("result") if isinstance(message, dict) else None, self._kind)

    async def voices(self) -> list[Voice]:
        """The workspace's voices (`GET /tts/v1/voices`, fetched once), else the built-in ones."""
        if self._voices is not None:
            return self._voices
        if not self._key:
            return list(BUILT_IN)
        headers = {"authorization": f"Basic {self._key}"}
        try:
            data = await get_json(self._client, self.name, self._base + "/tts/v1/voices", headers)
            found = [Voice(str(v["voiceId"]), str(v.get("displayName") or v["voiceId"]))
                     for v in data["voices"]]  # fmt: skip
        except (TTSError, KeyError, TypeError):
            return list(BUILT_IN)
        self._voices = found or list(BUILT_IN)
        return self._voices

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()
