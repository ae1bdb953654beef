"""Shared helpers for the provider tests: a scripted fake upstream served over loopback to the
production client, the stream fixtures, byte re-splitting for hypothesis, and small readers of
event lists.

`FakeUpstream.client()` is a real `FastClient` whose plain-http traffic goes, as to an HTTP
proxy, to a loopback server (`_Bridge`) that answers each request with the fake's scripted
reply: adapters keep their base URLs (`http://up/v1`) while the production client's pooling,
parsing, framing and timeouts are in the loop. `client(over_httpx=True)` keeps the old
`httpx.MockTransport` path for the few tests of httpx's own error mapping.

The helpers are plain functions and classes (imported with `from .conftest import ...`) because
hypothesis tests cannot use function-scoped pytest fixtures.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import ssl
import threading
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import trustme
from hypothesis import strategies as st

from echo_stream.events import FLUSH, Event, EventStream, RefusalDelta, TextDelta, ToolCallDelta
from echo_stream.protocol import ChatCompletionRequest
from echo_stream.providers.http import UpstreamOptions, make_client
from echo_stream.providers.transport.base import UpstreamClient
from echo_stream.providers.transport.fastclient import FastClient

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

    def client(self, max_retries: int = 0, *, over_httpx: bool = False) -> UpstreamClient:
        """The production client wired to this fake over loopback (or httpx's MockTransport)."""
        if over_httpx:
            return make_client(options(max_retries), transport=httpx.MockTransport(self.handler))
        bridge = _Bridge.start(self)
        proxies = {"http": bridge.url, "https": bridge.url}
        return FastClient(
            connect_timeout=5, read_timeout=1.0, proxies=proxies, ssl_context=_tls().client
        )

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
    """A streamed response body that remembers whether the client closed it (over loopback:
    whether the response ended or the client left, which the bridge learns a moment later)."""

    def __init__(self, pieces: Sequence[bytes], then_raise: Exception | None) -> None:
        self._pieces = pieces
        self._then_raise = then_raise
        self._closed = threading.Event()

    @property
    def closed(self) -> bool:
        """True once closed; waits up to 5 s for the bridge's thread to notice."""
        return self._closed.wait(5)

    def mark_closed(self) -> None:
        self._closed.set()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self._pieces:
            yield piece
        if self._then_raise is not None:
            raise self._then_raise

    async def aclose(self) -> None:
        self._closed.set()


class _Bridge:
    """A loopback server answering absolute-form requests with a `FakeUpstream`'s replies.

    A reply that raises `httpx.ConnectTimeout` becomes a 504 and any other raised error a 502
    (what a proxy answers when it cannot reach the upstream); a stream's `then_raise` becomes
    silence until the client leaves (`httpx.ReadTimeout`, so the client's read timeout fires)
    or an abrupt reset (anything else).
    """

    running: list[_Bridge] = []

    def __init__(self, upstream: FakeUpstream) -> None:
        self._upstream = upstream
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self.url = ""
        started = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        self._thread.start()
        started.wait(5)

    @classmethod
    def start(cls, upstream: FakeUpstream) -> _Bridge:
        bridge = cls(upstream)
        cls.running.append(bridge)
        return bridge

    def _run(self, started: threading.Event) -> None:
        async def main() -> None:
            self._stop = asyncio.Event()
            server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
            self.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
            started.set()
            async with server:
                await self._stop.wait()
            tasks = asyncio.all_tasks() - {asyncio.current_task()}
            for task in tasks:  # connections the client still keeps pooled
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self._loop.run_until_complete(main())
        self._loop.close()

    def close(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=5)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        origin = [""]  # set by CONNECT: the https origin the tunnel's requests are for
        quiet = (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError, asyncio.CancelledError)
        with contextlib.suppress(*quiet):  # cancelled: the bridge is closing
            while await self._one(reader, writer, origin):
                pass
        writer.close()

    async def _one(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, origin: list[str]
    ) -> bool:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        request_line, *lines = head.rstrip("\r\n").split("\r\n")
        method, target, _ = request_line.split(" ", 2)
        if method == "CONNECT":  # https: end the tunnel here, with a certificate for the host
            host, port = target.rsplit(":", 1)
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await writer.start_tls(_tls().server)
            origin[0] = f"https://{host}" + ("" if port == "443" else f":{port}")
            return True
        target = origin[0] + target if target.startswith("/") else target
        headers = [tuple(part.strip() for part in line.split(":", 1)) for line in lines]
        length = next((int(v) for k, v in headers if k.lower() == "content-length"), 0)
        content = await reader.readexactly(length)
        request = httpx.Request(method, target, headers=headers, content=content)
        try:
            response = self._upstream.handler(request)
        except httpx.HTTPError as exc:
            status = 504 if isinstance(exc, httpx.ConnectTimeout) else 502
            error = orjson.dumps({"error": {"message": f"upstream connect error: {exc}"}})
            writer.write(_head(status, {"content-length": str(len(error))}) + error)
            await writer.drain()
            return True
        if not isinstance(response.stream, _Body):
            body = response.content
            fields = {**response.headers, "content-length": str(len(body))}
            writer.write(_head(response.status_code, fields) + body)
            await writer.drain()
            return True
        return await self._stream(reader, writer, response, response.stream)

    async def _stream(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        response: httpx.Response,
        body: _Body,
    ) -> bool:
        fields = {**response.headers, "transfer-encoding": "chunked"}
        writer.write(_head(response.status_code, fields))
        try:
            for piece in body._pieces:
                if piece:
                    writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                await writer.drain()
            if isinstance(body._then_raise, httpx.ReadTimeout):
                await reader.read()  # silence until the client gives up and closes
                return False
            if body._then_raise is not None:
                writer.transport.abort()
                return False
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            return True
        finally:
            body.mark_closed()


@dataclass(frozen=True)
class _TLS:
    client: ssl.SSLContext
    server: ssl.SSLContext


@functools.cache
def _tls() -> _TLS:
    """A test CA whose one certificate covers every `*.example.test` host the tests use."""
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("*.example.test", "example.test").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return _TLS(client, server)


def _head(status: int, fields: Iterable[tuple[str, str]] | dict[str, str]) -> bytes:
    items = fields.items() if isinstance(fields, dict) else fields
    lines = [f"HTTP/1.1 {status} {httpx.codes.get_reason_phrase(status) or 'Status'}"]
    lines += [
        f"{k}: {v}" for k, v in items if k.lower() not in ("content-length", "transfer-encoding")
    ]
    lines += [f"{k}: {v}" for k, v in items if k.lower() in ("content-length", "transfer-encoding")]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@pytest.fixture(autouse=True)
def _close_bridges() -> Iterator[None]:
    yield
    while _Bridge.running:
        _Bridge.running.pop().close()


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
