"""Shared helpers for the provider tests: a fake upstream on `httpx.MockTransport`, the stream
fixtures, byte re-splitting for hypothesis, and small readers of event lists.

The helpers are plain functions and classes (imported with `from .conftest import ...`) because
hypothesis tests cannot use function-scoped pytest fixtures.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from hypothesis import strategies as st

from echo_stream.events import FLUSH, Event, EventStream, RefusalDelta, TextDelta, ToolCallDelta
from echo_stream.protocol import ChatCompletionRequest
from echo_stream.providers.http import UpstreamOptions, make_client

FIXTURES = Path(__file__).parents[1] / "fixtures" / "streams"


def load_stream(name: str) -> bytes:
    """The raw bytes of one fixture in `tests/fixtures/streams/`."""
    return (FIXTURES / name).read_bytes()


# --- re-splitting byte streams ---------------------------------------------------------------


def tricky_offsets(data: bytes) -> list[int]:
    """Cut points that break something: between `\\r` and `\\n`, inside a multi-byte character,
    just after `data:` and inside the blank line that ends an event."""
    offsets: set[int] = set()
    for i in range(1, len(data)):
        if data[i] & 0xC0 == 0x80:  # a UTF-8 continuation byte
            offsets.add(i)
        if data[i - 1 : i + 1] == b"\r\n":
            offsets.add(i)
    for marker in (b"data:", b"\n\n", b"\r\n\r\n", b"event:"):
        start = data.find(marker)
        while start != -1:
            offsets.update(o for o in range(start + 1, start + len(marker)) if o < len(data))
            start = data.find(marker, start + 1)
    return sorted(offsets)


def split_at(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    """`data` cut at each offset in `cuts` (order and duplicates do not matter)."""
    bounds = [0, *sorted({c for c in cuts if 0 < c < len(data)}), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def byte_by_byte(data: bytes) -> list[bytes]:
    """The harshest split: one byte per piece."""
    return [data[i : i + 1] for i in range(len(data))]


def resplits(data: bytes, max_cuts: int = 60) -> st.SearchStrategy[list[bytes]]:
    """Hypothesis strategy: `data` cut at random offsets, biased towards the tricky ones, or
    one byte per piece."""
    anywhere = st.integers(1, max(1, len(data) - 1))
    tricky = tricky_offsets(data)
    offset = st.one_of(anywhere, st.sampled_from(tricky)) if tricky else anywhere
    cuts = st.lists(offset, max_size=max_cuts).map(lambda c: split_at(data, c))
    return st.one_of(st.just(byte_by_byte(data)), cuts)


# --- the fake upstream -------------------------------------------------------------------------


@dataclass(frozen=True)
class Stream:
    """A 200 `text/event-stream` answer sent piece by piece, optionally failing after them."""

    pieces: Sequence[bytes]
    then_raise: Exception | None = None


@dataclass(frozen=True)
class Status:
    """A non-streaming answer, typically an error status with a JSON body."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


Reply = Stream | Status | Exception


class FakeUpstream:
    """An `httpx.MockTransport` handler that answers with `replies` in turn (the last one
    repeats) and records every request it got."""

    def __init__(self, *replies: Reply) -> None:
        assert replies, "a fake upstream needs at least one reply"
        self._replies = replies
        self.requests: list[httpx.Request] = []
        self.bodies: list[_Body] = []

    @classmethod
    def streaming(cls, data: bytes, pieces: Sequence[bytes] | None = None) -> FakeUpstream:
        """An upstream that streams `data` (as `pieces` when given)."""
        return cls(Stream(pieces if pieces is not None else [data]))

    @property
    def calls(self) -> int:
        return len(self.requests)

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]

    def body(self) -> dict[str, Any]:
        """The JSON body of the last request."""
        parsed: dict[str, Any] = orjson.loads(self.last.content)
        return parsed

    def client(self, max_retries: int = 0) -> httpx.AsyncClient:
        return make_client(options(max_retries), transport=httpx.MockTransport(self.handler))

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        reply = self._replies[min(len(self.requests), len(self._replies)) - 1]
        if isinstance(reply, Exception):
            raise reply
        if isinstance(reply, Status):
            body = reply.body
            content = body if isinstance(body, bytes) else orjson.dumps(body)
            headers = {"content-type": "application/json", **reply.headers}
            return httpx.Response(reply.status, headers=headers, content=content)
        body = _Body(reply.pieces, reply.then_raise)
        self.bodies.append(body)
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=body)


class _Body(httpx.AsyncByteStream):
    """A streamed response body that remembers whether the client closed it."""

    def __init__(self, pieces: Sequence[bytes], then_raise: Exception | None) -> None:
        self._pieces = pieces
        self._then_raise = then_raise
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self._pieces:
            yield piece
        if self._then_raise is not None:
            raise self._then_raise

    async def aclose(self) -> None:
        self.closed = True


def options(max_retries: int = 0) -> UpstreamOptions:
    return UpstreamOptions(max_retries=max_retries)


# --- requests and events -----------------------------------------------------------------------


def chat(**fields: Any) -> ChatCompletionRequest:
    """A validated chat request; `messages` defaults to one user message."""
    fields.setdefault("model", "echo-test")
    fields.setdefault("messages", [{"role": "user", "content": "Hello?"}])
    return ChatCompletionRequest.model_validate(fields)


WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}


async def collect(events: EventStream) -> list[Event]:
    """Every event of a stream, in order, without the `FLUSH` markers (which depend on how the
    bytes were split); the stream is closed even if a test fails."""
    out: list[Event] = []
    try:
        async for event in events:
            if event is not FLUSH:
                out.append(event)
    finally:
        await events.aclose()
    return out


def text_of(events: Iterable[Event], choice: int = 0) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta) and e.choice == choice)


def refusal_of(events: Iterable[Event], choice: int = 0) -> str:
    return "".join(e.text for e in events if isinstance(e, RefusalDelta) and e.choice == choice)


@dataclass
class AssembledCall:
    id: str
    name: str
    arguments: str = ""


def assemble_tool_calls(events: Iterable[Event], choice: int = 0) -> list[AssembledCall]:
    """Join tool-call fragments the way an OpenAI client does, checking the contract on the way:
    `id` and `name` on a call's first fragment only, indexes 0, 1, 2... in order of appearance."""
    calls: dict[int, AssembledCall] = {}
    for event in events:
        if not isinstance(event, ToolCallDelta) or event.choice != choice:
            continue
        if event.index not in calls:
            assert event.index == len(calls), f"tool index {event.index} skips ahead"
            assert event.id and event.name, "a call's first fragment must carry id and name"
            calls[event.index] = AssembledCall(event.id, event.name)
        else:
            assert event.id is None and event.name is None, "id/name repeated on a later fragment"
        calls[event.index].arguments += event.arguments
    return list(calls.values())
