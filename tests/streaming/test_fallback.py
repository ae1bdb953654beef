"""The one retry of a stream that fails before its first event."""

from __future__ import annotations

import pytest

from echo_stream.errors import (
    EchoError,
    InvalidRequest,
    RateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from echo_stream.events import Event, EventStream, Finish, TextDelta
from echo_stream.streaming.fallback import avoidable, with_fallback


async def _stream(items: list[Event], fail: EchoError | None = None) -> EventStream:
    for item in items:
        yield item
    if fail is not None:
        raise fail


class Retry:
    def __init__(self, items: list[Event]) -> None:
        self.items = items
        self.calls = 0

    def __call__(self) -> EventStream:
        self.calls += 1
        return _stream(self.items)


async def _drain(stream: EventStream) -> list[Event]:
    return [e async for e in stream]


@pytest.mark.parametrize("error", [UpstreamUnavailable("reset")])
async def test_failure_before_first_event_is_retried_once(error: EchoError) -> None:
    retry = Retry([TextDelta("whole answer"), Finish("stop")])
    events = await _drain(with_fallback(_stream([], error), retry))
    assert events == [TextDelta("whole answer"), Finish("stop")]
    assert retry.calls == 1


@pytest.mark.parametrize(
    "error",
    [
        RateLimited("slow down"),
        InvalidRequest("bad"),
        UpstreamRejected("bad model"),
        # The provider may still be answering the first request: a second would bill twice.
        UpstreamTimeout("slow"),
    ],
)
async def test_failures_a_retry_cannot_avoid_pass_through(error: EchoError) -> None:
    retry = Retry([TextDelta("never")])
    with pytest.raises(type(error)):
        await _drain(with_fallback(_stream([], error), retry))
    assert retry.calls == 0
    assert not avoidable(error)


async def test_failure_after_the_first_event_is_not_retried() -> None:
    retry = Retry([TextDelta("never")])
    stream = with_fallback(_stream([TextDelta("part")], UpstreamUnavailable("reset")), retry)
    seen: list[Event] = []
    with pytest.raises(UpstreamUnavailable):
        async for event in stream:
            seen.append(event)
    assert seen == [TextDelta("part")] and retry.calls == 0


async def test_the_retry_failing_too_reports_its_error() -> None:
    def failing() -> EventStream:
        return _stream([], UpstreamUnavailable("still down"))

    with pytest.raises(UpstreamUnavailable, match="still down"):
        await _drain(with_fallback(_stream([], UpstreamUnavailable("reset")), failing))
