"""A client that leaves cancels the upstream request at once and leaves no task behind.

These run against a live server with raw sockets, because only a real connection can be
dropped half-way (`httpx.ASGITransport` buffers whole responses).
"""

from __future__ import annotations

import json
import socket
import time

import pytest

from tests.conftest import make_app
from tests.live import LiveServer, serve
from tests.upstreams import Reply, SocketUpstream, openai_stream


def _request(port: int, stream: bool = True) -> bytes:
    body = json.dumps(
        {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    ).encode()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def _slow_stream(words: int = 400) -> list[bytes]:
    data = openai_stream([f" word{i}" for i in range(words)])
    return [event + b"\n\n" for event in data.split(b"\n\n") if event]


def _wait_for_tasks(live: LiveServer, baseline: int, seconds: float = 3.0) -> int:
    deadline = time.monotonic() + seconds
    count = live.task_count()
    while count > baseline and time.monotonic() < deadline:
        time.sleep(0.02)
        count = live.task_count()
    return count


@pytest.mark.parametrize("stream", [True, False])
def test_disconnect_mid_stream_cancels_upstream(stream: bool) -> None:
    upstream = SocketUpstream(Reply(pieces=_slow_stream(), delay=0.02))
    with serve(make_app(upstream)) as live:
        baseline = live.task_count()
        sock = socket.create_connection(("127.0.0.1", live.port))
        sock.sendall(_request(live.port, stream))
        if stream:
            received = sock.recv(4096)
            assert b"200 OK" in received and b"text/event-stream" in received
        else:
            time.sleep(0.2)  # the gateway is collecting the answer
        assert not upstream.closed.is_set()
        started = time.monotonic()
        sock.close()
        assert upstream.closed.wait(2.0), "upstream request was not cancelled"
        elapsed = time.monotonic() - started
        assert elapsed < 1.0, f"upstream closed only after {elapsed:.2f} s"
        assert _wait_for_tasks(live, baseline) == baseline


def test_disconnect_before_first_token_cancels_upstream() -> None:
    upstream = SocketUpstream(Reply(pieces=_slow_stream(5), first_delay=30.0))
    with serve(make_app(upstream)) as live:
        baseline = live.task_count()
        sock = socket.create_connection(("127.0.0.1", live.port))
        sock.sendall(_request(live.port))
        deadline = time.monotonic() + 2
        while not upstream.requests and time.monotonic() < deadline:
            time.sleep(0.01)
        assert upstream.requests, "the gateway never called the upstream"
        sock.close()
        assert upstream.closed.wait(2.0), "upstream request was not cancelled"
        assert _wait_for_tasks(live, baseline) == baseline
