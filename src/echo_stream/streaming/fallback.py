"""Fallback: a stream that fails before its first event is asked once more, collected whole.

EchoV2's front end falls back to a non-streamed request when streaming fails; the gateway does
it for the client. Only failures a fresh, buffered call can avoid qualify (a timeout, a broken
or refused stream, a proxy that cut the connection); a rejected request, a missing model or a
rate limit would fail again, so they pass through. After the first event nothing is retried:
the client has already seen part of an answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import aclosing

from echo_stream.errors import EchoError, UpstreamRejected, UpstreamTimeout, UpstreamUnavailable
from echo_stream.events import EventStream

log = logging.getLogger(__name__)


def avoidable(error: EchoError) -> bool:
    """True for failures that a second, non-streamed attempt may not meet."""
    if isinstance(error, UpstreamTimeout | UpstreamUnavailable):
        return True
    # e.g. OpenAI's "organization must be verified to stream this model" (param: stream).
    return isinstance(error, UpstreamRejected) and (
        error.param == "stream" or "stream" in error.message.lower()
    )


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
