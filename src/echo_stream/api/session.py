"""The n8n hand-off: `POST /init-stream` (JWT in, streamUrl out) and `GET /stream/{id}`.

`/init-stream` is authenticated by the workflow's JWT (`n8nToken`), checked before anything else;
`/stream/{id}` by the stream token in `access_token` (what `new EventSource(streamUrl)` sends:
a GET with no custom headers). The answer is generated through `run_chat`, like every face.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, Response

from echo_stream.ads.links import BaseUrl
from echo_stream.api.edge import header, json_object, lazy_base_url, read_body, validate
from echo_stream.api.run import run_chat
from echo_stream.errors import InvalidRequest
from echo_stream.events import EventStream
from echo_stream.faces.session import encode_session, push_with
from echo_stream.http_protocol import body_writer
from echo_stream.ops.record import response_started
from echo_stream.protocol import ChatCompletionRequest, ChatMessage, StreamOptions
from echo_stream.sessions.models import Session
from echo_stream.sessions.service import Starter
from echo_stream.state import AppState
from echo_stream.streaming.response import EventStreamResponse

router = APIRouter()

INIT_PATH = "/init-stream"
STREAM_PREFIX = "/stream/"
"""Both routes are also served by `api.fastpath` (no FastAPI wrapping of each send)."""
_INIT_BODY_LIMIT = 1024 * 1024
_STREAM_HEADERS = {"Referrer-Policy": "no-referrer"}


class InitStream(BaseModel):
    """The body of `POST /init-stream` (the original contract's names)."""

    model_config = ConfigDict(extra="ignore")

    n8nToken: str = Field(max_length=16_384)
    resumeUrl: str = Field(min_length=1, max_length=2048)
    prompt: str = Field(min_length=1)
    userId: str | int | None = Field(None, union_mode="left_to_right")
    chatId: str | int | None = Field(None, union_mode="left_to_right")
    model: str | None = Field(None, min_length=1, max_length=256)
    max_tokens: int = Field(4096, ge=1, le=1_000_000)


def _parse(body: bytes) -> tuple[str | None, dict[str, Any]]:
    data = json_object(body)
    token = data.get("n8nToken")
    return token if isinstance(token, str) else None, data


def _validate(data: dict[str, Any], max_prompt: int) -> InitStream:
    init = validate(InitStream, data)
    for name in ("userId", "chatId"):
        if isinstance(value := getattr(init, name), str) and len(value) > 256:
            raise InvalidRequest(f"'{name}' is longer than 256 characters", param=name)
    if len(init.prompt) > max_prompt:
        raise InvalidRequest(f"'prompt' is longer than {max_prompt} characters", param="prompt")
    return init


@router.post(INIT_PATH)
async def init_stream(request: Request) -> Response:
    """Verify the workflow's JWT, check resumeUrl, store a session; answer its streamUrl."""
    state: AppState = request.app.state.echo
    settings = state.settings
    token, data = _parse(await read_body(request, _INIT_BODY_LIMIT))
    claims = state.sessions.verify(token)
    init = _validate(data, settings.stream_max_prompt_chars)
    model = init.model or settings.stream_default_model
    state.router.resolve(model)  # an unknown model is a 404 now, not a failed stream later
    session_id, stream_token = await state.sessions.open(
        claims,
        resume_url=init.resumeUrl,
        prompt=init.prompt,
        model=model,
        max_tokens=init.max_tokens,
        user_id=init.userId,
        chat_id=init.chatId,
    )
    base = (settings.public_base_url or str(request.base_url)).rstrip("/")
    url = f"{base}/stream/{session_id}?access_token={stream_token}"
    return JSONResponse({"ok": True, "streamUrl": url}, headers={"cache-control": "no-store"})


def is_stream_request(method: str, path: str) -> bool:
    """Whether this is a `GET /stream/{id}` that `api.fastpath` serves: its responses add the
    request's headers themselves (`ops.record.response_started`), so `api.observe` need not
    wrap each of its writes."""
    return (
        method == "GET"
        and path.startswith(STREAM_PREFIX)
        and len(path) > len(STREAM_PREFIX)
        and "/" not in path[len(STREAM_PREFIX) :]
    )


def _starter(state: AppState, base_url: BaseUrl) -> Starter:
    def start(session: Session) -> tuple[str, str, EventStream]:
        chat = ChatCompletionRequest(
            model=session.model,
            messages=[ChatMessage(role="user", content=session.prompt)],
            stream=True,
            stream_options=StreamOptions(include_usage=True),
            max_tokens=session.max_tokens,
            user=None if session.user_id is None else str(session.user_id),
        )
        run = run_chat(state, chat, client_key=None, base_url=base_url)
        return run.provider, run.upstream_model, run.events

    return start


@router.get("/stream/{session_id}", response_model=None)
async def stream(request: Request, session_id: str) -> Response:
    """The session's answer as plain-text EventSource data, resuming after `Last-Event-ID`.

    Served by `http_protocol`'s server, pieces generated in this process reach a caught-up
    viewer straight from the generating task (`sessions.feed`), not through this response."""
    state: AppState = request.app.state.echo
    writer = body_writer(request.scope)
    entries = await state.sessions.attach(
        session_id,
        request.query_params.get("access_token"),
        header(request, b"last-event-id"),
        _starter(state, lazy_base_url(request)),
        None if writer is None else push_with(writer.write),
    )
    if entries is None:
        # Finished: 204 tells EventSource to stop reconnecting.
        headers = [(b"referrer-policy", b"no-referrer"), *response_started(204)]
        response = Response(status_code=204)
        response.raw_headers = headers
        return response
    return EventStreamResponse(encode_session(entries), headers=_STREAM_HEADERS)
