"""The first-token guard (`streaming.pipeline.first_event`): an answer in time, an empty
stream, silence past the deadline, a cancellation from outside (generous margins: the box is
loaded; no timing asserts)."""

from __future__ import annotations

import asyncio

import pytest

from echo_stream.errors import UpstreamTimeout
from echo_stream.events import FLUSH, EventStream, TextDelta
from echo_stream.streaming.pipeline import first_event


async def _after(delay: float, *, flushes: int = 0) -> EventStream:
    for _ in range(flushes):
        yield FLUSH
    await asyncio.sleep(delay)
    yield TextDelta("hi")


async def test_the_first_event_in_time_is_returned_past_flushes() -> None:
    assert await first_event(_after(0, flushes=2), 30, "p") == TextDelta("hi")
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


async def test_an_empty_stream_is_none() -> None:
    async def empty() -> EventStream:
        return
        yield  # an async generator that yields nothing

    assert await first_event(empty(), 30, "p") is None


async def test_silence_past_the_deadline_is_upstream_timeout() -> None:
    with pytest.raises(UpstreamTimeout, match="first-token timeout"):
        await first_event(_after(30, flushes=1), 0.05, "p")
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0  # its own cancel taken back


async def test_cancelling_from_outside_stays_a_cancellation() -> None:
    task = asyncio.ensure_future(first_event(_after(30), 30, "p"))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
