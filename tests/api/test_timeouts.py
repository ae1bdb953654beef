"""Timeouts against a real (stalling) upstream socket: httpx enforces them only on real I/O."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import make_app
from tests.live import free_port, serve
from tests.upstreams import openai_stream


@pytest.fixture
def stalling_upstream() -> Iterator[str]:
    """An OpenAI-style upstream that sends one chunk, then goes silent."""
    port = free_port()
    first = openai_stream(["only this"]).split(b"\n\n")
    head = b"\n\n".join(first[:2]) + b"\n\n"
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\n\r\n" + f"{len(head):x}\r\n".encode() + head + b"\r\n"
        )
        await writer.drain()
        await stop.wait()
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port)
        async with server:
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}/v1"
    loop.call_soon_threadsafe(stop.set)
    thread.join(timeout=5)


def test_between_chunk_timeout_ends_stream_with_error_event(stalling_upstream: str) -> None:
    app = make_app(openai_base_url=stalling_upstream, upstream_read_timeout=0.3)
    with (
        serve(app) as live,
        httpx.stream(
            "POST",
            live.url + "/v1/chat/completions",
            json={
                "model": "gpt-4o",
                "messages": [{"role": "user", "content": "x"}],
                "stream": True,
            },
            timeout=10,
        ) as response,
    ):
        body = response.read().decode()
    assert response.status_code == 200
    assert '"content":"only this"' in body
    assert body.rstrip().endswith("}") and '"code":"upstream_timeout"' in body
    assert "[DONE]" not in body
