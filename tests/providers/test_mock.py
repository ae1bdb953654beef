"""The built-in offline provider: deterministic, realistic, and honouring the request's knobs."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from echo_stream.events import Event, Finish, TextDelta, ToolCallDelta, Usage
from echo_stream.protocol import ChatCompletionRequest
from echo_stream.providers.mock import MockProvider

from .conftest import WEATHER_TOOL, assemble_tool_calls, chat, collect, text_of


async def run(request: ChatCompletionRequest) -> list[Event]:
    return await collect(MockProvider(delay_ms=0).stream(request, "echo-mock"))


def finishes(events: list[Event]) -> list[Finish]:
    return [e for e in events if isinstance(e, Finish)]


def usage(events: list[Event]) -> Usage:
    [found] = [e for e in events if isinstance(e, Usage)]
    return found


async def test_same_request_gives_the_same_events() -> None:
    request = chat(messages=[{"role": "user", "content": "Explain SSE"}])

    assert await run(request) == await run(request)


async def test_different_questions_give_different_answers() -> None:
    first = await run(chat(messages=[{"role": "user", "content": "Explain SSE"}]))
    second = await run(chat(messages=[{"role": "user", "content": "Explain HTTP/2"}]))

    assert text_of(first) != text_of(second)


async def test_answer_is_multi_paragraph_markdown_streamed_in_pieces() -> None:
    events = await run(chat(messages=[{"role": "user", "content": "Explain SSE"}]))

    text = text_of(events)
    assert "Explain SSE" in text
    assert len([p for p in text.split("\n\n") if p.strip()]) >= 3
    assert "\n- " in text  # a list
    assert "```python\n" in text and text.rstrip().count("```") == 2  # one fenced code block
    assert len([e for e in events if isinstance(e, TextDelta)]) > 50  # word by word
    assert events[-2:-1] == [Finish("stop")]
    assert isinstance(events[-1], Usage)


async def test_usage_is_counted() -> None:
    events = await run(chat(messages=[{"role": "user", "content": "Explain SSE"}]))

    pieces = [e for e in events if isinstance(e, TextDelta)]
    counted = usage(events)
    assert counted.completion_tokens == len(pieces)
    assert counted.prompt_tokens > 0
    assert counted.total_tokens == counted.prompt_tokens + counted.completion_tokens


async def test_longer_prompt_counts_more_prompt_tokens() -> None:
    short = await run(chat(messages=[{"role": "user", "content": "Hi"}]))
    long = await run(chat(messages=[{"role": "user", "content": "Hi " * 200}]))

    assert usage(long).prompt_tokens > usage(short).prompt_tokens


async def test_max_tokens_cuts_the_answer_with_length() -> None:
    events = await run(chat(max_tokens=5))

    assert len([e for e in events if isinstance(e, TextDelta)]) == 5
    assert finishes(events) == [Finish("length")]
    assert usage(events).completion_tokens == 5


async def test_max_completion_tokens_is_honoured_too() -> None:
    events = await run(chat(max_completion_tokens=3))

    assert len([e for e in events if isinstance(e, TextDelta)]) == 3
    assert finishes(events) == [Finish("length")]


async def test_two_choices() -> None:
    events = await run(chat(n=2))

    assert text_of(events, 0) and text_of(events, 0) == text_of(events, 1)
    assert sorted(f.choice for f in finishes(events)) == [0, 1]
    assert all(f.reason == "stop" for f in finishes(events))
    single = await run(chat())
    assert usage(events).completion_tokens == 2 * usage(single).completion_tokens


async def test_tools_offered_give_one_tool_call_matching_the_schema() -> None:
    events = await run(chat(tools=[WEATHER_TOOL]))

    [call] = assemble_tool_calls(events)
    assert call.name == "get_weather"
    arguments: dict[str, Any] = orjson.loads(call.arguments)
    schema = WEATHER_TOOL["function"]["parameters"]
    assert set(arguments) == set(schema["properties"])
    assert isinstance(arguments["city"], str)
    assert arguments["unit"] in schema["properties"]["unit"]["enum"]
    assert text_of(events) == ""
    assert finishes(events) == [Finish("tool_calls")]


async def test_named_tool_choice_picks_that_tool() -> None:
    clock = {"type": "function", "function": {"name": "get_time", "parameters": {}}}

    events = await run(
        chat(
            tools=[WEATHER_TOOL, clock],
            tool_choice={"type": "function", "function": {"name": "get_time"}},
        )
    )

    assert [c.name for c in assemble_tool_calls(events)] == ["get_time"]


async def test_tool_calls_for_two_choices() -> None:
    events = await run(chat(tools=[WEATHER_TOOL], n=2))

    for choice in (0, 1):
        [call] = assemble_tool_calls(events, choice)
        assert orjson.loads(call.arguments)["unit"] == "celsius"
    assert sorted(f.choice for f in finishes(events)) == [0, 1]


async def test_tool_choice_none_answers_in_text() -> None:
    events = await run(chat(tools=[WEATHER_TOOL], tool_choice="none"))

    assert not [e for e in events if isinstance(e, ToolCallDelta)]
    assert text_of(events)
    assert finishes(events) == [Finish("stop")]


async def test_after_a_tool_result_it_answers_with_the_result() -> None:
    request = chat(
        tools=[WEATHER_TOOL],
        messages=[
            {"role": "user", "content": "Weather in Lyon?"},
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "call_mock_0",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Lyon"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_mock_0", "content": "14 C and light rain"},
        ],
    )

    events = await run(request)

    assert not [e for e in events if isinstance(e, ToolCallDelta)]
    assert "14 C and light rain" in text_of(events)
    assert finishes(events) == [Finish("stop")]


@pytest.mark.parametrize(
    "response_format",
    [
        {"type": "json_object"},
        {"type": "json_schema", "json_schema": {"name": "a", "schema": {"type": "object"}}},
    ],
)
async def test_json_mode_text_is_valid_json(response_format: dict[str, Any]) -> None:
    events = await run(chat(response_format=response_format))

    assert isinstance(orjson.loads(text_of(events)), dict)
    assert finishes(events) == [Finish("stop")]
