"""The Lobe encoder at the byte level: framing, merging, terminal events and errors."""

from __future__ import annotations

from collections.abc import Iterable

import orjson
import pytest

from echo_stream.errors import (
    EchoError,
    InvalidRequest,
    ModelNotFound,
    RateLimited,
    Unauthorized,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from echo_stream.events import (
    FLUSH,
    AdBlock,
    Event,
    EventStream,
    Finish,
    ReasoningDelta,
    RefusalDelta,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from echo_stream.faces.lobe import (
    LobeHTTPError,
    encode_lobe,
    frame,
    lobe_error_type,
    usage_data,
)


class Clock:
    """Moves 10 ms each time it is read, so speed figures are exact."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        self.now += 0.010
        return self.now


async def _events(items: Iterable[Event | Exception]) -> EventStream:
    for item in items:
        if isinstance(item, Exception):
            raise item
        yield item


async def _encode(items: Iterable[Event | Exception]) -> list[bytes]:
    return [
        chunk
        async for chunk in encode_lobe(
            _events(items), message_id="msg_1", provider="mock", started=100.0, clock=Clock()
        )
    ]


def _parse(data: bytes) -> list[tuple[str, str, object]]:
    """Strictly: every event is exactly `id:`, `event:`, `data:` lines and a blank line."""
    assert data.endswith(b"\n\n")
    events = []
    for block in data[:-2].split(b"\n\n"):
        lines = block.split(b"\n")
        assert len(lines) == 3, block
        assert lines[0].startswith(b"id: ") and lines[1].startswith(b"event: ")
        assert lines[2].startswith(b"data: ")
        events.append((lines[0][4:].decode(), lines[1][7:].decode(), orjson.loads(lines[2][6:])))
    return events


async def test_a_finished_answer_is_text_then_stop_speed_usage_byte_for_byte() -> None:
    chunks = await _encode(
        [
            TextDelta("Hel"),
            TextDelta("lo"),
            FLUSH,
            TextDelta(" world"),
            Finish("stop"),
            Usage(3, 2, 5),
            FLUSH,
        ]
    )
    assert chunks[0] == b'id: msg_1\nevent: text\ndata: "Hello"\n\n'
    assert chunks[1] == b'id: msg_1\nevent: text\ndata: " world"\n\n'
    assert chunks[2] == (
        b'id: msg_1\nevent: stop\ndata: "stop"\n\n'
        b'id: output_speed\nevent: speed\ndata: {"ttft":10.0,"tps":200.0,"latency":20.0,"duration":10.0}\n\n'
        b'id: msg_1\nevent: usage\ndata: {"inputTextTokens":3,"inputCacheMissTokens":3,'
        b'"outputTextTokens":2,"totalInputTokens":3,"totalOutputTokens":2,"totalTokens":5}\n\n'
    )


async def test_text_is_json_encoded_so_newlines_and_quotes_survive() -> None:
    chunks = await _encode([TextDelta('a "quote"\n\nnext\u2028'), Finish("stop")])
    events = _parse(b"".join(chunks))
    assert events[0] == ("msg_1", "text", 'a "quote"\n\nnext\u2028')


async def test_an_ad_is_its_own_event_between_the_text_around_it() -> None:
    ad = AdBlock(
        "\n\n[ad]Sponsored · ChefBox[/ad]\n\n",
        ad_id="chef",
        advertiser="ChefBox",
        title="Meal kits",
        body="Fresh food.",
        url="https://chef.example/x",
    )
    events = _parse(
        b"".join(await _encode([TextDelta("Before."), ad, TextDelta("After."), Finish("stop")]))
    )
    assert [(e, d) for _, e, d in events[:3]] == [
        ("text", "Before."),
        (
            "ad",
            {
                "adId": "chef",
                "advertiser": "ChefBox",
                "title": "Meal kits",
                "text": "Fresh food.",
                "link": "https://chef.example/x",
            },
        ),
        ("text", "After."),
    ]
    assert b"[ad]" not in b"".join(await _encode([ad, Finish("stop")]))


async def test_tool_calls_carry_the_id_on_every_fragment_and_the_name_on_the_first() -> None:
    events = _parse(
        b"".join(
            await _encode(
                [
                    ToolCallDelta(0, "", "call_a", "get_weather"),
                    ToolCallDelta(0, '{"city":'),
                    ToolCallDelta(0, '"Paris"}'),
                    ToolCallDelta(1, "{}", "call_b", "get_time"),
                    Finish("tool_calls"),
                ]
            )
        )
    )
    calls = [data for _, event, data in events if event == "tool_calls"]
    assert calls == [
        [
            {
                "index": 0,
                "id": "call_a",
                "type": "function",
                "function": {"name": "get_weather", "arguments": ""},
            }
        ],
        [
            {
                "index": 0,
                "id": "call_a",
                "type": "function",
                "function": {"name": None, "arguments": '{"city":'},
            }
        ],
        [
            {
                "index": 0,
                "id": "call_a",
                "type": "function",
                "function": {"name": None, "arguments": '"Paris"}'},
            }
        ],
        [
            {
                "index": 1,
                "id": "call_b",
                "type": "function",
                "function": {"name": "get_time", "arguments": "{}"},
            }
        ],
    ]
    assert [e for _, e, _ in events][-2:] == ["stop", "speed"]
    assert events[-2][2] == "tool_calls"


async def test_only_the_first_choice_is_sent_and_refusals_read_as_text() -> None:
    events = _parse(
        b"".join(
            await _encode(
                [
                    TextDelta("zero"),
                    TextDelta("one", choice=1),
                    RefusalDelta(" no"),
                    Finish("stop", 1),
                    Finish("length"),
                ]
            )
        )
    )
    assert [(e, d) for _, e, d in events][:2] == [("text", "zero no"), ("stop", "length")]


async def test_reasoning_is_its_own_event_before_the_text_byte_for_byte() -> None:
    chunks = await _encode(
        [
            ReasoningDelta("Think"),
            ReasoningDelta('ing "hard"'),
            TextDelta("An"),
            TextDelta("swer"),
            FLUSH,
            ReasoningDelta("more?", choice=1),  # another choice's reasoning is not sent
            ReasoningDelta(""),
            Finish("stop"),
        ]
    )
    assert chunks[0] == (
        b'id: msg_1\nevent: reasoning\ndata: "Thinking \\"hard\\""\n\n'
        b'id: msg_1\nevent: text\ndata: "Answer"\n\n'
    )
    assert [e for _, e, _ in _parse(chunks[1])] == ["stop", "speed"]


async def test_reasoning_and_text_interleaved_keep_their_order() -> None:
    events = _parse(
        b"".join(
            await _encode(
                [
                    ReasoningDelta("a"),
                    TextDelta("b"),
                    ReasoningDelta("c"),
                    ReasoningDelta("d"),
                    TextDelta("e"),
                    Finish("stop"),
                ]
            )
        )
    )
    assert [(e, d) for _, e, d in events][:4] == [
        ("reasoning", "a"),
        ("text", "b"),
        ("reasoning", "cd"),
        ("text", "e"),
    ]


async def test_a_stream_that_ends_without_finishing_gets_a_synthetic_stream_chunk_error() -> None:
    events = _parse(b"".join(await _encode([TextDelta("cut"), FLUSH, Usage(1, 1, 2)])))
    assert events[-1][1] == "error"
    assert events[-1][2]["type"] == "StreamChunkError"
    assert "ended before the answer finished" in events[-1][2]["message"]
    assert [e for _, e, _ in events] == ["text", "error"]


async def test_an_error_after_the_first_byte_is_one_error_event_that_ends_the_stream() -> None:
    chunks = await _encode(
        [
            TextDelta("partial"),
            FLUSH,
            TextDelta(" more"),
            UpstreamUnavailable("openai stream broke"),
        ]
    )
    events = _parse(b"".join(chunks))
    assert [e for _, e, _ in events] == ["text", "text", "error"]
    error = events[-1][2]
    assert error["type"] == "ProviderBizError" and error["message"] == "openai stream broke"
    assert error["body"]["provider"] == "mock" and error["body"]["code"] == "upstream_unavailable"


async def test_an_error_before_the_first_byte_raises_lobe_s_json_error() -> None:
    with pytest.raises(LobeHTTPError) as caught:
        await _encode([RateLimited("slow down", headers={"Retry-After": "3"})])
    error = caught.value
    assert error.status == 429 and error.headers == {"Retry-After": "3"}
    assert error.body() == {
        "body": {
            "message": "slow down",
            "type": "rate_limit_error",
            "param": None,
            "code": "rate_limit_exceeded",
            "provider": "mock",
        },
        "errorType": "QuotaLimitReached",
    }


async def test_an_unexpected_exception_is_an_agent_runtime_error() -> None:
    events = _parse(b"".join(await _encode([TextDelta("x"), FLUSH, RuntimeError("boom")])))
    assert events[-1][2]["type"] == "AgentRuntimeError"
    assert "boom" not in events[-1][2]["message"]  # internals stay in the log
    with pytest.raises(LobeHTTPError) as caught:
        await _encode([RuntimeError("boom")])
    assert caught.value.status == 500


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ModelNotFound("m"), "ModelNotFound"),
        (Unauthorized("k"), "InvalidAccessCode"),
        (RateLimited("r"), "QuotaLimitReached"),
        (UpstreamTimeout("t"), 504),
        (UpstreamRejected("bad key", status=401), "InvalidProviderAPIKey"),
        (UpstreamRejected("no", status=403), "PermissionDenied"),
        (UpstreamRejected("gone", status=404), "ModelNotFound"),
        (UpstreamRejected("bad", status=400), "ProviderBizError"),
        (UpstreamUnavailable("down"), "ProviderBizError"),
        (InvalidRequest("x"), 400),
        (EchoError("x"), "AgentRuntimeError"),
    ],
)
def test_error_types_follow_lobe_s_names(error: EchoError, expected: str | int) -> None:
    assert lobe_error_type(error) == expected


def test_usage_uses_lobe_s_field_names_and_leaves_zeros_out() -> None:
    assert usage_data(Usage(100, 40, 140, cached_tokens=30, reasoning_tokens=15)) == {
        "inputTextTokens": 100,
        "inputCachedTokens": 30,
        "inputCacheMissTokens": 70,
        "outputTextTokens": 25,
        "outputReasoningTokens": 15,
        "totalInputTokens": 100,
        "totalOutputTokens": 40,
        "totalTokens": 140,
    }
    assert usage_data(Usage(0, 0, 0)) == {}


def test_frame_is_three_lines_and_a_blank_one() -> None:
    assert frame("x", "stop", "length") == b'id: x\nevent: stop\ndata: "length"\n\n'
