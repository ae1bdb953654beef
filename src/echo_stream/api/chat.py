"""`POST /v1/chat/completions`: validate, start the pipeline, encode as OpenAI chunks."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from starlette.responses import Response

from echo_stream.api.edge import lazy_base_url, parse_chat_request, read_body, require_key
from echo_stream.api.record import record_if_asked
from echo_stream.api.run import run_chat
from echo_stream.http_protocol import body_writer
from echo_stream.ids import hex_id
from echo_stream.ops.record import current_record
from echo_stream.state import AppState
from echo_stream.streaming.chunks import ChunkWriter, encode_chunks
from echo_stream.streaming.collect import collect_completion
from echo_stream.streaming.relay import RELAY, Relay
from echo_stream.streaming.response import DeferredJSONResponse, EventStreamResponse

router = APIRouter()


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(request: Request) -> Response:
    """Create a chat completion, streamed as SSE or returned whole."""
    state: AppState = request.app.state.echo
    client_key = require_key(request, state.client_keys)
    chat = parse_chat_request(await read_body(request, state.settings.max_request_bytes))
    run = run_chat(state, chat, client_key=client_key, base_url=lazy_base_url(request))
    events, headers = await record_if_asked(state, request, chat, run, client_key)
    completion_id = hex_id("chatcmpl-", 29)
    created = int(time.time())
    if chat.stream:
        writer = ChunkWriter(completion_id, created, chat.model)
        body = body_writer(request.scope)
        if body is not None and events is run.events:  # no recording: the stages, the encoder
            RELAY.set(Relay(body, writer, current_record(), run.gate))
        return EventStreamResponse(
            encode_chunks(events, writer, include_usage=chat.wants_usage()), headers
        )
    return DeferredJSONResponse(
        lambda: collect_completion(
            events, completion_id=completion_id, created=created, model=chat.model
        ),
        headers,
    )
