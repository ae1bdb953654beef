"""uvicorn's httptools protocol, sending each response's head together with its first body bytes.

uvicorn writes a response's status line and headers as soon as the app sends
`http.response.start`, then each body message as another write: two system calls, and two
packets, before the client has its first byte of a stream. Here the head is held until the first
body bytes are written, and leaves with them in one write; if the app sends no body within the
same turn of the event loop, the head goes out alone at the end of that turn, so nothing ever
waits for the body. Everything else is uvicorn's own code.

It also offers each request a `BodyWriter` (ASGI scope extension `BODY_WRITER`): a synchronous
way to write one more piece of a started, chunked response body (streamed responses write their
middle this way, and the session face's generation feeds its viewer without waking the viewer's
task per piece). It writes only when that cannot block or break anything, and only when no
middleware around the app would miss the bytes; otherwise it says no and the caller uses the
ordinary `send`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class _HeldHead:
    """A transport whose first write (the head) is held until the next write or the loop turns;
    then it hands the response cycle back its own transport, so later writes go straight there."""

    __slots__ = ("_cycle", "_held", "_loop", "_started", "_transport")

    def __init__(
        self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop, cycle: Any
    ) -> None:
        self._transport = transport
        self._loop = loop
        self._cycle = cycle
        self._held: bytes | None = None
        self._started = False

    def write(self, data: bytes) -> None:
        if not self._started:
            self._started = True
            self._held = data
            self._loop.call_soon(self._flush)
            return
        held = self._held
        if held is not None:
            self._held = None
            data = held + data
        self._cycle.transport = self._transport
        self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def _flush(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._cycle.transport = self._transport
            if not self._transport.is_closing():
                self._transport.write(held)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


BODY_WRITER = "echo.body_writer"
"""The scope extension (in `scope["extensions"]`) holding the request's `BodyWriter`."""


def body_writer(scope: Any) -> BodyWriter | None:
    """The request's `BodyWriter`, when the server offers one (the gateway's own does)."""
    extensions = scope.get("extensions")
    return None if extensions is None else extensions.get(BODY_WRITER)


class BodyWriter:
    """Writes pieces of a response's body straight to the connection, when it safely can.

    It bypasses every `send` between the server and the response, so it writes nothing until
    `grant` is told the `send` the app was called with and that is the server's own: the app's
    outermost layer (`api.observe`) asks, since the gateway's own layers inside it never look at
    body messages, while a middleware around the app (one that compresses or records bodies)
    must see every chunk.
    """

    __slots__ = ("_cycle", "granted")

    def __init__(self, cycle: Any) -> None:
        self._cycle = cycle
        self.granted = False

    def grant(self, send: Any) -> bool:
        """Allow writes if `send` is the server's own (nothing wraps it); whether it is."""
        self.granted = send == self._cycle.send
        return self.granted

    def ready(self) -> bool:
        """Whether `write` would write now (see there)."""
        cycle = self._cycle
        return (
            self.granted
            and cycle.chunked_encoding is True
            and cycle.response_started
            and not cycle.response_complete
            and not cycle.disconnected
            and not cycle.flow.write_paused
            and not cycle.transport.is_closing()  # (before `disconnected` is set: a write raises)
        )

    def write(self, data: bytes) -> bool:
        """Write `data` as the next chunk of the body (never the last); False, writing nothing,
        unless granted, the response has started, is chunked, is not complete, the client is
        still there and the connection is not pushing back: then `send` (which waits) is the
        way. Empty `data` writes nothing (an empty chunk would end the body)."""
        if not data:
            return True
        if not self.ready():
            return False
        self.write_ready(data)
        return True

    def write_ready(self, data: bytes) -> None:
        """`write` for a caller that `ready()` has just answered True, with nothing run since
        that could change it: the framing and the transport's write only. `data` must not be
        empty."""
        # uvicorn's own chunk framing (`RequestResponseCycle.send`).
        self._cycle.transport.write(b"%x\r\n%b\r\n" % (len(data), data))


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """The protocol uvicorn serves with (`__main__`); see the module docstring."""

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and cycle.transport is self.transport:
            cycle.transport = _HeldHead(self.transport, self.loop, cycle)  # type: ignore[assignment]
            scope: Any = cycle.scope
            scope.setdefault("extensions", {})[BODY_WRITER] = BodyWriter(cycle)
