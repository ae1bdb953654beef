"""An upstream SSE body's bytes -> its JSON payloads, read by read, synchronously.

`HttpProvider.stream` reads the body and hands each read to `PayloadDecoder.feed`, so a whole
upstream read is decoded in one call instead of passing event by event through a generator per
step. The stream ends at `data: [DONE]` or at the payload the adapter's `is_last` recognises
(`ended` turns true; what follows in that read is ignored). A line or event over the limit and a
payload that is not JSON are `EchoError`s naming the provider.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from echo_stream.errors import BrokenStream, UpstreamUnavailable
from echo_stream.providers.transport.errors import LimitExceeded, to_echo_error
from echo_stream.streaming.sse import SSEDecoder, SSEEvent, SSELimitExceeded

_DONE = b"[DONE]"


def malformed(provider: str, payload: Any) -> UpstreamUnavailable:
    """The 502 for an upstream payload of the wrong shape."""
    shown = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return BrokenStream(
        f"{provider} sent a malformed event: {shown[:200]!r}", code="upstream_malformed"
    )


class PayloadDecoder:
    """Feed it body reads; it returns the JSON payloads each read completes."""

    __slots__ = ("_decoder", "_is_last", "_limit", "_peeked", "_provider", "ended")

    def __init__(
        self, provider: str, max_event_bytes: int, is_last: Callable[[Any], bool] | None
    ) -> None:
        self._provider = provider
        self._decoder = SSEDecoder(max_event_bytes)
        self._limit = max_event_bytes
        self._is_last = is_last
        self.ended = False
        """True once the stream's end marker arrived."""
        self._peeked: tuple[bytes, list[Any]] | None = None
        """The last read `peek` parsed, and its payloads: `feed` of that same read uses them."""

    def feed(self, chunk: bytes) -> list[Any]:
        """The payloads `chunk` completes, up to the end marker."""
        peeked, self._peeked = self._peeked, None
        if peeked is not None and peeked[0] is chunk:  # parsed by `peek`, which the relay left
            return peeked[1]
        try:
            events = self._decoder.feed(chunk)
        except SSELimitExceeded as exc:
            raise to_echo_error(self._provider, LimitExceeded(str(exc))) from exc
        return self._until_end(events) if events else []

    def at_boundary(self, size: int) -> bool:
        """Whether a read of `size` bytes made of whole events would be decoded with nothing
        carried over: the stream not ended, nothing pending, the read within the event limit."""
        return not self.ended and size <= self._limit and self._decoder.idle()

    def peek(self, chunk: bytes) -> list[Any] | None:
        """The payloads of a read that `feed` would decode with no state kept and no end marker
        in it (whole JSON `data:` events, nothing pending); None for anything else, including a
        payload that is not JSON (`feed` then says so), and anything after the end marker.
        Changes nothing that `feed` reads, except that `feed` of this same read (the same object)
        returns these payloads instead of parsing them again."""
        if self.ended:
            return None
        events = self._decoder.peek(chunk)
        if not events:
            return None
        try:
            payloads, ended = self._payloads(events)
        except UpstreamUnavailable:  # not JSON: `feed` raises it
            return None
        if ended:
            return None
        self._peeked = (chunk, payloads)
        return payloads

    def flush(self) -> list[Any]:
        """At the end of the body: the payload of a last event with no blank line after it."""
        try:
            events = self._decoder.flush()
        except SSELimitExceeded as exc:
            raise to_echo_error(self._provider, LimitExceeded(str(exc))) from exc
        return self._until_end(events)

    def _until_end(self, events: list[SSEEvent]) -> list[Any]:
        payloads, ended = self._payloads(events)
        if ended:
            self.ended = True
        return payloads

    def _payloads(self, events: list[SSEEvent]) -> tuple[list[Any], bool]:
        """The events' JSON payloads up to the end marker, and whether it came (the payload
        `is_last` recognises is included, `[DONE]` is not); a payload that is not JSON raises."""
        payloads: list[Any] = []
        is_last, provider = self._is_last, self._provider
        for _, data in events:
            if data == _DONE:
                return payloads, True
            try:
                payload = orjson.loads(data)
            except orjson.JSONDecodeError as exc:
                raise malformed(provider, data) from exc
            payloads.append(payload)
            if is_last is not None and is_last(payload):
                return payloads, True
        return payloads, False
