"""Serves `POST /v1/chat/completions` (and Lobe's `POST /api/chat`) straight off the ASGI scope.

The route stays declared in FastAPI (for its OpenAPI description and for any other path), but
FastAPI's middleware stack wraps every `send` of a response in several layers of coroutines;
on a streamed answer that is a cost per token. This wrapper hands the hot path directly to the
chat handler, with the same error translation, and passes everything else to FastAPI.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from echo_stream.api.chat import chat_completions
from echo_stream.api.lobe import lobe_chat
from echo_stream.errors import EchoError
from echo_stream.streaming.response import send_error

log = logging.getLogger(__name__)

CHAT_PATH = "/v1/chat/completions"
LOBE_PATH = "/api/chat"
_HANDLERS = {CHAT_PATH: chat_completions, LOBE_PATH: lobe_chat}


class ChatFastPath:
    """An ASGI app: the streaming chat endpoints directly, the rest through `app`."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = _HANDLERS.get(scope["path"]) if scope["type"] == "http" else None
        if handler is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        scope["app"] = self.app
        try:
            response = await handler(Request(scope, receive))
        except EchoError as error:
            await send_error(send, error)
            return
        except Exception:
            log.exception("chat request failed")
            await send_error(send, EchoError("internal error"))
            return
        await response(scope, receive, send)
