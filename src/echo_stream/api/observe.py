"""The outermost ASGI middleware: a request id and a record for every request, one log line and
the metrics at its end, usage and token counts once an answer is done.

It wraps every face (the chat fast path and FastAPI alike), so an endpoint gets request ids,
logs and metrics without doing anything: deeper layers fill the record they find in the
`ContextVar` (see `ops.record`). It adds nothing per chunk on the chat fast path, whose
responses add the request's headers themselves (`ops.record.response_started`); other
responses get them from a thin wrapper around `send`. Being outermost, it is also where the
server's direct body writer is granted (`http_protocol.BodyWriter`): only when nothing wraps the
app's `send` from outside.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from echo_stream.api.fastpath import adds_own_headers, fast_route
from echo_stream.http_protocol import body_writer
from echo_stream.ops.logs import ACCESS_LOGGER, log_request
from echo_stream.ops.record import (
    RequestRecord,
    new_request_id,
    reset_record,
    response_started,
    set_record,
    valid_request_id,
)
from echo_stream.ops.runtime import Operations

log = logging.getLogger(__name__)
_REQUEST_ID = b"x-request-id"
_CLIENT_CLOSED = 499
"""Logged when the client left before any response started (nginx's convention)."""


def _incoming_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == _REQUEST_ID:
            text = value.decode("latin-1")
            return text if valid_request_id(text) else None
    return None


def route_label(scope: Scope) -> str:
    """The route's template (`/v1/ads/click/{impression_id}`), so ids never become labels."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    return fast_route(scope["path"]) or "unmatched"


class RequestObserver:
    """Wraps the whole app; see the module docstring."""

    def __init__(self, app: ASGIApp, ops: Operations) -> None:
        self.app = app
        self.ops = ops
        self.log = logging.getLogger(ACCESS_LOGGER)
        self._day = (0, "")
        """The UTC day number and its `YYYY-MM-DD`, formatted once a day rather than per request."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if (writer := body_writer(scope)) is not None:
            writer.grant(send)  # the outermost layer: is anything around the app watching?
        record = RequestRecord(
            _incoming_id(scope) or new_request_id(), scope["method"], scope["path"]
        )
        token = set_record(record)

        async def observed_send(message: Message) -> None:
            if record.status:  # the body's chunks: passed straight on
                await send(message)
                return
            record.status = message["status"]
            headers = [*message.get("headers", ()), *response_started(record.status)]
            await send({**message, "headers": headers})

        # The chat, Lobe and session-stream routes answer through the gateway's response
        # classes, which add the request's headers themselves: no wrapper around each of
        # their (per-token) writes.
        fast = adds_own_headers(scope["method"], scope["path"])
        try:
            await self.app(scope, receive, send if fast else observed_send)
        except BaseException as exc:
            record.status = record.status or 500
            record.error_type = record.error_type or type(exc).__name__
            raise
        finally:
            reset_record(token)
            record.status = record.status or _CLIENT_CLOSED
            record.route = route_label(scope)
            self._finish(record)
        if record.provider is not None and record.status == 200:
            # After the response's last byte, so it delays no client; inline rather than in a
            # task of its own, which would cost more than the in-memory bookkeeping itself.
            await self._account(record)

    def _finish(self, record: RequestRecord) -> None:
        record.duration_s = record.elapsed()
        log_request(self.log, record)
        try:
            self.ops.metrics.observe(record)
        except Exception:
            log.exception("updating metrics failed")

    async def _account(self, record: RequestRecord) -> None:
        """Usage per key, model and day, and the answer's tokens against its limits."""
        tokens_in, tokens_out = record.input_tokens or 0, record.output_tokens or 0
        try:
            day = self._today()
            key = record.key_id or "anonymous"
            await self.ops.usage.record(day, key, record.model or "", tokens_in, tokens_out)
            if self.ops.limiter is not None:
                await self.ops.limiter.spend(record.key_id, record.user, tokens_in + tokens_out)
        except Exception:
            log.exception("recording usage failed")

    def _today(self) -> str:
        now = time.time()
        number = int(now // 86400)
        if self._day[0] != number:
            self._day = (number, time.strftime("%Y-%m-%d", time.gmtime(now)))
        return self._day[1]

    async def aclose(self) -> None:
        """Hand the last batched counts to the metrics."""
        self.ops.metrics.flush()
