"""A loopback TCP proxy that cuts the first `GET /stream/` connection mid-answer: a real dropped
connection for an EventSource, which then reconnects through the proxy with `Last-Event-ID`."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

from tests.live import free_port


@dataclass
class CuttingProxy:
    target_port: int
    cut_after: int
    """Bytes of the first stream response to pass before closing both sides."""
    port: int = 0
    stream_requests: list[bytes] = field(default_factory=list)
    cut: bool = False

    async def _pipe_up(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: asyncio.Event
    ) -> None:
        while data := await reader.read(65536):
            if b"GET /stream/" in data:
                self.stream_requests.append(data)
                seen.set()
            writer.write(data)
            await writer.drain()
        writer.close()

    async def _pipe_down(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: asyncio.Event
    ) -> None:
        passed = 0
        while data := await reader.read(65536):
            if seen.is_set() and not self.cut:
                room = self.cut_after - passed
                if len(data) >= room:
                    writer.write(data[:room])
                    await writer.drain()
                    self.cut = True
                    writer.transport.abort()  # a reset, as when a network drops
                    return
                passed += len(data)
            writer.write(data)
            await writer.drain()
        writer.close()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        seen = asyncio.Event()
        tasks = [
            asyncio.ensure_future(self._pipe_up(client_r, up_w, seen)),
            asyncio.ensure_future(self._pipe_down(up_r, client_w, seen)),
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        for writer in (up_w, client_w):
            writer.close()
        with suppress(Exception):
            await asyncio.gather(*tasks, return_exceptions=True)


@contextmanager
def cutting_proxy(target_port: int, cut_after: int) -> Iterator[CuttingProxy]:
    """Run the proxy on a free loopback port in a background thread."""
    proxy = CuttingProxy(target_port, cut_after, port=free_port())
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop: asyncio.Future[None] | None = None

    async def main() -> None:
        nonlocal stop
        server = await asyncio.start_server(proxy._handle, "127.0.0.1", proxy.port)
        stop = loop.create_future()
        started.set()
        async with server:
            await stop
        # Connections still piping (the browser's last keep-alive one) end with the proxy.
        rest = asyncio.all_tasks() - {asyncio.current_task()}
        for task in rest:
            task.cancel()
        await asyncio.gather(*rest, return_exceptions=True)

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    started.wait(10)
    try:
        yield proxy
    finally:
        loop.call_soon_threadsafe(lambda: stop.done() or stop.set_result(None))  # type: ignore[union-attr]
        thread.join(10)
        loop.close()
