"""Upstream connections are pooled: a finished stream's connection is reused, not dropped."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import openai
import pytest

from tests.conftest import make_app
from tests.live import free_port, serve
from tests.upstreams import anthropic_stream, openai_stream


class KeepAliveUpstream:
    """A tiny real HTTP/1.1 upstream (chunked, keep-alive) that counts its connections."""

    def __init__(self) -> None:
        self.port = free_port()
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._thread = threading.Thread(
            target=self._loop.run_until_complete, args=(self._main(),), daemon=True
        )

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
                await reader.readexactly(length)
                path = head.split(b" ")[1]
                body = (
                    anthropic_stream(["Hi", " there"])
                    if path.endswith(b"/messages")
                    else openai_stream(["Hi", " there"])
                )
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
                )
                for event in body.split(b"\n\n"):
                    piece = event + b"\n\n"
                    writer.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                    await writer.drain()
                writer.write(b"0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def _main(self) -> None:
        server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        async with server:
            await self._stop.wait()

    def __enter__(self) -> KeepAliveUpstream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=5)


@pytest.fixture
def upstream() -> Iterator[KeepAliveUpstream]:
    with KeepAliveUpstream() as server:
        yield server


@pytest.mark.parametrize("model", ["gpt-4o", "claude-sonnet-4"])
def test_sequential_streams_reuse_one_upstream_connection(
    upstream: KeepAliveUpstream, model: str
) -> None:
    base = f"http://127.0.0.1:{upstream.port}"
    app = make_app(openai_base_url=base + "/v1", anthropic_base_url=base)
    with serve(app) as live:
        client = openai.OpenAI(base_url=live.url + "/v1", api_key="x", max_retries=0)
        for _ in range(5):
            chunks = list(
                client.chat.completions.create(
                    model=model, messages=[{"role": "user", "content": "x"}], stream=True
                )
            )
            assert (
                "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hi there"
            )
    assert upstream.connections == 1
