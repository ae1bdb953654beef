"""`POST /v1/chat/completions`: validate, route, and hand the stream to the pipeline."""

from __future__ import annotations

import secrets
import time

from fastapi import APIRouter, Request
from starlette.responses import Response

from echo_stream.api.edge import parse_chat_request, read_body, require_key
from echo_stream.state import AppState
from echo_stream.streaming.chunks import ChunkWriter, encode_chunks
from echo_stream.streaming.collect import collect_completion
from echo_stream.streaming.pipeline import Stage, build_pipeline, first_event_within
from echo_stream.streaming.response import DeferredJSONResponse, EventStreamResponse

router = APIRouter()


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(request: Request) -> Response:
    """Create a chat completion, streamed as SSE or returned whole."""
    state: AppState = request.app.state.echo
    settings = state.settings
    client_key = require_key(request, state.client_keys)
    chat = parse_chat_request(await read_body(request, settings.max_request_bytes))
    route = state.router.resolve(chat.model)
    stages: list[Stage] = []
    if (
        state.ads is not None
        and (ad_stage := state.ads.stage(chat, client_key, str(request.base_url))) is not None
    ):
        stages.append(ad_stage)
    source = first_event_within(
        route.provider.stream(chat, route.upstream_model),
        settings.upstream_first_token_timeout,
        route.provider.name,
    )
    events = build_pipeline(source, stages)
    completion_id = "chatcmpl-" + secrets.token_urlsafe(18)
    created = int(time.time())
    if chat.stream:
        writer = ChunkWriter(completion_id, created, chat.model)
        return EventStreamResponse(encode_chunks(events, writer, include_usage=chat.wants_usage()))
    return DeferredJSONResponse(
        lambda: collect_completion(
            events, completion_id=completion_id, created=created, model=chat.model
        )
    )
