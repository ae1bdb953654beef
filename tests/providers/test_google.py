"""The Gemini adapter: request mapping, `alt=sse` stream parsing, finish reasons and usage."""

from __future__ import annotations

import json
import re
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from echo_stream.errors import InvalidRequest, UpstreamRejected, UpstreamUnavailable
from echo_stream.events import Event, Finish, ReasoningDelta, TextDelta, ToolCallDelta, Usage
from echo_stream.protocol import ChatCompletionRequest
from echo_stream.providers.google import GoogleProvider, build_body, signature_from_call_id

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

BASE_URL = "https://gemini.example.test"
MODEL = "gemini-2.5-flash"


def provider(upstream: FakeUpstream) -> GoogleProvider:
    return GoogleProvider(BASE_URL, "AIza-test", options(), client=upstream.client())


async def run(upstream: FakeUpstream, request: ChatCompletionRequest | None = None) -> list[Event]:
    return await collect(provider(upstream).stream(request or chat(), MODEL))


def body_for(**fields: Any) -> dict[str, Any]:
    return build_body(chat(**fields))


def chunk(parts: list[dict[str, Any]], finish: str | None = None, **extra: Any) -> bytes:
    """One `alt=sse` event carrying one candidate."""
    candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return b"data: " + orjson.dumps({"candidates": [candidate], **extra}) + b"\r\n\r\n"


# --- build_body --------------------------------------------------------------------------------


def test_system_instruction_roles_and_merging() -> None:
    body = body_for(
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": "Use metric units."},
            {"role": "user", "content": "Hi"},
            {"role": "user", "content": [{"type": "text", "text": "Weather?"}]},
            {"role": "assistant", "content": "Where?"},
            {"role": "user", "content": "Kyoto"},
        ]
    )

    assert body["systemInstruction"] == {"parts": [{"text": "Be brief.\n\nUse metric units."}]}
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Hi"}, {"text": "Weather?"}]},
        {"role": "model", "parts": [{"text": "Where?"}]},
        {"role": "user", "parts": [{"text": "Kyoto"}]},
    ]
    assert "generationConfig" not in body
    assert "tools" not in body


def test_generation_config() -> None:
    body = body_for(temperature=0.7, top_p=0.9, max_tokens=256, stop=["END", "STOP"], seed=5, n=3)

    assert body["generationConfig"] == {
        "temperature": 0.7,
        "topP": 0.9,
        "maxOutputTokens": 256,
        "stopSequences": ["END", "STOP"],
        "seed": 5,
        "candidateCount": 3,
    }


def test_max_completion_tokens_wins_and_n_of_one_is_not_sent() -> None:
    config = body_for(max_tokens=10, max_completion_tokens=20, n=1)["generationConfig"]

    assert config == {"maxOutputTokens": 20}


def test_json_schema_response_format() -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    body = body_for(
        response_format={"type": "json_schema", "json_schema": {"name": "a", "schema": schema}}
    )

    assert body["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseJsonSchema": schema,
    }


def test_json_object_response_format() -> None:
    body = body_for(response_format={"type": "json_object"})

    assert body["generationConfig"] == {"responseMimeType": "application/json"}


def test_tools_become_function_declarations() -> None:
    body = body_for(tools=[WEATHER_TOOL, {"type": "function", "function": {"name": "ping"}}])

    function = WEATHER_TOOL["function"]
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": function["description"],
                    "parametersJsonSchema": function["parameters"],
                },
                {"name": "ping"},
            ]
        }
    ]
    assert body["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}


@pytest.mark.parametrize(
    ("tool_choice", "calling"),
    [
        ("auto", {"mode": "AUTO"}),
        ("required", {"mode": "ANY"}),
        ("none", {"mode": "NONE"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"mode": "ANY", "allowedFunctionNames": ["get_weather"]},
        ),
    ],
)
def test_tool_choice_mapping(tool_choice: Any, calling: dict[str, Any]) -> None:
    body = body_for(tools=[WEATHER_TOOL], tool_choice=tool_choice)

    assert body["toolConfig"] == {"functionCallingConfig": calling}


def _call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}


def test_tool_calls_and_results_become_function_call_and_response() -> None:
    body = body_for(
        messages=[
            {"role": "user", "content": "Weather in Kyoto?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [_call("call_1", "get_weather", '{"city": "Kyoto"}')],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "21 C, clear"},
        ],
        tools=[WEATHER_TOOL],
    )

    assert body["contents"][1:] == [
        {
            "role": "model",
            "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Kyoto"}}}],
        },
        {
            "role": "user",
            "parts": [
                {
                    "functionResponse": {
                        "name": "get_weather",
                        "response": {"content": "21 C, clear"},
                    }
                }
            ],
        },
    ]


def test_tool_result_for_an_unknown_call_id_is_invalid() -> None:
    with pytest.raises(InvalidRequest):
        body_for(
            messages=[
                {"role": "user", "content": "Hi"},
                {"role": "tool", "tool_call_id": "call_nowhere", "content": "42"},
            ]
        )


def test_inline_and_remote_images() -> None:
    body = body_for(
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Compare"},
                    {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}},
                    {"type": "image_url", "image_url": {"url": "https://img.example.test/b.png"}},
                ],
            }
        ]
    )

    assert body["contents"][0]["parts"] == [
        {"text": "Compare"},
        {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQ"}},
        {"fileData": {"fileUri": "https://img.example.test/b.png"}},
    ]


def test_bad_data_url_is_invalid() -> None:
    with pytest.raises(InvalidRequest):
        body_for(
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "data:image/png,xx"}}],
                }
            ]
        )


# --- the request on the wire -------------------------------------------------------------------


async def test_request_url_and_key_header() -> None:
    upstream = FakeUpstream.streaming(load_stream("gemini_text_crlf.sse"))

    await run(upstream, chat(temperature=0.2))

    request = upstream.last
    assert str(request.url) == (f"{BASE_URL}/v1beta/models/{MODEL}:streamGenerateContent?alt=sse")
    assert request.headers["x-goog-api-key"] == "AIza-test"
    assert "authorization" not in request.headers
    assert upstream.body()["generationConfig"] == {"temperature": 0.2}
    assert upstream.body()["contents"] == [{"role": "user", "parts": [{"text": "Hello?"}]}]


async def test_upstream_error_status_passes_through() -> None:
    error = {"error": {"code": 400, "message": "API key not valid.", "status": "INVALID_ARGUMENT"}}

    with pytest.raises(UpstreamRejected) as caught:
        await run(FakeUpstream(Status(400, [error])))

    assert caught.value.status == 400
    assert "API key not valid." in caught.value.message


# --- streams -----------------------------------------------------------------------------------

CRLF_TEXT = "Here are three steps:\n\n1. Open the stream.\n2. Read each chunk.\n3. Close it."
CRLF_THOUGHTS = "**Listing the steps**\n\nThe user wants a short list."
MULTIBYTE_TEXT = "東京の天気は晴れです☀️。気温は22度🌡️、湿度は低めです👍🏽\n"


def reasoning_of(events: list[Event]) -> str:
    return "".join(e.text for e in events if isinstance(e, ReasoningDelta))


async def test_crlf_stream_text_usage_and_finish() -> None:
    raw = load_stream("gemini_text_crlf.sse")
    assert b"\r\n\r\n" in raw

    events = await run(FakeUpstream.streaming(raw))

    assert text_of(events) == CRLF_TEXT
    assert "Listing the steps" not in text_of(events)  # the thought part is not answer text
    # usageMetadata is cumulative: the last one counts; thoughts are completion tokens
    assert events[-2:] == [
        Finish("stop"),
        Usage(prompt_tokens=9, completion_tokens=24 + 57, total_tokens=90, reasoning_tokens=57),
    ]


@settings(max_examples=50, deadline=None)
@given(data=st.data())
async def test_crlf_stream_resplit_anywhere(data: st.DataObject) -> None:
    raw = load_stream("gemini_text_crlf.sse")
    pieces = data.draw(resplits(raw), label="pieces")

    events = await run(FakeUpstream.streaming(raw, pieces))

    assert text_of(events) == CRLF_TEXT
    assert reasoning_of(events) == CRLF_THOUGHTS
    assert events[-2] == Finish("stop")
    assert events[-1] == Usage(9, 81, 90, reasoning_tokens=57)


@settings(max_examples=50, deadline=None)
@given(data=st.data())
async def test_multibyte_text_survives_splits_inside_characters(data: st.DataObject) -> None:
    raw = load_stream("gemini_multibyte.sse")
    pieces = data.draw(resplits(raw), label="pieces")

    events = await run(FakeUpstream.streaming(raw, pieces))

    assert text_of(events) == MULTIBYTE_TEXT
    assert [e for e in events if not isinstance(e, TextDelta)] == [
        Finish("stop"),
        Usage(12, 19, 31),
    ]


async def test_multibyte_text_byte_by_byte() -> None:
    raw = load_stream("gemini_multibyte.sse")

    events = await run(FakeUpstream.streaming(raw, [raw[i : i + 1] for i in range(len(raw))]))

    assert [e for e in events if isinstance(e, TextDelta)] == [
        TextDelta("東京の天気は"),
        TextDelta("晴れです☀️。気温は22度🌡️、"),
        TextDelta("湿度は低めです👍🏽\n"),
    ]


async def test_function_call_becomes_one_complete_tool_call() -> None:
    events = await run(FakeUpstream.streaming(load_stream("gemini_function_call.sse")))

    [delta] = [e for e in events if isinstance(e, ToolCallDelta)]
    assert delta.index == 0
    assert delta.id is not None and delta.id.startswith("call_") and len(delta.id) > 10
    assert delta.name == "get_weather"
    assert orjson.loads(delta.arguments) == {"city": "Kyoto", "unit": "celsius"}
    assert events[-2:] == [Finish("tool_calls"), Usage(91, 17 + 88, 196, reasoning_tokens=88)]


async def test_function_call_ids_are_unique() -> None:
    raw = load_stream("gemini_function_call.sse")

    first = await run(FakeUpstream.streaming(raw))
    second = await run(FakeUpstream.streaming(raw))

    ids = [e.id for e in first + second if isinstance(e, ToolCallDelta)]
    assert len(set(ids)) == 2


async def test_two_function_calls_get_indexes_zero_and_one() -> None:
    raw = chunk(
        [
            {"functionCall": {"name": "get_weather", "args": {"city": "Nara"}}},
            {"functionCall": {"name": "get_local_time", "args": {"timezone": "Asia/Tokyo"}}},
        ],
        finish="STOP",
    )

    events = await run(FakeUpstream.streaming(raw))

    calls = assemble_tool_calls(events)
    assert [(c.name, orjson.loads(c.arguments)) for c in calls] == [
        ("get_weather", {"city": "Nara"}),
        ("get_local_time", {"timezone": "Asia/Tokyo"}),
    ]
    assert events[-1] == Finish("tool_calls")


@pytest.mark.parametrize(
    ("reason", "finish"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
    ],
)
async def test_finish_reasons(reason: str, finish: str) -> None:
    raw = chunk([{"text": "Partial answer"}], finish=reason)

    events = await run(FakeUpstream.streaming(raw))

    assert events == [TextDelta("Partial answer"), Finish(finish)]  # type: ignore[arg-type]


async def test_thought_parts_are_reasoning_not_text() -> None:
    raw = chunk([{"text": "Let me think about this...", "thought": True}]) + chunk(
        [{"text": "Answer."}], finish="STOP"
    )

    events = await run(FakeUpstream.streaming(raw))

    assert events == [
        ReasoningDelta("Let me think about this..."),
        TextDelta("Answer."),
        Finish("stop"),
    ]


async def test_a_thought_part_without_text_makes_no_event() -> None:
    raw = chunk([{"thought": True, "thoughtSignature": "c2ln"}, {"text": "Hi"}], finish="STOP")

    assert await run(FakeUpstream.streaming(raw)) == [TextDelta("Hi"), Finish("stop")]


async def test_blocked_prompt_finishes_with_content_filter() -> None:
    raw = b'data: {"promptFeedback": {"blockReason": "SAFETY"}}\r\n\r\n'

    events = await run(FakeUpstream.streaming(raw))

    assert events == [Finish("content_filter")]


async def test_stream_without_finish_reason_is_unavailable() -> None:
    raw = load_stream("gemini_text_crlf.sse")
    raw = raw[: raw.rindex(b"data: ")]  # drop the last event, the one with finishReason

    with pytest.raises(UpstreamUnavailable):
        await run(FakeUpstream.streaming(raw))


async def test_error_chunk_mid_stream_raises() -> None:
    raw = chunk([{"text": "Hal"}]) + (
        b'data: {"error": {"code": 503, "message": "The model is overloaded.", '
        b'"status": "UNAVAILABLE"}}\r\n\r\n'
    )

    with pytest.raises(UpstreamUnavailable, match="overloaded"):
        await run(FakeUpstream.streaming(raw))


async def test_upstream_response_is_closed_when_the_consumer_stops_early() -> None:
    upstream = FakeUpstream.streaming(load_stream("gemini_multibyte.sse"))
    stream = provider(upstream).stream(chat(), MODEL)

    assert await anext(stream) == TextDelta("東京の天気は")
    await stream.aclose()

    assert upstream.bodies[0].closed


async def test_thought_signature_survives_the_round_trip_in_the_call_id() -> None:
    events = await run(FakeUpstream.streaming(load_stream("gemini_function_call.sse")))
    [delta] = [e for e in events if isinstance(e, ToolCallDelta)]
    assert delta.id is not None and re.fullmatch(r"[A-Za-z0-9_-]+", delta.id)
    signature = json.loads(
        next(
            line
            for line in load_stream("gemini_function_call.sse").decode().splitlines()
            if "thoughtSignature" in line
        )[6:]
    )["candidates"][0]["content"]["parts"][0]["thoughtSignature"]
    assert signature_from_call_id(delta.id) == signature

    follow_up = ChatCompletionRequest.model_validate(
        {
            "model": "gemini-2.5-flash",
            "messages": [
                {"role": "user", "content": "Weather in Kyoto?"},
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": delta.id,
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": delta.arguments},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": delta.id, "content": "22C"},
            ],
        }
    )
    model_turn = build_body(follow_up)["contents"][1]
    assert model_turn["parts"][0]["thoughtSignature"] == signature
    assert signature_from_call_id("call_plain") is None
    assert (
        "thoughtSignature"
        not in build_body(
            ChatCompletionRequest.model_validate(
                {
                    "model": "g",
                    "messages": [
                        {
                            "role": "assistant",
                            "tool_calls": [
                                {
                                    "id": "call_1",
                                    "type": "function",
                                    "function": {"name": "f", "arguments": "{}"},
                                }
                            ],
                        }
                    ],
                }
            )
        )["contents"][0]["parts"][0]
    )
