"""ElevenLabs text to speech: `POST /v1/text-to-speech/{voice_id}` and its `/stream` twin.

The key goes in `xi-api-key`; `model_id` defaults to a low-latency model; `output_format` is a
query parameter (codec_samplerate_bitrate, e.g. `mp3_44100_128`); `voice_settings` and
`previous_text` (the segment said just before, so prosody flows across segments) are in the body.
The answer is the audio itself, streamed as chunked bytes by `/stream`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx

from echo_stream.providers.transport.urls import build_url
from echo_stream.speech.base import Audio, TTSError, TTSUnavailable, Voice
from echo_stream.speech.remote import get_json, open_stream, post_for_body

DEFAULT_URL = "https://api.elevenlabs.io"
DEFAULT_MODEL = "eleven_flash_v2_5"
DEFAULT_VOICE = "JBFqnCBsd6RMkjVDRZzb"
# Premade voices every account has: listed when the account's own list cannot be fetched.
PREMADE = (Voice("JBFqnCBsd6RMkjVDRZzb", "George"), Voice("21m00Tcm4TlvDq8ikWAM", "Rachel"))
_CONTENT_TYPES = {"mp3": "audio/mpeg", "opus": "audio/ogg", "ulaw": "audio/basic"}


def content_type(output_format: str) -> str:
    """The MIME type of an ElevenLabs `output_format` (raw PCM as `audio/L16`)."""
    codec, _, rest = output_format.partition("_")
    if codec == "pcm":
        return f"audio/L16;rate={rest.split('_')[0] or '16000'}"
    return _CONTENT_TYPES.get(codec, "application/octet-stream")


class ElevenLabsTTS:
    """ElevenLabs as a TTS provider."""

    id = "elevenlabs"
    name = "ElevenLabs"

    def __init__(
        self,
        api_key: str | None,
        client: httpx.AsyncClient,
        *,
        base_url: str = DEFAULT_URL,
        model_id: str = DEFAULT_MODEL,
        output_format: str = "mp3_44100_128",
        voice_settings: dict[str, Any] | None = None,
        default_voice: str = DEFAULT_VOICE,
    ) -> None:
        self._key = api_key or ""
        self._client = client
        self._base = base_url.rstrip("/")
        self._model = model_id
        self._format = output_format
        self._voice_settings = voice_settings
        self.default_voice = default_voice
        self._voices: list[Voice] | None = None

    @property
    def available(self) -> bool:
        """True when `ELEVENLABS_API_KEY` is set."""
        return bool(self._key)

    def _request(self, text: str, voice: str, previous_text: str, stream: bool) -> dict[str, Any]:
        if not self._key:
            raise TTSError("ElevenLabs is not configured: set ELEVENLABS_API_KEY")
        template = "/v1/text-to-speech/{voice}" + ("/stream" if stream else "")
        # One escaping builder for every upstream URL: a voice id never changes the path.
        url = build_url(self._base, template, voice=voice or self.default_voice)
        body: dict[str, Any] = {"text": text, "model_id": self._model}
        if self._voice_settings:
            body["voice_settings"] = self._voice_settings
        if previous_text:
            body["previous_text"] = previous_text
        return {
            "url": url,
            "headers": {"xi-api-key": self._key, "accept": content_type(self._format)},
            "params": {"output_format": self._format},
            "body": body,
            "secret": self._key,
        }

    async def synthesize(self, text: str, voice: str, *, previous_text: str = "") -> Audio:
        """The segment's audio in one answer."""
        request = self._request(text, voice, previous_text, stream=False)
        data = await post_for_body(self._client, self.name, **request)
        if not data:
            raise TTSUnavailable("ElevenLabs answered with no audio")
        return Audio(data, content_type(self._format))

    async def stream_synthesize(
        self, text: str, voice: str, *, previous_text: str = ""
    ) -> AsyncIterator[Audio]:
        """The segment's audio as the chunks ElevenLabs streams."""
        request = self._request(text, voice, previous_text, stream=True)
        kind = content_type(self._format)
        sent = False
        async with open_stream(self._client, self.name, **request) as chunks:
            async for chunk in chunks:
                sent = True
                yield Audio(chunk, kind)
        if not sent:
            raise TTSUnavailable("ElevenLabs answered with no audio")

    async def voices(self) -> list[Voice]:
        """The account's voices (`GET /v1/voices`, fetched once), else the premade ones."""
        if self._voices is not None:
            return self._voices
        if not self._key:
            return list(PREMADE)
        try:
            data = await get_json(
                self._client, self.name, self._base + "/v1/voices", {"xi-api-key": self._key}
            )
            found = [Voice(str(v["voice_id"]), str(v.get("name") or v["voice_id"]))
                     for v in data["voices"]]  # fmt: skip
        except (TTSError, KeyError, TypeError):
            return list(PREMADE)
        self._voices = found or list(PREMADE)
        return self._voices

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()
