"""Serves the hot endpoints straight off the ASGI scope: `POST /v1/chat/completions`, Lobe's
`POST /api/chat`, and the session face's `POST /init-stream` and `GET /stream/{id}`.

The route stays declared in FastAPI (for its OpenAPI description and for any other path), but
FastAPI's middleware stack wraps every `send` of a response in several layers of coroutines;
on a streamed answer that is a cost per token. This wrapper hands the hot path directly to the
chat handler, with the same error translation, and passes everything else to FastAPI.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from functools import partial

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from echo_stream.api.chat import chat_completions
from echo_stream.api.lobe import lobe_chat
from echo_stream.api.session import INIT_PATH, STREAM_PREFIX, init_stream, stream
from echo_stream.errors import EchoError
from echo_stream.streaming.response import send_error

log = logging.getLogger(__name__)

CHAT_PATH = "/v1/chat/completions"
LOBE_PATH = "/api/chat"

Handler = Callable[[Request], Awaitable[Response]]

_POST_HANDLERS: dict[str, Handler] = {
    CHAT_PATH: chat_completions,
    LOBE_PATH: lobe_chat,
    INIT_PATH: init_stream,
}


def fast_handler(method: str, path: str) -> Handler | None:
    """The handler that serves this request directly, or None (FastAPI serves it)."""
    if method == "POST":
        return _POST_HANDLERS.get(path)
    if method == "GET" and path.startswith(STREAM_PREFIX):
        session_id = path[len(STREAM_PREFIX) :]
        if session_id and "/" not in session_id:
            return partial(stream, session_id=session_id)
    return None


class ChatFastPath:
    """An ASGI app: the hot endpoints directly, the rest through `app`."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = fast_handler(scope["method"], scope["path"]) if scope["type"] == "http" else None
        if handler is None:
            await self.app(scope, receive, send)
            return
        scope["app"] = self.app
        try:
            response = await handler(Request(scope, receive))
        except EchoError as error:
            await send_error(send, error)
            return
        except Exception:
            log.exception("%s %s failed", scope["method"], scope["path"])
            await send_error(send, EchoError("internal error"))
            return
        await response(scope, receive, send)
