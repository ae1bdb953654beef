"""The pipeline, top to bottom: provider events -> first-token guard -> ad filter -> output.

Each stage is an async generator from events to events; only the last one (the chunk encoder
or the collector) knows the wire format. One shortcut, for the OpenAI endpoint's plain answers
(no stage between the provider and the encoder): once the response has started, reads that are
only choice 0's next pieces of text are decoded, encoded and written by `streaming.relay` from
the upstream connection's callback, with these same functions, without waking the pipeline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import aclosing

from echo_stream.errors import UpstreamTimeout
from echo_stream.events import FLUSH, Event, EventStream

Stage = Callable[[EventStream], EventStream]


async def first_event_within(events: EventStream, seconds: float, provider: str) -> EventStream:
    """Fail with `UpstreamTimeout` if the provider yields nothing for `seconds`.

    The gap between later chunks is bounded by the HTTP read timeout instead, which costs
    nothing per chunk.
    """
    async with aclosing(events):
        first = await first_event(events, seconds, provider)
        if first is None:
            return
        yield first
        async for event in events:
            yield event


async def first_event(events: EventStream, seconds: float, provider: str) -> Event | None:
    """The first event that is not `FLUSH` (None if the stream ends first), within `seconds`."""
    try:
        async with asyncio.timeout(seconds):
            first = await anext(events)
            while first is FLUSH:  # an upstream read with no answer in it yet
                first = await anext(events)
    except StopAsyncIteration:
        return None
    except TimeoutError:
        raise UpstreamTimeout(
            f"{provider} sent no answer within {seconds:g} s (first-token timeout)"
        ) from None
    return first


def build_pipeline(source: EventStream, stages: list[Stage]) -> EventStream:
    """Chain `stages` after `source`, in order."""
    events = source
    for stage in stages:
        events = stage(events)
    return events
