"""Serves `POST /v1/chat/completions` and `GET /stream/{id}` straight off the ASGI scope.

The route stays declared in FastAPI (for its OpenAPI description and for any other path), but
FastAPI's middleware stack wraps every `send` of a response in several layers of coroutines;
on a streamed answer that is a cost per token. This wrapper hands the hot path directly to the
chat handler, with the same error translation, and passes everything else to FastAPI.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from echo_stream.api.chat import chat_completions
from echo_stream.api.session import STREAM_PREFIX, stream
from echo_stream.errors import EchoError
from echo_stream.streaming.response import send_error

log = logging.getLogger(__name__)

CHAT_PATH = "/v1/chat/completions"


class ChatFastPath:
    """An ASGI app: the chat endpoint directly, the rest through `app`."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        if path == CHAT_PATH and method == "POST":
            handler = chat_completions
        elif (
            method == "GET"
            and path.startswith(STREAM_PREFIX)
            and "/" not in path[len(STREAM_PREFIX) :]
        ):
            session_id = path[len(STREAM_PREFIX) :]

            async def handler(request: Request) -> Response:
                return await stream(request, session_id)
        else:
            await self.app(scope, receive, send)
            return
        scope["app"] = self.app
        try:
            response = await handler(Request(scope, receive))
        except EchoError as error:
            await send_error(send, error)
            return
        except Exception:
            log.exception("%s %s failed", method, path if handler is chat_completions else "stream")
            await send_error(send, EchoError("internal error"))
            return
        await response(scope, receive, send)
