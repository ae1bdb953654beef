"""The OpenAI-compatible adapter: request forwarding, stream parsing, upstream failures."""

from __future__ import annotations

import httpx
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from echo_stream.errors import (
    RateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from echo_stream.events import (
    Event,
    Finish,
    ReasoningDelta,
    RefusalDelta,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from echo_stream.protocol import ChatCompletionRequest
from echo_stream.providers.openai import OpenAIProvider, build_body, parse_chunk

from .conftest import (
    WEATHER_TOOL,
    FakeUpstream,
    Status,
    Stream,
    assemble_tool_calls,
    chat,
    collect,
    load_stream,
    options,
    refusal_of,
    resplits,
    split_at,
    text_of,
)

BASE_URL = "https://llm.example.test/v1"


def provider(upstream: FakeUpstream, max_retries: int = 0) -> OpenAIProvider:
    return OpenAIProvider(
        BASE_URL, "sk-test-123", options(max_retries), client=upstream.client(max_retries)
    )


async def run(
    upstream: FakeUpstream, request: ChatCompletionRequest | None = None, max_retries: int = 0
) -> list[Event]:
    return await collect(provider(upstream, max_retries).stream(request or chat(), "gpt-4o-mini"))


# --- build_body --------------------------------------------------------------------------------


def test_build_body_forwards_known_fields_and_forces_streamed_usage() -> None:
    request = chat(
        model="my-alias",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather in Paris?"},
        ],
        tools=[WEATHER_TOOL],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        parallel_tool_calls=False,
        temperature=0.3,
        top_p=0.9,
        max_tokens=200,
        stop=["\n\n"],
        seed=42,
        user="user-7",
        n=2,
        response_format={"type": "json_object"},
        frequency_penalty=0.5,
        presence_penalty=-0.5,
        logit_bias={"50256": -100},
        stream=False,
        stream_options={"include_usage": False},
    )

    body = build_body(request, "gpt-4o-mini-2024-07-18")

    assert body["model"] == "gpt-4o-mini-2024-07-18"
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris?"},
    ]
    assert body["tools"] == [WEATHER_TOOL]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    expected = {
        "parallel_tool_calls": False,
        "temperature": 0.3,
        "top_p": 0.9,
        "max_tokens": 200,
        "stop": ["\n\n"],
        "seed": 42,
        "user": "user-7",
        "n": 2,
        "response_format": {"type": "json_object"},
        "frequency_penalty": 0.5,
        "presence_penalty": -0.5,
        "logit_bias": {"50256": -100},
    }
    assert {key: body[key] for key in expected} == expected


def test_build_body_drops_unknown_extras_and_keeps_known_ones() -> None:
    request = chat(foo=1, store=True, metadata={"team": "docs"}, reasoning_effort="low")

    body = build_body(request, "gpt-4o")

    assert "foo" not in body
    assert body["store"] is True
    assert body["metadata"] == {"team": "docs"}
    assert "reasoning_effort" not in body  # only reasoning models take it


def test_build_body_sends_only_what_the_client_sent() -> None:
    body = build_body(chat(), "gpt-4o")

    assert set(body) == {"model", "messages", "stream", "stream_options"}


@pytest.mark.parametrize("model", ["o1", "o3-mini", "o4-mini", "o1-2024-12-17"])
def test_build_body_adapts_sampling_fields_for_reasoning_models(model: str) -> None:
    request = chat(
        max_tokens=300,
        temperature=0.2,
        top_p=0.5,
        frequency_penalty=1.0,
        presence_penalty=1.0,
        reasoning_effort="high",
        seed=1,
    )

    body = build_body(request, model)

    assert body["max_completion_tokens"] == 300
    assert "max_tokens" not in body
    for dropped in ("temperature", "top_p", "frequency_penalty", "presence_penalty"):
        assert dropped not in body
    assert body["reasoning_effort"] == "high"
    assert body["seed"] == 1


def test_build_body_reasoning_model_keeps_an_explicit_max_completion_tokens() -> None:
    body = build_body(chat(max_tokens=300, max_completion_tokens=900), "o3")

    assert body["max_completion_tokens"] == 900
    assert "max_tokens" not in body


def test_build_body_keeps_max_tokens_for_chat_models() -> None:
    body = build_body(chat(max_tokens=300, temperature=0.2), "gpt-4o")

    assert body["max_tokens"] == 300
    assert "max_completion_tokens" not in body
    assert body["temperature"] == 0.2


# --- the request on the wire -------------------------------------------------------------------


async def test_request_goes_to_chat_completions_with_the_key() -> None:
    upstream = FakeUpstream.streaming(load_stream("openai_text.sse"))

    await run(upstream, chat(temperature=0.1))

    request = upstream.last
    assert request.method == "POST"
    assert str(request.url) == f"{BASE_URL}/chat/completions"
    assert request.headers["authorization"] == "Bearer sk-test-123"
    assert request.headers["content-type"] == "application/json"
    assert upstream.body()["model"] == "gpt-4o-mini"
    assert upstream.body()["temperature"] == 0.1


async def test_no_authorization_header_without_a_key() -> None:
    upstream = FakeUpstream.streaming(load_stream("openai_text.sse"))
    adapter = OpenAIProvider(BASE_URL, None, options(), client=upstream.client())

    await collect(adapter.stream(chat(), "llama3"))

    assert "authorization" not in upstream.last.headers


# --- streams -----------------------------------------------------------------------------------

TEXT_PIECES = [
    "Echo",
    " Stream",
    " relays",
    " tokens",
    " as",
    " they",
    " arrive",
    ".",
    "\n\n",
    "Nothing",
    " is",
    " buffered",
    ".",
]
REFUSAL_PIECES = ["I'm", " sorry", ",", " but", " I", " can't", " help", " with", " that", "."]
WEATHER_ARGS = ['{"ci', 'ty": ', '"Par', 'is", "u', 'nit": "c', 'elsius"}']
TIME_ARGS = ['{"tim', "ezone", '": "Eur', "ope/Pa", 'ris"}']

EXPECTED: dict[str, list[Event]] = {
    "openai_text.sse": [
        *(TextDelta(piece) for piece in TEXT_PIECES),
        Finish("stop"),
        Usage(21, 13, 34, cached_tokens=8, reasoning_tokens=0),
    ],
    "openai_parallel_tool_calls.sse": [
        ToolCallDelta(0, "", "call_7fQx2LmWbN4tYpKc9RaZ1uEv", "get_weather"),
        *(ToolCallDelta(0, piece) for piece in WEATHER_ARGS),
        ToolCallDelta(1, "", "call_3HsVd8oJkGe5Wn0TqBiXy6Mf", "get_local_time"),
        *(ToolCallDelta(1, piece) for piece in TIME_ARGS),
        Finish("tool_calls"),
        Usage(142, 51, 193, reasoning_tokens=0),
    ],
    "openai_n2.sse": [
        TextDelta("Red", 0),
        TextDelta("Blue", 1),
        TextDelta(" sky", 0),
        TextDelta(" sea", 1),
        TextDelta(" at", 0),
        TextDelta(",", 1),
        TextDelta(" night", 0),
        TextDelta(" calm", 1),
        TextDelta(".", 0),
        TextDelta(" wind", 1),
        Finish("stop", 0),
        TextDelta(".", 1),
        Finish("length", 1),
        Usage(17, 11, 28),
    ],
    "openai_refusal.sse": [
        *(RefusalDelta(piece) for piece in REFUSAL_PIECES),
        Finish("stop"),
        Usage(64, 10, 74),
    ],
    # DeepSeek-reasoner: `reasoning_content` first (content null), then content.
    "openai_reasoning.sse": [
        ReasoningDelta("Okay"),
        ReasoningDelta(", 9.11 vs 9.8"),
        ReasoningDelta(": compare tenths — 1 < 8"),
        TextDelta("9.8"),
        TextDelta(" is larger"),
        TextDelta("."),
        Finish("stop"),
        Usage(15, 120, 135, reasoning_tokens=112),
    ],
}


@pytest.mark.parametrize("fixture", sorted(EXPECTED))
async def test_fixture_in_one_piece(fixture: str) -> None:
    events = await run(FakeUpstream.streaming(load_stream(fixture)))

    assert events == EXPECTED[fixture]


@pytest.mark.parametrize("fixture", sorted(EXPECTED))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
async def test_fixture_resplit_anywhere(fixture: str, data: st.DataObject) -> None:
    raw = load_stream(fixture)
    pieces = data.draw(resplits(raw), label="pieces")

    events = await run(FakeUpstream.streaming(raw, pieces))

    assert events == EXPECTED[fixture]


async def test_text_stream_joins_to_the_answer() -> None:
    events = await run(FakeUpstream.streaming(load_stream("openai_text.sse")))

    assert text_of(events) == "Echo Stream relays tokens as they arrive.\n\nNothing is buffered."
    assert [e for e in events if isinstance(e, Finish)] == [Finish("stop")]


async def test_parallel_tool_calls_assemble_to_valid_json() -> None:
    events = await run(FakeUpstream.streaming(load_stream("openai_parallel_tool_calls.sse")))

    calls = assemble_tool_calls(events)
    assert [(c.id, c.name) for c in calls] == [
        ("call_7fQx2LmWbN4tYpKc9RaZ1uEv", "get_weather"),
        ("call_3HsVd8oJkGe5Wn0TqBiXy6Mf", "get_local_time"),
    ]
    assert [orjson.loads(c.arguments) for c in calls] == [
        {"city": "Paris", "unit": "celsius"},
        {"timezone": "Europe/Paris"},
    ]
    assert text_of(events) == ""
    assert events[-2:] == [Finish("tool_calls"), Usage(142, 51, 193, reasoning_tokens=0)]


async def test_two_choices_stay_apart() -> None:
    events = await run(FakeUpstream.streaming(load_stream("openai_n2.sse")), chat(n=2))

    assert text_of(events, 0) == "Red sky at night."
    assert text_of(events, 1) == "Blue sea, calm wind."
    finishes = [e for e in events if isinstance(e, Finish)]
    assert finishes == [Finish("stop", 0), Finish("length", 1)]


async def test_refusal_streams_as_refusal_deltas() -> None:
    events = await run(FakeUpstream.streaming(load_stream("openai_refusal.sse")))

    assert refusal_of(events) == "I'm sorry, but I can't help with that."
    assert text_of(events) == ""


def _without_finish_and_done(raw: bytes) -> bytes:
    """The stream as it looks when the connection drops after the last content chunk."""
    events = raw.split(b"\n\n")
    kept = [e for e in events if b'"finish_reason":"' not in e and e not in (b"data: [DONE]",)]
    return b"\n\n".join(e for e in kept if b'"usage"' not in e)


async def test_stream_cut_before_finish_is_an_upstream_failure() -> None:
    raw = _without_finish_and_done(load_stream("openai_text.sse"))
    assert b"[DONE]" not in raw and b'finish_reason":"' not in raw

    with pytest.raises(UpstreamUnavailable):
        await run(FakeUpstream.streaming(raw))


async def test_stream_with_one_choice_unfinished_is_an_upstream_failure() -> None:
    raw = load_stream("openai_n2.sse")
    cut = raw.index(b'"finish_reason":"length"')
    raw = raw[: raw.rindex(b"\n\n", 0, cut) + 2]  # choice 0 finished, choice 1 did not

    with pytest.raises(UpstreamUnavailable):
        await run(FakeUpstream.streaming(raw), chat(n=2))


async def test_stream_without_done_is_fine_once_every_choice_finished() -> None:
    raw = load_stream("openai_text.sse").replace(b"data: [DONE]\n\n", b"")

    events = await run(FakeUpstream.streaming(raw))

    assert events == EXPECTED["openai_text.sse"]


async def test_error_chunk_mid_stream_raises() -> None:
    raw = load_stream("openai_text.sse")
    first_two = b"\n\n".join(raw.split(b"\n\n")[:2]) + b"\n\n"
    error = b'data: {"error":{"message":"The server had an error","type":"server_error"}}\n\n'

    with pytest.raises(UpstreamUnavailable, match="The server had an error"):
        await run(FakeUpstream.streaming(first_two + error))


async def test_malformed_json_chunk_raises() -> None:
    with pytest.raises(UpstreamUnavailable, match="malformed"):
        await run(FakeUpstream.streaming(b'data: {"choices": [\n\n'))


def test_parse_chunk_ignores_empty_role_and_content() -> None:
    chunk = orjson.loads(load_stream("openai_text.sse").split(b"\n\n")[0][len(b"data: ") :])

    assert parse_chunk(chunk) == []


# --- upstream statuses and transport failures ---------------------------------------------------

OPENAI_400 = {
    "error": {
        "message": "Invalid value for 'temperature': expected a number <= 2.",
        "type": "invalid_request_error",
        "param": "temperature",
        "code": "invalid_value",
    }
}


async def test_400_passes_through_with_the_upstream_message_and_no_retry() -> None:
    upstream = FakeUpstream(Status(400, OPENAI_400))

    with pytest.raises(UpstreamRejected) as caught:
        await run(upstream, max_retries=2)

    assert caught.value.status == 400
    assert "Invalid value for 'temperature'" in caught.value.message
    assert upstream.calls == 1


async def test_401_passes_through_as_401() -> None:
    upstream = FakeUpstream(Status(401, {"error": {"message": "Incorrect API key provided"}}))

    with pytest.raises(UpstreamRejected) as caught:
        await run(upstream)

    assert caught.value.status == 401
    assert "Incorrect API key provided" in caught.value.message


async def test_429_keeps_retry_after_once_retries_are_exhausted() -> None:
    limited = Status(429, {"error": {"message": "Rate limit reached"}}, {"Retry-After": "7"})
    upstream = FakeUpstream(limited)

    with pytest.raises(RateLimited) as caught:
        await run(upstream, max_retries=1)

    assert caught.value.status == 429
    assert caught.value.headers == {"Retry-After": "7"}
    assert upstream.calls == 2


async def test_500_then_200_succeeds_on_the_retry() -> None:
    upstream = FakeUpstream(
        Status(500, {"error": {"message": "boom"}}), Stream([load_stream("openai_text.sse")])
    )

    events = await run(upstream, max_retries=1)

    assert events == EXPECTED["openai_text.sse"]
    assert upstream.calls == 2
    assert upstream.requests[0].content == upstream.requests[1].content


async def test_503_twice_is_unavailable() -> None:
    upstream = FakeUpstream(Status(503, b"upstream connect error"))

    with pytest.raises(UpstreamUnavailable) as caught:
        await run(upstream, max_retries=1)

    assert caught.value.status == 502
    assert "upstream connect error" in caught.value.message
    assert upstream.calls == 2


async def test_connect_error_is_unavailable() -> None:
    upstream = FakeUpstream(httpx.ConnectError("connection refused"))

    with pytest.raises(UpstreamUnavailable) as caught:
        await run(upstream)

    assert caught.value.status == 502


async def test_connect_error_is_retried_before_the_first_byte() -> None:
    upstream = FakeUpstream(
        httpx.ConnectError("connection refused"), Stream([load_stream("openai_text.sse")])
    )

    events = await run(upstream, max_retries=1)

    assert text_of(events).startswith("Echo Stream")
    assert upstream.calls == 2


async def test_connect_timeout_is_a_timeout() -> None:
    upstream = FakeUpstream(httpx.ConnectTimeout("timed out"))
    client = upstream.client(over_httpx=True)  # a loopback upstream cannot be slow to accept
    adapter = OpenAIProvider(BASE_URL, "sk-test-123", options(), client=client)

    with pytest.raises(UpstreamTimeout) as caught:
        await collect(adapter.stream(chat(), "gpt-4o-mini"))

    assert caught.value.status == 504


async def test_read_timeout_mid_stream_is_a_timeout_without_retry() -> None:
    raw = load_stream("openai_text.sse")
    pieces = split_at(raw, [200, 700, 1200])[:3]
    upstream = FakeUpstream(Stream(pieces, then_raise=httpx.ReadTimeout("no data")))
    seen: list[Event] = []

    with pytest.raises(UpstreamTimeout):
        async for event in provider(upstream, max_retries=3).stream(chat(), "gpt-4o-mini"):
            seen.append(event)

    assert text_of(seen).startswith("Echo")  # the text before the stall went out
    assert upstream.calls == 1


async def test_connection_drop_mid_stream_is_unavailable_without_retry() -> None:
    raw = load_stream("openai_text.sse")
    upstream = FakeUpstream(
        Stream(split_at(raw, [900])[:1], then_raise=httpx.RemoteProtocolError("peer closed"))
    )

    with pytest.raises(UpstreamUnavailable):
        await run(upstream, max_retries=3)

    assert upstream.calls == 1


# --- connection hygiene ------------------------------------------------------------------------


async def test_upstream_response_is_closed_as_soon_as_the_stream_ends() -> None:
    upstream = FakeUpstream.streaming(load_stream("openai_text.sse"))

    await run(upstream)

    assert upstream.bodies[0].closed


async def test_upstream_response_is_closed_when_the_consumer_stops_early() -> None:
    upstream = FakeUpstream.streaming(load_stream("openai_text.sse"))
    stream = provider(upstream).stream(chat(), "gpt-4o-mini")

    assert await anext(stream) == TextDelta("Echo")
    await stream.aclose()

    assert upstream.bodies[0].closed


def _delta_chunk(delta: dict[str, object]) -> dict[str, object]:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]}


def test_openrouter_style_reasoning_field_is_reasoning() -> None:
    events = parse_chunk(_delta_chunk({"content": "", "reasoning": "Thinking it over"}))

    assert events == [ReasoningDelta("Thinking it over")]


def test_reasoning_and_content_in_one_delta_keep_reasoning_apart() -> None:
    events = parse_chunk(_delta_chunk({"content": "Yes.", "reasoning_content": "Sure?"}))

    assert events == [TextDelta("Yes."), ReasoningDelta("Sure?")]


@pytest.mark.parametrize("empty", [None, ""])
def test_empty_or_null_reasoning_makes_no_event(empty: str | None) -> None:
    events = parse_chunk(_delta_chunk({"content": "Hi", "reasoning_content": empty}))

    assert events == [TextDelta("Hi")]


async def test_reasoning_of_a_wrong_type_is_a_bad_upstream() -> None:
    raw = b"data: " + orjson.dumps(_delta_chunk({"reasoning_content": 42})) + b"\n\n"

    with pytest.raises(UpstreamUnavailable):
        await run(FakeUpstream.streaming(raw + b"data: [DONE]\n\n"))
