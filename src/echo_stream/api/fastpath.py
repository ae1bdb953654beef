"""Serves the hot endpoints straight off the ASGI scope (`POST /v1/chat/completions`, Lobe's
`POST /api/chat`, the session face's `POST /init-stream` and `GET /stream/{id}`), and is the
gateway's last error boundary.

The route stays declared in FastAPI (for its OpenAPI description and for any other path), but
FastAPI's middleware stack wraps every `send` of a response in several layers of coroutines;
on a streamed answer that is a cost per token. This wrapper hands the hot path directly to the
chat handler, with the same error translation, and passes everything else to FastAPI.

Whatever escapes before a response has started becomes OpenAI's error JSON: an `EchoError` with
its own status, anything else (a bug) a 500 `server_error` carrying a request id that is logged
with the traceback. The same catch-all is installed on the FastAPI app for its routes.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from functools import partial

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from echo_stream.api.chat import chat_completions
from echo_stream.api.lobe import lobe_chat
from echo_stream.api.session import (
    INIT_PATH,
    STREAM_PREFIX,
    init_stream,
    is_stream_request,
    stream,
)
from echo_stream.errors import EchoError
from echo_stream.ops.record import current_request_id
from echo_stream.streaming.response import error_response, send_error

log = logging.getLogger(__name__)

CHAT_PATH = "/v1/chat/completions"
LOBE_PATH = "/api/chat"

Handler = Callable[[Request], Awaitable[Response]]

_SELF_HEADED = frozenset({CHAT_PATH, LOBE_PATH})
"""POST routes whose every answer, errors included, adds the request's headers itself."""

_POST_HANDLERS: dict[str, Handler] = {
    CHAT_PATH: chat_completions,
    LOBE_PATH: lobe_chat,
    INIT_PATH: init_stream,
}


def fast_handler(method: str, path: str) -> Handler | None:
    """The handler that serves this request directly, or None (FastAPI serves it)."""
    if method == "POST":
        return _POST_HANDLERS.get(path)
    if is_stream_request(method, path):
        return partial(stream, session_id=path[len(STREAM_PREFIX) :])
    return None


def adds_own_headers(method: str, path: str) -> bool:
    """Whether every response of this route comes from the gateway's own response classes,
    which add the request's headers themselves (`ops.record.response_started`): the observer
    then need not wrap each of its (per-token) writes."""
    return (method == "POST" and path in _SELF_HEADED) or is_stream_request(method, path)


def internal_error(where: str, exc: BaseException) -> EchoError:
    """A 500 for a bug: logs the traceback under a fresh request id that the client also sees."""
    # The request's own id (the observer returns it on every response); a fresh one outside.
    request_id = current_request_id()
    headers = {}
    if request_id is None:
        request_id = "req_" + secrets.token_hex(12)
        headers = {"x-request-id": request_id}
    log.error("unhandled error in %s (request id %s)", where, request_id, exc_info=exc)
    return EchoError(
        f"The server had an error while processing your request (request id {request_id})",
        code="internal_error",
        headers=headers,
    )


async def _on_unhandled(request: Request, exc: Exception) -> Response:
    return error_response(internal_error(request.url.path, exc))


def fast_route(path: str) -> str | None:
    """The route template of a fast-path request, for logs and metrics (ids never labels)."""
    if path in _POST_HANDLERS:
        return path
    if path.startswith(STREAM_PREFIX):
        return STREAM_PREFIX + "{session_id}"
    return None


class ChatFastPath:
    """An ASGI app: the hot endpoints directly, the rest through `app`."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        app.add_exception_handler(Exception, _on_unhandled)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = fast_handler(scope["method"], scope["path"]) if scope["type"] == "http" else None
        if handler is None:
            await self.app(scope, receive, send)
            return
        scope["app"] = self.app
        try:
            response = await handler(Request(scope, receive))
            await response(scope, receive, send)
        except EchoError as error:
            await _answer(send, error)
        except Exception as exc:
            await _answer(send, internal_error(scope["path"], exc))


async def _answer(send: Send, error: EchoError) -> None:
    # Responses send nothing before their first chunk is known, so this is normally the first
    # message; if a response did start, the server refuses a second start and there is
    # nothing more to say to this client.
    with contextlib.suppress(RuntimeError, OSError):
        await send_error(send, error)
