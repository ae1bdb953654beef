"""The total and between-chunks budgets (generous margins: the box is loaded; no timing asserts)."""

from __future__ import annotations

import asyncio

import pytest

from echo_stream.errors import UpstreamTimeout
from echo_stream.events import FLUSH, Event, EventStream, Finish, TextDelta
from echo_stream.streaming.budget import within_budget


async def _paced(gaps: list[float]) -> EventStream:
    for n, gap in enumerate(gaps):
        await asyncio.sleep(gap)
        yield TextDelta(str(n))
    yield Finish("stop")


async def _drain(stream: EventStream) -> list[Event]:
    return [e async for e in stream]


async def test_a_stream_within_budget_passes_unchanged() -> None:
    events = await _drain(within_budget(_paced([0, 0.01, 0.01]), total=30, gap=10))
    assert events == [TextDelta("0"), TextDelta("1"), TextDelta("2"), Finish("stop")]


async def test_silence_between_chunks_times_out() -> None:
    stream = within_budget(_paced([0, 0, 30]), total=60, gap=0.2)
    seen: list[Event] = []
    with pytest.raises(UpstreamTimeout, match="between-chunks"):
        async for event in stream:
            seen.append(event)
    assert seen == [TextDelta("0"), TextDelta("1")]


async def test_the_first_chunk_is_bounded_by_the_total_only() -> None:
    # A first token slower than the gap budget is fine...
    events = await _drain(within_budget(_paced([0.3, 0]), total=30, gap=0.1))
    assert events[-1] == Finish("stop")
    # ...but not slower than the total.
    with pytest.raises(UpstreamTimeout, match="total"):
        await _drain(within_budget(_paced([30]), total=0.2, gap=0.1))


async def test_total_budget_cuts_a_steady_but_endless_stream() -> None:
    async def endless() -> EventStream:
        while True:
            await asyncio.sleep(0.01)
            yield TextDelta("x")
            yield FLUSH

    with pytest.raises(UpstreamTimeout, match="total"):
        await _drain(within_budget(endless(), total=0.3, gap=5))


async def test_a_slow_consumer_is_not_the_upstreams_fault() -> None:
    seen = []
    async for event in within_budget(_paced([0, 0, 0]), total=30, gap=0.1):
        seen.append(event)
        await asyncio.sleep(0.3)  # longer than the gap, but spent by the consumer
    assert seen[-1] == Finish("stop")


async def test_an_outside_cancellation_is_not_turned_into_a_timeout() -> None:
    task = asyncio.ensure_future(_drain(within_budget(_paced([30]), total=60, gap=10)))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
