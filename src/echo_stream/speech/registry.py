"""The TTS providers the gateway offers, built once from the settings, and the process-wide limit.

Every provider is always listed (`GET /api/tts/providers` shows which are available); the default
is `TTS_DEFAULT_PROVIDER`, else the first remote provider with a key, else the offline voice, so
a machine with no key still speaks.
"""

from __future__ import annotations

import asyncio

import httpx

from echo_stream.settings import Settings
from echo_stream.speech.base import TTSProvider
from echo_stream.speech.elevenlabs import ElevenLabsTTS
from echo_stream.speech.inworld import InworldTTS
from echo_stream.speech.offline import OfflineTTS
from echo_stream.speech.remote import RemoteOptions, make_http_client


class Speech:
    """The TTS providers by id, the default one, and the limits on concurrent syntheses."""

    def __init__(
        self,
        providers: list[TTSProvider],
        default: str,
        *,
        per_request: int = 3,
        per_process: int = 32,
    ) -> None:
        self.providers = {provider.id: provider for provider in providers}
        self.default = default
        self.per_request = per_request
        self.limiter = asyncio.Semaphore(per_process)
        """Held by every synthesis in the process, so many requests cannot pile up on a provider."""

    def known(self) -> str:
        """The provider ids, for error messages."""
        return ", ".join(self.providers)

    async def aclose(self) -> None:
        """Close every provider's connections."""
        for provider in self.providers.values():
            await provider.aclose()


def build_speech(settings: Settings, transport: httpx.AsyncBaseTransport | None = None) -> Speech:
    """The providers for these settings; `transport` replaces the network (tests)."""
    options = RemoteOptions(settings.tts_connect_timeout, settings.tts_read_timeout)
    eleven_key = settings.elevenlabs_api_key
    inworld_key = settings.inworld_api_key
    providers: list[TTSProvider] = [
        ElevenLabsTTS(
            eleven_key.get_secret_value() if eleven_key else None,
            make_http_client(options, transport),
            base_url=settings.elevenlabs_base_url,
            model_id=settings.elevenlabs_model_id,
            output_format=settings.elevenlabs_output_format,
            voice_settings=dict(settings.elevenlabs_voice_settings),
            default_voice=settings.elevenlabs_voice_id,
        ),
        InworldTTS(
            inworld_key.get_secret_value() if inworld_key else None,
            make_http_client(options, transport),
            base_url=settings.inworld_base_url,
            model_id=settings.inworld_model_id,
            audio_encoding=settings.inworld_audio_encoding,
            default_voice=settings.inworld_voice_id,
        ),
        OfflineTTS(settings.offline_voice, settings.offline_voice_rate),
    ]
    default: str = settings.tts_default_provider
    default = default or next(p.id for p in providers if p.available)
    return Speech(
        providers,
        default,
        per_request=settings.tts_concurrency,
        per_process=settings.tts_process_concurrency,
    )
