"""`POST /api/chat`: Lobe Chat's chat endpoint, a face on the same pipeline as `/v1`.

The body is Lobe's `ChatStreamPayload` (`messages`, `model`, and the sampling fields it forwards);
the answer is always Lobe's SSE protocol (`faces.lobe`), as Lobe's own server answers even a
`stream: false` request with a stream. Errors before the stream are Lobe's JSON `ErrorResponse`
with the error's status.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from echo_stream.api.edge import json_object, lazy_base_url, read_body, require_key, validate
from echo_stream.api.record import record_if_asked
from echo_stream.api.run import run_chat
from echo_stream.errors import EchoError
from echo_stream.faces.lobe import LobeHTTPError, encode_lobe
from echo_stream.protocol import ChatCompletionRequest
from echo_stream.state import AppState
from echo_stream.streaming.response import EventStreamResponse, error_response

router = APIRouter()

# The fields of Lobe's payload that mean the same as OpenAI's; the rest (`provider`, `stream`,
# `responseMode`, ...) are Lobe's own and are not forwarded.
_FORWARDED = (
    "model",
    "messages",
    "temperature",
    "top_p",
    "max_tokens",
    "frequency_penalty",
    "presence_penalty",
    "tools",
    "tool_choice",
    "stop",
    "seed",
    "user",
    "reasoning_effort",
)


def parse_lobe_request(body: bytes) -> ChatCompletionRequest:
    """Lobe's chat payload as the pipeline's request (always streamed, with usage)."""
    data = json_object(body)
    fields: dict[str, Any] = {key: data[key] for key in _FORWARDED if key in data}
    fields.update(stream=True, stream_options={"include_usage": True})
    return validate(ChatCompletionRequest, fields)


def _lobe_error_response(error: EchoError) -> Response:
    return error_response(LobeHTTPError(error))


@router.post("/api/chat", response_model=None)
async def lobe_chat(request: Request) -> Response:
    """Stream an answer in Lobe Chat's protocol."""
    started = time.monotonic()
    state: AppState = request.app.state.echo
    try:
        client_key = require_key(request, state.client_keys)
        chat = parse_lobe_request(await read_body(request, state.settings.max_request_bytes))
        run = run_chat(state, chat, client_key=client_key, base_url=lazy_base_url(request))
        # Stored like the OpenAI endpoint's turns when the page sends X-Conversation-Id.
        events, headers = await record_if_asked(state, request, chat, run, client_key)
    except EchoError as error:
        return _lobe_error_response(error)
    message_id = "msg_" + secrets.token_urlsafe(12)
    return EventStreamResponse(
        encode_lobe(events, message_id=message_id, provider=run.provider, started=started),
        headers,
    )
