"""Fake upstreams for app-level tests: provider-shaped byte streams behind `httpx.MockTransport`.

The streams follow the real captures in shared/reference/provider-streams (framing, field order,
where usage and finish reasons appear). `FakeUpstream` answers each request with the next
scripted reply and records what the gateway sent, so tests can check both directions.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx


def _sse(obj: Any, event: str | None = None, newline: str = "\n") -> str:
    head = f"event: {event}{newline}" if event else ""
    return f"{head}data: {json.dumps(obj, ensure_ascii=False)}{newline}{newline}"


def openai_stream(pieces: list[str], *, finish: str = "stop", usage: bool = True) -> bytes:
    """An OpenAI chat stream: role chunk, content deltas, finish chunk, usage chunk, [DONE]."""
    head = {"id": "chatcmpl-up", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    chunk = lambda delta, fr=None: {  # noqa: E731
        **head,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": fr}],
    }
    out = [_sse(chunk({"role": "assistant", "content": "", "refusal": None}))]
    out += [_sse(chunk({"content": piece})) for piece in pieces]
    out.append(_sse(chunk({}, finish)))
    if usage:
        counts = {
            "prompt_tokens": 11,
            "completion_tokens": len(pieces),
            "total_tokens": 11 + len(pieces),
        }
        out.append(_sse({**head, "choices": [], "usage": counts}))
    out.append("data: [DONE]\n\n")
    return "".join(out).encode()


def openai_tool_stream() -> bytes:
    """Two parallel tool calls, arguments in fragments, as OpenAI streams them."""
    head = {"id": "chatcmpl-up", "object": "chat.completion.chunk", "created": 1, "model": "m"}

    def chunk(delta: dict[str, Any], fr: str | None = None) -> dict[str, Any]:
        return {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": fr}]}

    def call(index: int, **fields: Any) -> dict[str, Any]:
        return {"tool_calls": [{"index": index, **fields}]}

    out = [_sse(chunk({"role": "assistant", "content": None}))]
    for index, (name, args) in enumerate(
        (("get_weather", '{"city": "Paris"}'), ("get_time", "{}"))
    ):
        first = {
            "id": f"call_{index}",
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }
        out.append(_sse(chunk(call(index, **first))))
        for start in range(0, len(args), 5):
            out.append(_sse(chunk(call(index, function={"arguments": args[start : start + 5]}))))
    out.append(_sse(chunk({}, "tool_calls")))
    out.append("data: [DONE]\n\n")
    return "".join(out).encode()


def anthropic_stream(pieces: list[str], *, stop: str = "end_turn") -> bytes:
    """An Anthropic Messages stream with a ping and no blank line after the last event."""
    out = [
        _sse(
            {
                "type": "message_start",
                "message": {
                    "id": "msg_1",
                    "type": "message",
                    "role": "assistant",
                    "content": [],
                    "model": "claude",
                    "stop_reason": None,
                    "usage": {"input_tokens": 9, "output_tokens": 1},
                },
            },
            "message_start",
        ),
        _sse(
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
            "content_block_start",
        ),
        _sse({"type": "ping"}, "ping"),
    ]
    for piece in pieces:
        delta = {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": piece},
        }
        out.append(_sse(delta, "content_block_delta"))
    out.append(_sse({"type": "content_block_stop", "index": 0}, "content_block_stop"))
    out.append(
        _sse(
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop},
                "usage": {"output_tokens": len(pieces)},
            },
            "message_delta",
        )
    )
    out.append('event: message_stop\ndata: {"type":"message_stop"}')
    return "".join(out).encode()


def gemini_stream(pieces: list[str]) -> bytes:
    """A Gemini alt=sse stream: CRLF framing, cumulative usage, finishReason on the last."""
    out = []
    for number, piece in enumerate(pieces, start=1):
        candidate: dict[str, Any] = {
            "content": {"parts": [{"text": piece}], "role": "model"},
            "index": 0,
        }
        if number == len(pieces):
            candidate["finishReason"] = "STOP"
        usage = {
            "promptTokenCount": 4,
            "candidatesTokenCount": number,
            "totalTokenCount": 4 + number,
        }
        out.append(_sse({"candidates": [candidate], "usageMetadata": usage}, newline="\r\n"))
    return "".join(out).encode()


def random_pieces(data: bytes, rng: random.Random, max_piece: int = 40) -> list[bytes]:
    """`data` split at random offsets (inside lines, CRLFs and UTF-8 characters alike)."""
    pieces, start = [], 0
    while start < len(data):
        end = start + rng.randint(1, max_piece)
        pieces.append(data[start:end])
        start = end
    return pieces


@dataclass
class Reply:
    """One scripted upstream answer."""

    status: int = 200
    pieces: list[bytes] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    first_delay: float = 0.0
    fail_after: int | None = None
    raise_error: Exception | None = None


class TrackedStream(httpx.AsyncByteStream):
    """A streamed body that records when the gateway closes it (cancelling the upstream)."""

    def __init__(self, reply: Reply, closed: threading.Event) -> None:
        self._reply = reply
        self._closed = closed

    async def __aiter__(self) -> AsyncIterator[bytes]:
        await asyncio.sleep(self._reply.first_delay)
        for number, piece in enumerate(self._reply.pieces):
            if self._reply.fail_after is not None and number == self._reply.fail_after:
                raise httpx.ReadError("connection reset by upstream")
            if number and self._reply.delay:
                await asyncio.sleep(self._reply.delay)
            yield piece

    async def aclose(self) -> None:
        self._closed.set()


class FakeUpstream:
    """Scripted replies in order (the last one repeats); records every request it gets."""

    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.requests: list[httpx.Request] = []
        self.closed = threading.Event()
        self.transport = httpx.MockTransport(self._handle)

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(request.content) for request in self.requests]

    async def _handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        reply = self.replies[min(len(self.requests), len(self.replies)) - 1]
        if reply.raise_error is not None:
            raise reply.raise_error
        headers = {"content-type": "text/event-stream", **reply.headers}
        if reply.status >= 400:
            return httpx.Response(reply.status, headers=headers, content=b"".join(reply.pieces))
        return httpx.Response(200, headers=headers, stream=TrackedStream(reply, self.closed))


def text_reply(builder: Callable[[list[str]], bytes], pieces: list[str], seed: int = 0) -> Reply:
    """A 200 reply streaming `builder(pieces)` re-split at random offsets."""
    return Reply(pieces=random_pieces(builder(pieces), random.Random(seed)))


@dataclass
class Recorded:
    """A request as the socket upstream received it."""

    method: str
    path: str
    headers: dict[str, str]
    content: bytes


class SocketUpstream:
    """`FakeUpstream`'s scripted replies served over real loopback sockets (HTTP/1.1, chunked,
    keep-alive), so the gateway's production HTTP client is what talks to it.

    `closed` is set when the gateway abandons a reply before its end (disconnect, timeout).
    """

    instances: list[SocketUpstream] = []

    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.requests: list[Recorded] = []
        self.closed = threading.Event()
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        started = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(started,), daemon=True)
        self._thread.start()
        started.wait(5)
        SocketUpstream.instances.append(self)

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(request.content) for request in self.requests]

    def _run(self, started: threading.Event) -> None:
        async def main() -> None:
            self._stop = asyncio.Event()
            server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
            started.set()
            async with server:
                await self._stop.wait()

        self._loop.run_until_complete(main())

    def close(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=5)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await self._serve_one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {
            k.strip().lower(): v.strip()
            for k, _, v in (line.partition(":") for line in lines[1:] if line)
        }
        content = await reader.readexactly(int(headers.get("content-length", "0")))
        self.requests.append(Recorded(method, path, headers, content))
        reply = self.replies[min(len(self.requests), len(self.replies)) - 1]
        if reply.raise_error is not None:
            return False  # drop the connection without answering
        extra = "".join(f"{k}: {v}\r\n" for k, v in reply.headers.items())
        if reply.status >= 400:
            body = b"".join(reply.pieces)
            writer.write(
                f"HTTP/1.1 {reply.status} Error\r\ncontent-type: application/json\r\n{extra}"
                f"content-length: {len(body)}\r\n\r\n".encode()
                + body
            )
            await writer.drain()
            return True
        writer.write(
            f"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n{extra}"
            "transfer-encoding: chunked\r\n\r\n".encode()
        )
        await writer.drain()
        eof = asyncio.ensure_future(reader.read(1))
        try:
            if await self._gone(eof, reply.first_delay):
                return False
            for number, piece in enumerate(reply.pieces):
                if reply.fail_after is not None and number == reply.fail_after:
                    writer.transport.abort()
                    return False
                if number and await self._gone(eof, reply.delay):
                    return False
                writer.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            return True
        finally:
            eof.cancel()

    async def _gone(self, eof: asyncio.Future[bytes], seconds: float) -> bool:
        """Wait `seconds` (at least one loop turn); True if the client left meanwhile."""
        await asyncio.wait((eof,), timeout=seconds)
        if eof.done():
            self.closed.set()
            return True
        return False


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
