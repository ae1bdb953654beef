"""ASGI responses that watch for the client leaving and decide their status late.

`EventStreamResponse` waits for the first chunk before it sends headers: an upstream that fails
before answering (refused, rate-limited, timed out) becomes a proper HTTP error, while anything
after the first byte is the encoder's in-band error event. Both responses run their work beside
a watcher on `receive()`: when the client disconnects, the work is cancelled at once, which
closes the upstream request through the stages' `finally` blocks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from typing import Any

import orjson
from starlette.background import BackgroundTask
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from echo_stream.errors import EchoError
from echo_stream.http_protocol import BodyWriter, body_writer
from echo_stream.ops.record import response_started
from echo_stream.streaming.chunks import DONE

log = logging.getLogger(__name__)

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


def error_response_parts(error: EchoError) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """Status, headers and body of the JSON error response for `error`."""
    headers = [(b"content-type", b"application/json"), *response_started(error.status)]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    return error.status, headers, orjson.dumps(error.body())


def error_response(error: EchoError) -> Response:
    """The JSON error response for `error`, as a Starlette `Response` (for handlers)."""
    status, headers, body = error_response_parts(error)
    return Response(body, status_code=status, headers={k.decode(): v.decode() for k, v in headers})


async def send_error(send: Send, error: EchoError) -> None:
    """Answer with the JSON error response for `error`."""
    status, headers, body = error_response_parts(error)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _encode_headers(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


async def _cancel_on_disconnect(receive: Receive, task: asyncio.Task[Any]) -> bool:
    """Wait for the client to leave, then cancel `task`; True once it did so."""
    while (await receive())["type"] != "http.disconnect":
        pass
    task.cancel()
    return True


WATCH_AFTER_S = 0.05
"""How long a response runs before a task starts watching for the client leaving."""


class _DisconnectWatch:
    """Cancels `task` when the client leaves, watching only once the response has run for
    `WATCH_AFTER_S`: most short answers are over by then and never pay for a watcher task;
    a client that leaves sooner is noticed at that point."""

    __slots__ = ("_receive", "_task", "_timer", "_watcher")

    def __init__(self, receive: Receive, task: asyncio.Task[Any]) -> None:
        self._receive = receive
        self._task = task
        self._watcher: asyncio.Task[bool] | None = None
        self._timer: asyncio.TimerHandle | None = asyncio.get_running_loop().call_later(
            WATCH_AFTER_S, self._start
        )

    def _start(self) -> None:
        self._timer = None
        self._watcher = asyncio.ensure_future(_cancel_on_disconnect(self._receive, self._task))

    def stop(self) -> None:
        """Stop watching."""
        if self._timer is not None:
            self._timer.cancel()
        if self._watcher is not None:
            self._watcher.cancel()

    def cancelled_task(self) -> bool:
        """Whether the client left and this watch cancelled the task."""
        watcher = self._watcher
        return (
            watcher is not None
            and watcher.done()
            and not watcher.cancelled()
            and watcher.exception() is None
        )


async def run_until_disconnect(receive: Receive, work: Awaitable[None]) -> bool:
    """Run `work`, cancelling it if the client disconnects first; True if it ran to the end.

    `work` runs in the caller's own task (a task of its own plus `asyncio.wait` would cost
    more than most of a short request), watched as `_DisconnectWatch` says.
    """
    task = asyncio.current_task()
    assert task is not None
    watch = _DisconnectWatch(receive, task)
    try:
        await work
    except asyncio.CancelledError:
        if not watch.cancelled_task():
            raise  # cancelled from outside (shutdown), not by the client leaving
        task.uncancel()
        return False
    finally:
        watch.stop()
    if watch.cancelled_task():  # the client left as `work` ended, and `work` swallowed it
        task.uncancel()
        return False
    return True


class EventStreamResponse(Response):
    """An SSE response whose status is chosen once the first chunk (or error) is known."""

    def __init__(
        self, body: AsyncGenerator[bytes, None], headers: dict[str, str] | None = None
    ) -> None:
        self._body = body
        self._start_headers = SSE_HEADERS + _encode_headers(headers) if headers else SSE_HEADERS
        self.background: BackgroundTask | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        writer = body_writer(scope)
        async with aclosing(self._body):
            await run_until_disconnect(receive, self._stream(send, writer))

    async def _stream(self, send: Send, writer: BodyWriter | None) -> None:
        try:
            first = await anext(self._body)
        except EchoError as error:
            await send_error(send, error)
            return
        except StopAsyncIteration:
            first = b""
        headers = self._start_headers + response_started(200)
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        # The chunk carrying [DONE] is the last: ending the body with it saves one write.
        done = first.endswith(DONE)
        await send({"type": "http.response.body", "body": first, "more_body": not done})
        # The middle of the stream, one write per upstream read: straight to the connection
        # when the server offers that and it can go now, else (and for the end) through `send`.
        write = writer.write if writer is not None and writer.granted else None
        async for chunk in self._body:
            done = chunk.endswith(DONE)
            if done or write is None or not write(chunk):
                await send({"type": "http.response.body", "body": chunk, "more_body": not done})
        if not done:
            await send({"type": "http.response.body", "body": b"", "more_body": False})


class DeferredJSONResponse(Response):
    """A JSON response computed inside the ASGI call, so a disconnect cancels the work."""

    def __init__(
        self,
        compute: Callable[[], Awaitable[dict[str, Any]]],
        headers: dict[str, str] | None = None,
    ) -> None:
        self._compute = compute
        self._start_headers = _encode_headers(headers) if headers else []
        self.background: BackgroundTask | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await run_until_disconnect(receive, self._respond(send))

    async def _respond(self, send: Send) -> None:
        try:
            body = await self._compute()
        except EchoError as error:
            await send_error(send, error)
            return
        headers = [(b"content-type", b"application/json"), *self._start_headers]
        headers += response_started(200)
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": orjson.dumps(body)})
