"""EchoV2's wire format from events."""

from __future__ import annotations

import json

import pytest

from echo_stream.errors import EchoError, UpstreamUnavailable
from echo_stream.events import (
    FLUSH,
    AdBlock,
    Event,
    EventStream,
    Finish,
    ReasoningDelta,
    TextDelta,
    Usage,
)
from echo_stream.faces.echov2 import collect_echov2, encode_echov2

IDS = {"conversation_id": "conv_1", "message_id": "msg_1"}


async def _stream(items: list[Event], fail: EchoError | None = None) -> EventStream:
    for item in items:
        yield item
    if fail is not None:
        raise fail


def _events(raw: bytes) -> list[dict[str, object]]:
    assert raw.endswith(b"\n\n")
    return [json.loads(block.removeprefix(b"data: ")) for block in raw.split(b"\n\n") if block]


async def test_one_content_event_per_delta_then_done() -> None:
    items: list[Event] = [TextDelta("Hel"), TextDelta("lo"), FLUSH,
                          AdBlock("[ad]", ad_id="a"), Finish("stop"), Usage(5, 2, 7), FLUSH]  # fmt: skip
    writes = [w async for w in encode_echov2(_stream(items), IDS)]
    assert len(writes) == 3  # one write per FLUSH, the done event with the last
    events = _events(b"".join(writes))
    assert events[:3] == [{"chunk": "Hel", "type": "content"}, {"chunk": "lo", "type": "content"},
                          {"chunk": "[ad]", "type": "content"}]  # fmt: skip
    assert events[3] == {"type": "done", **IDS, "finish_reason": "stop",
                         "usage": {"input_tokens": 5, "output_tokens": 2, "total_tokens": 7}}  # fmt: skip


async def test_failure_after_first_byte_is_an_error_event() -> None:
    stream = _stream([TextDelta("part"), FLUSH], UpstreamUnavailable("reset by peer"))
    events = _events(b"".join([w async for w in encode_echov2(stream, IDS)]))
    assert events == [
        {"chunk": "part", "type": "content"},
        {"type": "error", "message": "reset by peer"},
    ]


async def test_failure_before_first_byte_propagates() -> None:
    with pytest.raises(UpstreamUnavailable):
        async for _ in encode_echov2(_stream([], UpstreamUnavailable("down")), IDS):
            pass


async def test_a_stream_without_finish_ends_in_error() -> None:
    events = _events(
        b"".join([w async for w in encode_echov2(_stream([TextDelta("x"), FLUSH]), IDS)])
    )
    assert events[-1]["type"] == "error"


async def test_non_streamed_answer_collects_shown_text() -> None:
    items: list[Event] = [TextDelta("A. "), AdBlock("[ad]"), TextDelta("B."), Finish("length")]
    body = await collect_echov2(_stream(items), IDS)
    assert body == {"response": "A. [ad]B.", **IDS, "finish_reason": "length", "usage": None}


async def test_reasoning_is_left_out_of_the_stream_and_the_collected_answer() -> None:
    items: list[Event] = [ReasoningDelta("hmm"), FLUSH, TextDelta("Yes."), Finish("stop"),
                          Usage(1, 2, 3), FLUSH]  # fmt: skip
    events = _events(b"".join([w async for w in encode_echov2(_stream(items), IDS)]))
    assert [e["type"] for e in events] == ["content", "done"]
    assert events[0]["chunk"] == "Yes." and events[1]["usage"] == {
        "input_tokens": 1, "output_tokens": 2, "total_tokens": 3}  # fmt: skip
    body = await collect_echov2(_stream(items), IDS)
    assert body["response"] == "Yes."
