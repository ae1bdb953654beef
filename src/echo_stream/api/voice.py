"""`POST /api/stream` (the voice stream), its `OPTIONS`, and `GET /api/tts/providers`.

The model part goes through `run_chat` like every face: `llmProvider`/`llmModel` become a model
name for the one router (`openai/<model>`, `google/...`, `anthropic/...`, `mock/...`, or a
declared name), so routing, retries, timeouts and ads are the OpenAI endpoint's own.
Errors of this API are `{"error": message}` with the HTTP status, as in the original.
"""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, Response

from echo_stream.api.edge import json_object, lazy_base_url, read_body, require_key, validate
from echo_stream.api.run import run_chat
from echo_stream.errors import EchoError, InvalidRequest, ModelNotFound
from echo_stream.faces.voice import VoiceError, VoiceOptions, encode_voice
from echo_stream.protocol import ChatCompletionRequest, ChatMessage
from echo_stream.routing import Router
from echo_stream.speech.registry import Speech
from echo_stream.state import AppState
from echo_stream.streaming.response import EventStreamResponse

router = APIRouter()

# What clients send as llmProvider -> the router's provider kind and its explicit prefix.
LLM_PROVIDERS = {
    "openai": ("openai", "openai/"),
    "gemini": ("google", "google/"),
    "google": ("google", "google/"),
    "claude": ("anthropic", "anthropic/"),
    "anthropic": ("anthropic", "anthropic/"),
    "mock": ("mock", "mock/"),
}
DEFAULT_MODELS = {
    "openai": "openai/gpt-4o-mini",
    "google": "google/gemini-2.0-flash",
    "anthropic": "anthropic/claude-3-5-haiku-20241022",
    "mock": "echo-mock",
}
_VOICES_TIMEOUT = 5.0  # seconds to wait for a provider's voice list


class GenerationOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    maxTokens: int | None = Field(None, ge=1)  # the original API's camelCase names
    temperature: float | None = Field(None, ge=0, le=2)


class VoiceRequest(BaseModel):
    """`POST /api/stream` body (the original API's camelCase names)."""

    model_config = ConfigDict(extra="ignore")

    prompt: str = Field("", max_length=100_000)
    messages: list[ChatMessage] = Field(default_factory=list, max_length=500)
    llmProvider: str | None = Field(None, max_length=40)
    llmModel: str | None = Field(None, max_length=200)
    ttsProvider: str | None = Field(None, max_length=40)
    voiceId: str | None = Field(None, max_length=200)
    enableTTS: bool = True
    streamTTS: bool = False
    options: GenerationOptions = Field(default_factory=GenerationOptions)


def parse_voice_request(body: bytes) -> VoiceRequest:
    """The validated request, or a 400 `{"error": ...}` saying what is wrong."""
    try:
        request = validate(VoiceRequest, json_object(body) if body else {})
    except InvalidRequest as error:  # the same checks, in the voice stream's error shape
        raise VoiceError(error.message, status=400) from error
    if not request.prompt.strip():
        raise VoiceError("Prompt is required", status=400)
    return request


def model_name(router: Router, provider: str, model: str | None) -> str:
    """The router's name for `llmModel` on `llmProvider` (raises 400/404 `VoiceError`s)."""
    if provider.lower() not in LLM_PROVIDERS:
        known = ", ".join(LLM_PROVIDERS)
        raise VoiceError(f"Unknown llmProvider '{provider}': use one of {known}", status=400)
    kind, prefix = LLM_PROVIDERS[provider.lower()]
    if not model:
        declared = [card.id for card in router.models() if card.owned_by == kind]
        candidates = [DEFAULT_MODELS[kind], *declared[:1]]
    else:
        candidates = [model, prefix + model.removeprefix(prefix)]
    failure: EchoError | None = None
    for name in candidates:
        try:
            route = router.resolve(name)
        except ModelNotFound as error:
            failure = failure or error
            continue
        except EchoError as error:  # a name outside the model-name character set: a 400
            raise VoiceError.wrap(error) from error
        if route.provider.name == kind:
            return name
    raise VoiceError.wrap(failure or ModelNotFound(f"The model '{model}' is not a {kind} model"))


def default_llm_provider(state: AppState) -> str:
    """`VOICE_DEFAULT_LLM_PROVIDER`, else OpenAI when it is configured, else the mock (so a
    machine without keys still answers, and speaks)."""
    if state.settings.voice_default_llm_provider:
        return state.settings.voice_default_llm_provider
    try:
        state.router.resolve(DEFAULT_MODELS["openai"])
    except ModelNotFound:
        return "mock"
    return "openai"


def chat_request(request: VoiceRequest, model: str) -> ChatCompletionRequest:
    """The pipeline's request: earlier turns, then the prompt as the user's message."""
    messages = [*request.messages, ChatMessage(role="user", content=request.prompt)]
    return ChatCompletionRequest(
        model=model,
        messages=messages,
        stream=True,
        max_tokens=request.options.maxTokens,
        temperature=request.options.temperature,
    )


def voice_options(
    speech: Speech, request: VoiceRequest, state: AppState, started: float
) -> VoiceOptions:
    """How to speak this request (400 for an unknown or unconfigured TTS provider)."""
    settings = state.settings
    tts = None
    if request.enableTTS:
        wanted = (request.ttsProvider or speech.default).lower()
        tts = speech.providers.get(wanted)
        if tts is None:
            raise VoiceError(
                f"Unknown ttsProvider '{wanted}': use one of {speech.known()}", status=400
            )
        if not tts.available:
            raise VoiceError(f"TTS provider '{wanted}' is not configured (no key)", status=400)
    return VoiceOptions(
        tts=tts,
        voice=request.voiceId or (tts.default_voice if tts else ""),
        limiter=speech.limiter,
        stream_tts=request.streamTTS,
        concurrency=speech.per_request,
        segment_chars=settings.voice_segment_chars,
        first_segment_chars=settings.voice_first_segment_chars,
        max_segment_chars=settings.voice_segment_max_chars,
        started=started,
    )


@router.post("/api/stream", response_model=None)
async def voice_stream(request: Request) -> Response:
    """The answer's text and its speech in one SSE stream."""
    started = time.perf_counter()
    state: AppState = request.app.state.echo
    try:
        client_key = require_key(request, state.client_keys)
        body = parse_voice_request(await read_body(request, state.settings.max_request_bytes))
    except VoiceError:
        raise
    except EchoError as error:
        raise VoiceError.wrap(error) from error
    speech = state.speech
    if speech is None:
        raise VoiceError("The voice stream is not enabled", status=404)
    provider = body.llmProvider or default_llm_provider(state)
    model = model_name(state.router, provider, body.llmModel)
    options = voice_options(speech, body, state, started)
    run = run_chat(
        state, chat_request(body, model), client_key=client_key, base_url=lazy_base_url(request)
    )
    return EventStreamResponse(encode_voice(run.events, options))


@router.options("/api/stream")
async def voice_stream_options() -> Response:
    """Preflight without CORS configured (with it, the CORS middleware answers first)."""
    return Response(status_code=204, headers={"allow": "POST, OPTIONS"})


@router.get("/api/tts/providers")
async def tts_providers(request: Request) -> Response:
    """The TTS providers, whether each can be used, and their voices."""
    state: AppState = request.app.state.echo
    try:
        require_key(request, state.client_keys)
    except EchoError as error:
        raise VoiceError.wrap(error) from error
    speech = state.speech
    if speech is None:
        return JSONResponse({"providers": [], "default": None})
    providers = list(speech.providers.values())
    lists = await asyncio.gather(
        *(asyncio.wait_for(p.voices(), _VOICES_TIMEOUT) for p in providers),
        return_exceptions=True,
    )
    return JSONResponse(
        {
            "providers": [
                {
                    "id": provider.id,
                    "name": provider.name,
                    "available": provider.available,
                    "voices": []
                    if isinstance(voices, BaseException)
                    else [{"id": voice.id, "name": voice.name} for voice in voices],
                    "default_voice": provider.default_voice,
                }
                for provider, voices in zip(providers, lists, strict=True)
            ],
            "default": speech.default,
        }
    )
