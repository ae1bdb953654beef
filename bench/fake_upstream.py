"""A cheap fake LLM upstream: OpenAI, Anthropic and Gemini streaming endpoints on one port.

Raw asyncio streams (uvloop when present) and a minimal HTTP/1.1 keep-alive handler, so that it
costs far less than anything it serves. Each stream's events copy the byte layout of the real
captures in shared/reference/provider-streams; the number of content chunks and the delay
between them come from the model name (see ``bench.workload``).

Run: ``python -m bench.fake_upstream --port 0``; it prints ``LISTENING <port>`` once ready.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import re
import socket
import sys
import time
from collections.abc import Iterator

import orjson

from bench.procs import raise_nofile_limit, run_async
from bench.workload import StreamShape, shape_from_model, token

_SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: text/event-stream; charset=utf-8\r\n"
    b"Cache-Control: no-cache\r\n"
    b"Connection: keep-alive\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)
_GEMINI_PATH = re.compile(r"^/v1(?:beta)?/models/([^/:]+):streamGenerateContent$")
_PROMPT_TOKENS = 8
_ids = itertools.count(1)

Event = tuple[str, bool]
"""One SSE event's text, and whether it carries a content chunk (those are the paced ones)."""


def _json_str(text: str) -> str:
    return orjson.dumps(text).decode()


def openai_events(model: str, shape: StreamShape, include_usage: bool) -> Iterator[Event]:
    """An OpenAI chat.completion.chunk stream, laid out like openai_chat_stream.txt."""
    head = (
        f'{{"id":"chatcmpl-bench{next(_ids):012d}","object":"chat.completion.chunk",'
        f'"created":{int(time.time())},"model":{_json_str(model)},'
        f'"system_fingerprint":"fp_bench0001","choices":'
    )

    def choice(delta: str, finish: str) -> str:
        tail = f'"logprobs":null,"finish_reason":{finish}'
        return f'data: {head}[{{"index":0,"delta":{delta},{tail}}}]}}\n\n'

    yield choice('{"role":"assistant","content":"","refusal":null}', "null"), False
    for n in range(shape.chunks):
        yield choice(f'{{"content":{_json_str(token(n, shape.chunks))}}}', "null"), True
    yield choice("{}", '"stop"'), False
    if include_usage:
        usage = (
            f'{{"prompt_tokens":{_PROMPT_TOKENS},"completion_tokens":{shape.chunks},'
            f'"total_tokens":{_PROMPT_TOKENS + shape.chunks},'
            '"completion_tokens_details":{"reasoning_tokens":0}}'
        )
        yield f'data: {head}[],"usage":{usage}}}\n\n', False
    yield "data: [DONE]\n\n", False


def openai_completion(model: str, shape: StreamShape) -> bytes:
    """A non-streamed OpenAI ``chat.completion`` (``"stream": false``): the same text, whole."""
    text = "".join(token(n, shape.chunks) for n in range(shape.chunks))
    return (
        f'{{"id":"chatcmpl-bench{next(_ids):012d}","object":"chat.completion",'
        f'"created":{int(time.time())},"model":{_json_str(model)},"choices":[{{"index":0,'
        f'"message":{{"role":"assistant","content":{_json_str(text)},"refusal":null,'
        f'"annotations":[]}},"logprobs":null,"finish_reason":"stop"}}],'
        f'"usage":{{"prompt_tokens":{_PROMPT_TOKENS},"completion_tokens":{shape.chunks},'
        f'"total_tokens":{_PROMPT_TOKENS + shape.chunks},'
        '"completion_tokens_details":{"reasoning_tokens":0}},'
        '"service_tier":"default","system_fingerprint":"fp_bench0001"}'
    ).encode()


def anthropic_events(model: str, shape: StreamShape) -> Iterator[Event]:
    """An Anthropic Messages event stream, laid out like anthropic_messages_stream_basic.txt."""
    message = (
        f'{{"id":"msg_bench{next(_ids):016d}","type":"message","role":"assistant","content":[],'
        f'"model":{_json_str(model)},"stop_reason":null,"stop_sequence":null,'
        f'"usage":{{"input_tokens":{_PROMPT_TOKENS},"output_tokens":1}}}}'
    )
    yield f'event: message_start\ndata: {{"type":"message_start","message":{message}}}\n\n', False
    yield (
        "event: content_block_start\n"
        'data: {"type":"content_block_start","index":0,'
        '"content_block":{"type":"text","text":""}}\n\n',
        False,
    )
    yield 'event: ping\ndata: {"type": "ping"}\n\n', False
    for n in range(shape.chunks):
        delta = f'{{"type":"text_delta","text":{_json_str(token(n, shape.chunks))}}}'
        yield (
            "event: content_block_delta\n"
            f'data: {{"type":"content_block_delta","index":0,"delta":{delta}}}\n\n',
            True,
        )
    yield 'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n', False
    yield (
        "event: message_delta\n"
        'data: {"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},'
        f'"usage":{{"output_tokens":{shape.chunks}}}}}\n\n',
        False,
    )
    yield 'event: message_stop\ndata: {"type":"message_stop"}\n\n', False


def gemini_events(model: str, shape: StreamShape) -> Iterator[Event]:
    """A Gemini ``alt=sse`` stream, CRLF-framed like gemini_stream_sse_short.txt."""
    response_id = f"bench{next(_ids):016d}"
    last = shape.chunks - 1
    for n in range(shape.chunks):
        finish = '"finishReason": "STOP",' if n == last else ""
        parts = f'[{{"text": {_json_str(token(n, shape.chunks))}}}]'
        usage = (
            f'{{"promptTokenCount": {_PROMPT_TOKENS},"candidatesTokenCount": {n + 1},'
            f'"totalTokenCount": {_PROMPT_TOKENS + n + 1},'
            f'"promptTokensDetails": [{{"modality": "TEXT","tokenCount": {_PROMPT_TOKENS}}}]}}'
        )
        yield (
            f'data: {{"candidates": [{{"content": {{"parts": {parts},"role": "model"}},{finish}'
            f'"index": 0}}],"usageMetadata": {usage},"modelVersion": {_json_str(model)},'
            f'"responseId": "{response_id}"}}\r\n\r\n',
            True,
        )


class FakeUpstream:
    """Serves every connection with a keep-alive loop; one stream per request."""

    def __init__(self, default: StreamShape) -> None:
        self.default = default

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Serve requests on one connection until the client closes it."""
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while await self._serve_one(reader, writer):
                pass
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _serve_one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        head = await reader.readuntil(b"\r\n\r\n")
        request_line, _, header_block = head.decode("latin-1").partition("\r\n")
        method, target, _version = request_line.split(" ", 2)
        headers = {}
        for line in header_block.split("\r\n"):
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        body = await _read_body(reader, headers)
        path, _, query = target.partition("?")
        keep_alive = headers.get("connection", "").lower() != "close"
        events = self._route(method, path, query, body)
        if isinstance(events, bytes):
            writer.write(events)
            return keep_alive
        shape, stream = events
        await _write_stream(writer, shape, stream)
        return keep_alive and not writer.transport.is_closing()

    def _route(
        self, method: str, path: str, query: str, body: bytes
    ) -> bytes | tuple[StreamShape, Iterator[Event]]:
        if method == "GET" and path in ("/health", "/"):
            return _plain(200, b'{"status":"ok"}')
        if method != "POST":
            return _plain(404, b'{"error":{"message":"not found"}}')
        if path.startswith("/webhook-waiting/"):  # a session callback: n8n's Wait node takes it
            return _plain(200, b'{"message":"Workflow was started"}')
        gemini = _GEMINI_PATH.match(path)
        if gemini is not None:
            if "alt=sse" not in query:
                return _plain(400, b'{"error":{"message":"the fake serves only alt=sse"}}')
            model = gemini.group(1)
            return self._shape(model), gemini_events(model, self._shape(model))
        try:
            request = orjson.loads(body)
            model = str(request["model"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return _plain(400, b'{"error":{"message":"body must be JSON with a model"}}')
        shape = self._shape(model)
        if request.get("stream") is not True:
            if path == "/v1/chat/completions":
                return _plain(200, openai_completion(model, shape))
            return _plain(400, b'{"error":{"message":"the fake streams only, but for OpenAI"}}')
        if path == "/v1/chat/completions":
            options = request.get("stream_options") or {}
            return shape, openai_events(model, shape, bool(options.get("include_usage")))
        if path == "/v1/messages":
            return shape, anthropic_events(model, shape)
        return _plain(404, b'{"error":{"message":"not found"}}')

    def _shape(self, model: str) -> StreamShape:
        return shape_from_model(model, self.default)


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if headers.get("transfer-encoding", "").lower() == "chunked":
        parts: list[bytes] = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append((await reader.readexactly(size + 2))[:-2])
    length = int(headers.get("content-length", "0"))
    return await reader.readexactly(length) if length else b""


def _plain(status: int, body: bytes) -> bytes:
    reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}[status]
    return (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def _write_stream(
    writer: asyncio.StreamWriter, shape: StreamShape, stream: Iterator[Event]
) -> None:
    """Write each event as its own HTTP chunk and its own send, pacing the content chunks.

    With no delay the writer still yields to the loop after every event, so concurrent streams
    interleave and a proxy sees token-sized reads, as from a real model, not one coalesced burst.
    """
    delay = shape.delay_ms / 1000
    transport = writer.transport
    writer.write(_SSE_HEAD)
    seen_content = False
    for event, is_content in stream:
        if transport.is_closing():
            return
        if delay and is_content and seen_content:
            await asyncio.sleep(delay)
        data = event.encode()
        writer.write(b"%x\r\n%b\r\n" % (len(data), data))
        seen_content = seen_content or is_content
        if transport.get_write_buffer_size() > 65536:
            await writer.drain()
        elif not delay:
            await asyncio.sleep(0)
    writer.write(b"0\r\n\r\n")


async def serve(host: str, port: int, default: StreamShape) -> None:
    """Listen until cancelled, announcing the bound port on stdout."""
    upstream = FakeUpstream(default)
    server = await asyncio.start_server(upstream.handle, host, port, backlog=4096)
    bound = server.sockets[0].getsockname()[1]
    print(f"LISTENING {bound}", flush=True)
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--chunks", type=int, default=20, help="chunks when the model names none")
    parser.add_argument("--delay-ms", type=int, default=0, help="delay when the model names none")
    args = parser.parse_args(argv)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        sys.exit("the fake upstream listens on loopback only")
    raise_nofile_limit()
    with contextlib.suppress(KeyboardInterrupt):
        run_async(serve(args.host, args.port, StreamShape(args.chunks, args.delay_ms)))


if __name__ == "__main__":
    main()
