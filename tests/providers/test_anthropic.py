"""The Anthropic Messages adapter: request mapping, stream parsing, stream errors."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from echo_stream.errors import InvalidRequest, RateLimited, UpstreamRejected, UpstreamUnavailable
from echo_stream.events import (
    FLUSH,
    Event,
    Finish,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from echo_stream.protocol import ChatCompletionRequest
from echo_stream.providers.anthropic import API_VERSION, AnthropicProvider, build_body

from .conftest import (
    WEATHER_TOOL,
    FakeUpstream,
    Status,
    assemble_tool_calls,
    chat,
    collect,
    load_stream,
    options,
    resplits,
    text_of,
)

BASE_URL = "https://anthropic.example.test"
MODEL = "claude-sonnet-4-20250514"


def provider(upstream: FakeUpstream, default_max_tokens: int = 4096) -> AnthropicProvider:
    return AnthropicProvider(
        BASE_URL, "sk-ant-test", options(), default_max_tokens, client=upstream.client()
    )


async def run(upstream: FakeUpstream, request: ChatCompletionRequest | None = None) -> list[Event]:
    return await collect(provider(upstream).stream(request or chat(), MODEL))


def body_for(**fields: Any) -> dict[str, Any]:
    return build_body(chat(**fields), MODEL, 1024)


# --- build_body: messages ----------------------------------------------------------------------


def test_system_and_developer_messages_become_the_top_level_system() -> None:
    body = body_for(
        messages=[
            {"role": "system", "content": "You are terse."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
            {"role": "user", "content": "Hi"},
        ]
    )

    assert body["system"] == "You are terse.\n\nAnswer in French."
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}]
    assert body["model"] == MODEL
    assert body["stream"] is True


def test_no_system_key_without_system_messages() -> None:
    assert "system" not in body_for()


def test_consecutive_user_messages_merge_into_one() -> None:
    body = body_for(
        messages=[
            {"role": "user", "content": "First."},
            {"role": "user", "content": [{"type": "text", "text": "Second."}]},
            {"role": "assistant", "content": "Reply."},
        ]
    )

    assert body["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "First."}, {"type": "text", "text": "Second."}],
        },
        {"role": "assistant", "content": [{"type": "text", "text": "Reply."}]},
    ]


def test_tool_calls_and_tool_results_map_to_tool_use_and_tool_result() -> None:
    body = body_for(
        messages=[
            {"role": "user", "content": "Weather in Lyon and Oslo?"},
            {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [
                    {
                        "id": "toolu_A",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Lyon"}'},
                    },
                    {
                        "id": "toolu_B",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "toolu_A", "content": "14 C, rain"},
            {"role": "tool", "tool_call_id": "toolu_B", "content": "3 C, snow"},
        ],
        tools=[WEATHER_TOOL],
    )

    assistant, results = body["messages"][1:]
    assert assistant == {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "toolu_A", "name": "get_weather", "input": {"city": "Lyon"}},
            {"type": "tool_use", "id": "toolu_B", "name": "get_weather", "input": {"city": "Oslo"}},
        ],
    }
    assert results == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_A", "content": "14 C, rain"},
            {"type": "tool_result", "tool_use_id": "toolu_B", "content": "3 C, snow"},
        ],
    }


def test_tool_call_with_bad_arguments_is_invalid() -> None:
    call = {"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{oops"}}

    with pytest.raises(InvalidRequest):
        body_for(
            messages=[
                {"role": "user", "content": "x"},
                {"role": "assistant", "tool_calls": [call]},
            ]
        )


def _image_message(url: str) -> list[dict[str, Any]]:
    return [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": url}},
            ],
        }
    ]


def test_data_url_image_becomes_a_base64_block() -> None:
    body = body_for(messages=_image_message("data:image/png;base64,iVBORw0KGgo="))

    assert body["messages"][0]["content"][1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
    }


def test_http_image_becomes_a_url_source() -> None:
    body = body_for(messages=_image_message("https://img.example.test/cat.jpg"))

    assert body["messages"][0]["content"][1] == {
        "type": "image",
        "source": {"type": "url", "url": "https://img.example.test/cat.jpg"},
    }


@pytest.mark.parametrize(
    "url", ["data:image/png,notbase64", "data:;base64,AAAA", "ftp://x/y.png", "data:image/png"]
)
def test_bad_image_url_is_invalid(url: str) -> None:
    with pytest.raises(InvalidRequest):
        body_for(messages=_image_message(url))


# --- build_body: parameters --------------------------------------------------------------------


def test_max_tokens_defaults_when_absent() -> None:
    assert body_for()["max_tokens"] == 1024


def test_max_tokens_and_max_completion_tokens_are_honoured() -> None:
    assert body_for(max_tokens=77)["max_tokens"] == 77
    assert body_for(max_completion_tokens=88, max_tokens=77)["max_tokens"] == 88


def test_sampling_parameters() -> None:
    body = body_for(temperature=1.5, top_p=0.8, stop=["END", "  "], frequency_penalty=0.5)

    assert body["temperature"] == 1.0  # Anthropic's range is 0..1
    assert body["top_p"] == 0.8
    assert body["stop_sequences"] == ["END"]  # whitespace-only stops are rejected upstream
    assert "frequency_penalty" not in body
    assert "presence_penalty" not in body


def test_temperature_within_range_is_kept() -> None:
    assert body_for(temperature=0.4)["temperature"] == 0.4


def test_single_stop_string() -> None:
    assert body_for(stop="###")["stop_sequences"] == ["###"]


def test_user_becomes_metadata_user_id() -> None:
    assert body_for(user="user-42")["metadata"] == {"user_id": "user-42"}


def test_tools_become_input_schema() -> None:
    body = body_for(tools=[WEATHER_TOOL])

    function = WEATHER_TOOL["function"]
    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": function["description"],
            "input_schema": function["parameters"],
        }
    ]
    assert body["tool_choice"] == {"type": "auto"}


def test_tool_without_parameters_gets_an_empty_object_schema() -> None:
    body = body_for(tools=[{"type": "function", "function": {"name": "ping"}}])

    assert body["tools"][0]["input_schema"] == {"type": "object", "properties": {}}


@pytest.mark.parametrize(
    ("fields", "choice"),
    [
        ({"tool_choice": "required"}, {"type": "any"}),
        ({"tool_choice": "auto"}, {"type": "auto"}),
        (
            {"tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
            {"type": "tool", "name": "get_weather"},
        ),
        ({"parallel_tool_calls": False}, {"type": "auto", "disable_parallel_tool_use": True}),
        (
            {"tool_choice": "required", "parallel_tool_calls": False},
            {"type": "any", "disable_parallel_tool_use": True},
        ),
    ],
)
def test_tool_choice_mapping(fields: dict[str, Any], choice: dict[str, Any]) -> None:
    assert body_for(tools=[WEATHER_TOOL], **fields)["tool_choice"] == choice


# --- the request on the wire -------------------------------------------------------------------


async def test_request_goes_to_v1_messages_with_key_and_version() -> None:
    upstream = FakeUpstream.streaming(load_stream("anthropic_text.sse"))

    await run(upstream, chat(max_tokens=50))

    request = upstream.last
    assert str(request.url) == f"{BASE_URL}/v1/messages"
    assert request.headers["x-api-key"] == "sk-ant-test"
    assert request.headers["anthropic-version"] == API_VERSION == "2023-06-01"
    assert "authorization" not in request.headers
    assert upstream.body()["max_tokens"] == 50
    assert upstream.body()["model"] == MODEL


async def test_upstream_error_status_passes_through() -> None:
    error = {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "messages: roles must alternate"},
    }

    with pytest.raises(UpstreamRejected) as caught:
        await run(FakeUpstream(Status(400, error)))

    assert caught.value.status == 400
    assert "roles must alternate" in caught.value.message


# --- streams -----------------------------------------------------------------------------------

TEXT_PIECES = [
    "Bonjour",
    " from",
    " Claude",
    "!",
    " Streams",
    " end",
    " without",
    " a",
    " blank",
    " line",
    ".",
]
TEXT_EVENTS: list[Event] = [
    *(TextDelta(piece) for piece in TEXT_PIECES),
    # 25 fresh + 100 read from the cache + 20 written to it
    Usage(145, 12, 157, cached_tokens=100),
    Finish("stop"),
]
TOOL_USE_EVENTS: list[Event] = [
    TextDelta("Let me"),
    TextDelta(" look up the weather in Lyon."),
    ToolCallDelta(0, "", "toolu_01EchoWeatherLyon", "get_weather"),
    ToolCallDelta(0, '{"city'),
    ToolCallDelta(0, '": "Ly'),
    ToolCallDelta(0, 'on", "unit"'),
    ToolCallDelta(0, ': "celsius"}'),
    Usage(412, 71, 483),
    Finish("tool_calls"),
]
# Extended thinking: thinking deltas become reasoning; the signature and the redacted block don't.
THINKING_EVENTS: list[Event] = [
    ReasoningDelta("Let me solve this step by step:\n\n1. First"),
    ReasoningDelta(" break down 27 * 453"),
    ReasoningDelta("\n2. 453 = 400 + 50 + 3 → 10935 + 1296 = 12231"),
    TextDelta("27 * 453"),
    TextDelta(" = 12,231"),
    Usage(38, 96, 134),
    Finish("stop"),
]
EXPECTED = {
    "anthropic_text.sse": TEXT_EVENTS,
    "anthropic_tool_use.sse": TOOL_USE_EVENTS,
    "anthropic_thinking.sse": THINKING_EVENTS,
}


@pytest.mark.parametrize("fixture", sorted(EXPECTED))
async def test_fixture_in_one_piece(fixture: str) -> None:
    assert await run(FakeUpstream.streaming(load_stream(fixture))) == EXPECTED[fixture]


@pytest.mark.parametrize("fixture", sorted(EXPECTED))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
async def test_fixture_resplit_anywhere(fixture: str, data: st.DataObject) -> None:
    raw = load_stream(fixture)
    pieces = data.draw(resplits(raw), label="pieces")

    assert await run(FakeUpstream.streaming(raw, pieces)) == EXPECTED[fixture]


async def test_text_stream_with_ping_and_no_trailing_blank_line() -> None:
    raw = load_stream("anthropic_text.sse")
    assert b"event: ping" in raw and not raw.endswith(b"\n")

    events = await run(FakeUpstream.streaming(raw))

    assert text_of(events) == "Bonjour from Claude! Streams end without a blank line."
    assert events[-1] == Finish("stop")


async def test_tool_use_arguments_join_to_valid_json() -> None:
    events = await run(FakeUpstream.streaming(load_stream("anthropic_tool_use.sse")))

    [call] = assemble_tool_calls(events)
    assert (call.id, call.name) == ("toolu_01EchoWeatherLyon", "get_weather")
    assert orjson.loads(call.arguments) == {"city": "Lyon", "unit": "celsius"}
    # the empty `partial_json` that opens the block is not passed on
    assert all(e.arguments for e in events if isinstance(e, ToolCallDelta) and e.id is None)


async def test_tool_blocks_after_text_get_openai_indexes_from_zero() -> None:
    events = await run(FakeUpstream.streaming(load_stream("anthropic_two_tools.sse")))

    assert text_of(events) == "I'll check both at once."
    assert sorted({e.index for e in events if isinstance(e, ToolCallDelta)}) == [0, 1]
    calls = assemble_tool_calls(events)
    assert [(c.id, c.name, orjson.loads(c.arguments)) for c in calls] == [
        ("toolu_01EchoWeatherOslo", "get_weather", {"city": "Oslo"}),
        ("toolu_01EchoTimeOslo", "get_local_time", {"timezone": "Europe/Oslo"}),
    ]
    assert events[-1] == Finish("tool_calls")


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
    ],
)
async def test_stop_reasons(stop_reason: str, finish: str) -> None:
    raw = load_stream("anthropic_text.sse").replace(b'"end_turn"', f'"{stop_reason}"'.encode())

    events = await run(FakeUpstream.streaming(raw))

    assert events[-1] == Finish(finish)  # type: ignore[arg-type]


async def test_overloaded_error_event_is_unavailable() -> None:
    seen: list[Event] = []

    with pytest.raises(UpstreamUnavailable, match="overloaded_error"):
        stream = provider(FakeUpstream.streaming(load_stream("anthropic_error.sse"))).stream(
            chat(), MODEL
        )
        async for event in stream:
            if event is not FLUSH:
                seen.append(event)

    assert seen == [TextDelta("Partial")]


async def test_rate_limit_error_event_is_rate_limited() -> None:
    raw = load_stream("anthropic_error.sse")
    raw = raw.replace(b'"overloaded_error","message":"Overloaded"', b'"rate_limit_error"')
    assert b"rate_limit_error" in raw

    with pytest.raises(RateLimited):
        await run(FakeUpstream.streaming(raw))


async def test_stream_without_message_stop_is_unavailable() -> None:
    raw = load_stream("anthropic_text.sse")
    raw = raw[: raw.index(b"event: message_stop")]

    with pytest.raises(UpstreamUnavailable):
        await run(FakeUpstream.streaming(raw))


async def test_upstream_response_is_closed_as_soon_as_message_stop_arrives() -> None:
    raw = load_stream("anthropic_two_tools.sse")
    assert raw.endswith(b"\n\n")  # message_stop completes before the body's end is seen
    upstream = FakeUpstream.streaming(raw)

    await run(upstream)

    assert upstream.bodies[0].closed


async def test_upstream_response_is_closed_when_the_consumer_stops_early() -> None:
    upstream = FakeUpstream.streaming(load_stream("anthropic_text.sse"))
    stream = provider(upstream).stream(chat(), MODEL)

    assert await anext(stream) == TextDelta("Bonjour")
    await stream.aclose()

    assert upstream.bodies[0].closed


def test_tool_choice_none_keeps_tools_declared_for_tool_history() -> None:
    request = ChatCompletionRequest.model_validate(
        {
            "model": "claude",
            "tool_choice": "none",
            "tools": [{"type": "function", "function": {"name": "f"}}],
            "messages": [
                {"role": "user", "content": "hi"},
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "t1",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{}"},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "t1", "content": "done"},
            ],
        }
    )
    body = build_body(request, "claude", 100)
    assert [tool["name"] for tool in body["tools"]] == ["f"]
    assert body["tool_choice"] == {"type": "none"}
