"""A real uvicorn server in a background thread, for tests that need real streaming and
disconnects (`httpx.ASGITransport` buffers whole responses and cannot disconnect)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import uvicorn
from starlette.types import ASGIApp

from echo_stream.http_protocol import CoalescingHttpToolsProtocol


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class LiveServer:
    url: str
    port: int
    loop: asyncio.AbstractEventLoop

    def task_count(self) -> int:
        """How many tasks the server's event loop holds right now (besides this probe)."""

        async def count() -> int:
            return len(asyncio.all_tasks()) - 1

        return asyncio.run_coroutine_threadsafe(count(), self.loop).result(timeout=5)


@contextmanager
def serve(
    app: ASGIApp, http: type[asyncio.Protocol] | str = CoalescingHttpToolsProtocol
) -> Iterator[LiveServer]:
    """Run `app` on a free loopback port; yield the server; stop it afterwards. It serves with
    the gateway's own protocol, as `echo-stream` does, unless `http` names another."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", http=http
    )
    server = uvicorn.Server(config)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(server.serve(),), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", port, loop)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        loop.close()


def wait_healthy(base: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Wait for a gateway process at `base` to answer `/health`; fail (killing it) if it exits
    or does not answer within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(base + "/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise AssertionError(f"the gateway at {base} did not start")
        time.sleep(0.1)
