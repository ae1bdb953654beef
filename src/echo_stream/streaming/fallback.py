"""Fallback: a stream that fails before its first event is asked once more, collected whole.

EchoV2's front end falls back to a non-streamed request when streaming fails; the gateway does
it for the client. Only failures a fresh call whose answer is collected whole can avoid qualify
(a broken or cut stream, a dropped connection, a 5xx); a rejected request, a missing model or a
rate limit would fail again, so they pass through. A first-token timeout passes through too: the
provider may still be working on the first request, and asking again would bill it twice.
After the first event nothing is retried: the client has already seen part of an answer. The
providers have one (streaming) transport, so the retry still streams from the upstream; it is
the client that gets it in one piece.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import aclosing

from echo_stream.errors import EchoError, UpstreamUnavailable
from echo_stream.events import EventStream

log = logging.getLogger(__name__)


def avoidable(error: EchoError) -> bool:
    """True for failures that a second attempt, collected whole, may not meet."""
    return isinstance(error, UpstreamUnavailable)


async def with_fallback(events: EventStream, retry: Callable[[], EventStream]) -> EventStream:
    """`events`, or, if it fails before its first event, `retry()`'s events delivered at once."""
    async with aclosing(events):
        try:
            first = await anext(events)
        except StopAsyncIteration:
            return
        except EchoError as error:
            if not avoidable(error):
                raise
            log.warning("stream failed before its first chunk (%s); retrying once", error.message)
            first = None
        if first is not None:
            yield first
            async for event in events:
                yield event
            return
    async with aclosing(retry()) as again:
        collected = [event async for event in again]
    for event in collected:
        yield event
