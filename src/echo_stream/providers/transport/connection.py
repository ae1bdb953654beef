"""One upstream HTTP/1.1 connection for `FastClient`: an asyncio protocol around httptools' C
parser, with the per-chunk path kept to a deque append and, only when a reader waits, one
future result. A response may install a relay (`streaming.relay`): a read's body is then offered
to it before the waiting reader is woken, and what it takes never reaches the reader.

Errors are those of `transport.errors`: `ReadTimeout` after read_timeout seconds of silence,
`ConnectionBroken` for resets and unparsable responses, `LimitExceeded` for a response head over
`max_head_bytes` (interim 1xx heads count towards it).

The read timeout costs nothing per chunk: `data_received` notes `loop.time()`, and one
`call_at` watchdog wakes at `last + read_timeout`, re-arming itself while bytes keep arriving
and failing the request only when the silence really was that long. The watchdog outlives the
response that armed it: a pooled connection's next request (which notes its own `last`) finds it
still pending and re-uses it, so back-to-back requests pay for no timer of their own (a uvloop
timer and its cancel cost ~2 µs); it lapses when it wakes to an idle connection.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Final, Protocol, cast

import httptools

from echo_stream.providers.transport.errors import (
    ConnectionBroken,
    LimitExceeded,
    ReadTimeout,
    TransportError,
)

log = logging.getLogger(__name__)

Relay = Callable[[bytes], bool]
"""Takes a read's body bytes and deals with them itself (True), or leaves them to the reader."""

PAUSE_READING_AT: Final = 1 << 20
"""Buffered unread body bytes above which the socket stops being read until the reader drains."""

# uvloop rounds timers to the millisecond; a watchdog this close to its deadline has expired.
_TIMER_SLACK: Final = 0.001


class ConnectionOwner(Protocol):
    """The pool a connection reports to."""

    def release(self, conn: Connection) -> None:
        """Take back a connection whose response ended cleanly with keep-alive."""

    def discard(self, conn: Connection) -> None:
        """Forget a connection that is closed or closing; called exactly once per connection."""


class _HeadTooLarge(Exception):
    """Raised inside the parser when a complete head is over `max_head_bytes`."""


class _UnexpectedMessage(Exception):
    """Bytes arrived while no response was expected; raised inside the parser to stop it."""


class Connection(asyncio.Protocol):
    """A keep-alive connection carrying one request at a time.

    Attributes are public for `fastclient`'s response and pool; the class itself is internal.
    """

    __slots__ = (
        "active",
        "buffered",
        "chunks",
        "complete",
        "counted",
        "error",
        "got_bytes",
        "head_bytes",
        "head_parsed",
        "headers",
        "headers_done",
        "idle_since",
        "interim",
        "keep_alive",
        "last",
        "loop",
        "lost",
        "max_head_bytes",
        "owner",
        "parser",
        "paused",
        "read_timeout",
        "reason",
        "relay",
        "reusable",
        "status",
        "transport",
        "until_close",
        "waiter",
        "watchdog",
    )

    def __init__(
        self, owner: ConnectionOwner, read_timeout: float, max_head_bytes: int = 64 * 1024
    ) -> None:
        self.owner = owner
        self.loop = asyncio.get_running_loop()
        self.read_timeout = read_timeout
        self.max_head_bytes = max_head_bytes
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.counted = True  # holds one of the pool's max_connections slots until discarded
        self.lost = False
        self.reusable = True
        self.active = False
        self.watchdog: asyncio.TimerHandle | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.chunks: deque[bytes] = deque()
        self.last = 0.0
        self.idle_since = 0.0
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.reason = ""
        self.headers: dict[str, str] = {}
        self.headers_done = False
        self.head_bytes = 0
        self.head_parsed = 0
        self.interim = False
        self.until_close = False
        self.complete = False
        self.keep_alive = False
        self.error: TransportError | None = None
        self.got_bytes = False
        self.paused = False
        self.buffered = 0
        self.chunks.clear()
        self.relay: Relay | None = None
        """Offered each read's body while the reader waits for one (see `_offer`)."""

    # --- driven by the client ----------------------------------------------------------------

    def usable(self) -> bool:
        """Whether an idle connection can carry another request."""
        transport = self.transport
        return (
            self.reusable and not self.lost and transport is not None and not transport.is_closing()
        )

    def start(self, request: bytes) -> None:
        """Send one request and start the read-timeout watchdog."""
        transport = self.transport
        if self.lost or transport is None or transport.is_closing():
            raise ConnectionBroken("the connection closed before the request was sent")
        self._reset()
        self.active = True
        transport.write(request)
        self.last = now = self.loop.time()
        if self.watchdog is None:
            self.watchdog = self.loop.call_at(now + self.read_timeout, self._on_watchdog)

    async def wait(self) -> None:
        """Sleep until the parser or the connection has news for the reader."""
        waiter = self.loop.create_future()
        self.waiter = waiter
        try:
            await waiter
        finally:
            self.waiter = None

    async def wait_headers(self) -> None:
        """Return once the final status line and headers are parsed."""
        while not self.headers_done:
            if self.error is not None:
                raise self.error
            await self.wait()

    def drain(self) -> bytes:
        """Take every buffered body byte (the caller checked there is some)."""
        chunks = self.chunks
        data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self.buffered = 0
        if self.paused:
            self._resume_reading()
        return data

    def finish(self) -> None:
        """End the current request: back to the pool if the body ended with keep-alive."""
        if self.complete and self.keep_alive and self.reusable and not self.lost:
            self.active = False  # the watchdog stays armed for the next request (module doc)
            self.chunks.clear()  # a body the caller did not read to the end
            self.buffered = 0
            if self.paused:  # an idle connection must keep reading to notice the peer's close
                self._resume_reading()
            self.owner.release(self)
        else:
            self.abort()  # while still active, so a reader blocked in another task wakes
            self.active = False

    def abort(self) -> None:
        """Close the socket now, neither draining the body nor flushing writes; idempotent."""
        self.reusable = False
        self._stop_watchdog()
        if self.active and not self.complete and self.error is None:
            self.error = ConnectionBroken("the connection was closed by the client")
            self._wake()
        transport = self.transport
        if transport is not None and not self.lost and not transport.is_closing():
            transport.abort()
        if self.counted:
            self.owner.discard(self)

    # --- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.last = self.loop.time()
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as exc:
            if self.head_parsed > self.max_head_bytes:
                self._fail(LimitExceeded(f"response head over {self.max_head_bytes} bytes"))
            else:
                self._fail(ConnectionBroken(f"unparsable response from upstream: {exc}"))
            return
        if not self.headers_done:
            # httptools buffers a header until its end, so an endless head is caught here,
            # counting every byte that arrived before the final head was complete.
            self.head_bytes += len(data)
            if self.head_bytes > self.max_head_bytes:
                self._fail(LimitExceeded(f"response head over {self.max_head_bytes} bytes"))
        elif self.relay is not None and self.chunks:
            self._offer(self.relay)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._stop_watchdog()
        if self.active and not self.complete and self.error is None:
            if exc is None and self.headers_done and self.until_close:
                self.complete = True  # a body delimited by the end of the connection
            elif exc is None:
                self.error = ConnectionBroken("upstream closed the connection mid-response")
            else:
                self.error = ConnectionBroken(f"connection lost: {exc!r}")
            self._wake()
        if self.counted:
            self.owner.discard(self)

    # --- httptools callbacks -----------------------------------------------------------------

    def on_message_begin(self) -> None:
        if not self.active or self.complete:
            raise _UnexpectedMessage

    def on_status(self, reason: bytes) -> None:
        self.head_parsed += len(reason) + 16
        self.reason = reason.decode("latin-1")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_parsed += len(name) + len(value) + 4  # ": " and CRLF
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        headers = self.headers
        headers[key] = f"{headers[key]}, {text}" if key in headers else text

    def on_headers_complete(self) -> None:
        if self.head_parsed > self.max_head_bytes:
            raise _HeadTooLarge  # stops the parser; data_received reports LimitExceeded
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:  # interim (100 Continue, 103): skip it
            self.interim = True
            self.headers = {}
            self.reason = ""
            return
        headers = self.headers
        self.status = status
        self.until_close = (
            status not in (204, 304)
            and "content-length" not in headers
            and "chunked" not in headers.get("transfer-encoding", "").lower()
        )
        self.headers_done = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > PAUSE_READING_AT and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        if self.relay is None:  # (else the whole read is offered to it first: `_offer`)
            waiter = self.waiter
            if waiter is not None:
                self.waiter = None
                if not waiter.done():
                    waiter.set_result(None)

    def on_message_complete(self) -> None:
        if self.interim:
            self.interim = False
            return
        self.complete = True
        self.keep_alive = self.parser.should_keep_alive()
        self._wake()

    # --- internals ---------------------------------------------------------------------------

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _offer(self, relay: Relay) -> None:
        """A read's body, while the reader waits for one: to `relay` first, then (if it leaves
        it) to the reader. Only a waiting reader's bytes are offered: one that is busy has not
        yet dealt with everything before them."""
        waiter = self.waiter
        if waiter is None or waiter.done():  # (done: the reader was cancelled, not yet gone)
            return
        chunks = self.chunks
        if len(chunks) > 1:  # one object, so the reader is handed the very bytes offered
            data = b"".join(chunks)
            chunks.clear()
            chunks.append(data)
        data = chunks[0]
        try:
            taken = relay(data)
        except Exception:  # a bug: the reader goes on with these bytes, the relay is dropped
            log.exception("the relay failed; the reader takes over")
            self.relay, taken = None, False
        if taken:
            chunks.clear()
            self.buffered = 0
            if self.paused:
                self._resume_reading()
            return
        self.waiter = None
        if not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: TransportError) -> None:
        if self.active and not self.complete and self.error is None:
            self.error = error
            self._wake()
        self.abort()

    def _resume_reading(self) -> None:
        self.paused = False
        self.last = self.loop.time()  # the silence while paused was ours, not upstream's
        if self.transport is not None:
            self.transport.resume_reading()

    def _stop_watchdog(self) -> None:
        if self.watchdog is not None:
            self.watchdog.cancel()
            self.watchdog = None

    def _on_watchdog(self) -> None:
        self.watchdog = None
        if not self.active or self.complete or self.lost:
            return
        now = self.loop.time()
        # While paused the reader is behind; upstream's silence is then not a timeout.
        deadline = now + self.read_timeout if self.paused else self.last + self.read_timeout
        if deadline - now > _TIMER_SLACK:
            self.watchdog = self.loop.call_at(deadline, self._on_watchdog)
            return
        waiting_for = "the response body" if self.headers_done else "the response headers"
        self._fail(ReadTimeout(f"no bytes for {self.read_timeout:g}s waiting for {waiting_for}"))
