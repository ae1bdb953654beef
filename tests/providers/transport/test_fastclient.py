"""FastClient against real asyncio servers on loopback: framing, pooling, timeouts, cancellation,
TLS. Every upstream here is a raw `asyncio.start_server` handler so a test controls each byte and
each close."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
import trustme

from echo_stream.providers.transport.connection import PAUSE_READING_AT
from echo_stream.providers.transport.errors import (
    ConnectFailed,
    ConnectionBroken,
    LimitExceeded,
    StaleConnection,
    TransportTimeout,
)
from echo_stream.providers.transport.fastclient import FastClient, UpstreamResponse

# --- a scriptable upstream -------------------------------------------------------------------


@dataclass
class Request:
    head: str
    body: bytes

    def header(self, name: str) -> list[str]:
        found = []
        for line in self.head.split("\r\n")[1:]:
            key, _, value = line.partition(":")
            if key.strip().lower() == name:
                found.append(value.strip())
        return found


@dataclass
class Upstream:
    port: int = 0
    connections: int = 0
    requests: list[Request] = field(default_factory=list)
    request_seen: asyncio.Event = field(default_factory=asyncio.Event)
    closed_by_client: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/chat?stream=1"


@dataclass
class Peer:
    """The server's end of one connection, as a handler sees it."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    upstream: Upstream

    async def request(self) -> Request | None:
        """The next request on the connection, or None when the client closed it."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        request = Request(head.decode("latin-1"), b"")
        [length] = request.header("content-length")
        request.body = await self.reader.readexactly(int(length))
        self.upstream.requests.append(request)
        self.upstream.request_seen.set()
        return request

    def send(self, data: bytes) -> None:
        self.writer.write(data)

    async def flush(self) -> None:
        await self.writer.drain()

    async def wait_for_close(self) -> None:
        """Park until the client closes the connection (EOF or reset), then say so."""
        try:
            while await self.reader.read(65536):
                pass
        except ConnectionError:
            pass
        self.upstream.closed_by_client.set()


Handler = Callable[[Peer], Awaitable[None]]


@asynccontextmanager
async def upstream(handler: Handler, tls: ssl.SSLContext | None = None) -> AsyncIterator[Upstream]:
    """Serve `handler` (once per connection) on a free loopback port for at most 5 s."""
    state = Upstream()
    tasks: set[asyncio.Task[None]] = set()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        state.connections += 1
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await handler(Peer(reader, writer, state))
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0, ssl=tls)
    state.port = server.sockets[0].getsockname()[1]
    try:
        async with asyncio.timeout(5):  # a client that hangs fails its test instead
            yield state
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def response(status: int, body: bytes, *extra: str, reason: str = "OK") -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(body)}", *extra, "", ""]
    return "\r\n".join(lines).encode() + body


CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def keep_alive(body: bytes = b"hello") -> Handler:
    """Answer every request on the connection with 200 and `body`."""

    async def handle(peer: Peer) -> None:
        while await peer.request() is not None:
            peer.send(response(200, body))
            await peer.flush()

    return handle


async def body_of(resp: UpstreamResponse) -> bytes:
    return b"".join([part async for part in resp.aiter_bytes()])


@pytest.fixture
async def client() -> AsyncIterator[FastClient]:
    fast = FastClient(connect_timeout=2, read_timeout=2)
    yield fast
    await fast.aclose()


# --- framing ---------------------------------------------------------------------------------


async def test_chunked_body_arrives_piece_by_piece(client: FastClient) -> None:
    first_seen = asyncio.Event()

    async def handle(peer: Peer) -> None:
        await peer.request()
        peer.send(CHUNKED_HEAD + chunk(b"data: one\n\n"))
        await first_seen.wait()  # the rest exists only once the client has the first chunk
        peer.send(chunk(b"data: two\n\n") + chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")

    async with upstream(handle) as server:
        resp = await client.post(server.url, b"{}", {})
        received = []
        async for part in resp.aiter_bytes():
            received.append(part)
            first_seen.set()
        await resp.aclose()

    assert received[0] == b"data: one\n\n"
    assert b"".join(received) == b"data: one\n\ndata: two\n\ndata: [DONE]\n\n"


async def test_content_length_body(client: FastClient) -> None:
    async with upstream(keep_alive(b'{"ok": true}')) as server:
        resp = await client.post(server.url, b"{}", {})
        assert resp.headers["content-length"] == "12"
        assert await body_of(resp) == b'{"ok": true}'


async def test_body_delimited_by_close(client: FastClient) -> None:
    async def handle(peer: Peer) -> None:
        await peer.request()
        peer.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nfirst ")
        await peer.flush()
        await asyncio.sleep(0.02)
        peer.send(b"and last")
        await peer.flush()
        peer.writer.close()

    async with upstream(handle) as server:
        resp = await client.post(server.url, b"{}", {})
        assert await body_of(resp) == b"first and last"
        await resp.aclose()
        # the connection ended with the body, so the next request needs a new one
        resp = await client.post(server.url, b"{}", {})
        assert await body_of(resp) == b"first and last"
        assert server.connections == 2


async def test_multibyte_utf8_split_across_chunks_is_byte_exact(client: FastClient) -> None:
    text = "héllo wörld — 日本語 🎉 done".encode()
    cuts = [i for i, byte in enumerate(text) if byte & 0xC0 == 0x80]  # inside every character
    pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]

    async def handle(peer: Peer) -> None:
        await peer.request()
        peer.send(CHUNKED_HEAD)
        for piece in pieces:
            peer.send(chunk(piece))
            await peer.flush()
            await asyncio.sleep(0)
        peer.send(b"0\r\n\r\n")

    async with upstream(handle) as server:
        resp = await client.post(server.url, b"{}", {})
        assert await body_of(resp) == text


async def test_request_head_carries_defaults_and_caller_headers(client: FastClient) -> None:
    async with upstream(keep_alive()) as server:
        headers = {
            "Authorization": "Bearer sk-test",
            "content-type": "application/json",
            "Host": "evil.example",
            "Content-Length": "999",
            "accept-encoding": "br",
        }
        resp = await client.post(server.url, b'{"a": 1}', headers)
        await resp.aclose()

    [request] = server.requests
    assert request.head.startswith("POST /v1/chat?stream=1 HTTP/1.1\r\n")
    assert request.header("host") == [f"127.0.0.1:{server.port}"]
    assert request.header("content-length") == ["8"]
    assert request.header("accept-encoding") == ["br"]
    assert request.header("connection") == ["keep-alive"]
    assert request.header("authorization") == ["Bearer sk-test"]
    assert request.body == b'{"a": 1}'


async def test_header_injection_is_refused(client: FastClient) -> None:
    with pytest.raises(ValueError, match="line break"):
        await client.post("http://127.0.0.1:1/", b"", {"X-Evil": "a\r\nX-Injected: 1"})


@pytest.mark.parametrize(
    ("status", "reason"),
    [(200, "OK"), (400, "Bad Request"), (429, "Too Many Requests"), (500, "Internal Server Error")],
)
async def test_status_headers_and_error_body(client: FastClient, status: int, reason: str) -> None:
    body = b'{"error": {"message": "nope"}}'

    async def handle(peer: Peer) -> None:
        await peer.request()
        peer.send(
            response(status, body, "X-Multi: a", "Retry-After: 3", "x-multi: b", reason=reason)
        )

    async with upstream(handle) as server:
        resp = await client.post(server.url, b"{}", {})
        assert (resp.status, resp.reason) == (status, reason)
        assert resp.headers["x-multi"] == "a, b"
        assert resp.headers["retry-after"] == "3"
        assert await resp.read() == body
        await resp.aclose()


async def test_read_stops_at_the_limit(client: FastClient) -> None:
    async with upstream(keep_alive(b"x" * 5000)) as server:
        resp = await client.post(server.url, b"{}", {})
        assert await resp.read(limit=100) == b"x" * 100
        await resp.aclose()


async def test_interim_100_continue_is_skipped(client: FastClient) -> None:
    async def handle(peer: Peer) -> None:
        await peer.request()
        peer.send(b"HTTP/1.1 100 Continue\r\n\r\n" + response(201, b"made", reason="Created"))

    async with upstream(handle) as server:
        resp = await client.post(server.url, b"{}", {})
        assert (resp.status, await body_of(resp)) == (201, b"made")


# --- the pool --------------------------------------------------------------------------------


async def test_keep_alive_reuses_one_connection(client: FastClient) -> None:
    async with upstream(keep_alive()) as server:
        for _ in range(5):
            resp = await client.post(server.url, b"{}", {})
            assert await body_of(resp) == b"hello"
            await resp.aclose()
        assert (server.connections, len(server.requests)) == (1, 5)


async def test_idle_connection_closed_by_server_is_replaced(client: FastClient) -> None:
    async def handle(peer: Peer) -> None:
        await peer.request()
        peer.send(response(200, b"once"))
        await peer.flush()  # then the handler returns and the connection is closed

    async with upstream(handle) as server:
        for _ in range(2):
            resp = await client.post(server.url, b"{}", {})
            assert await body_of(resp) == b"once"
            await resp.aclose()
            await asyncio.sleep(0.05)  # the client sees the FIN while the connection is idle
        assert server.connections == 2


async def test_stale_connection_is_reported_as_stale_and_the_next_post_is_fresh(
    client: FastClient,
) -> None:
    async def handle(peer: Peer) -> None:
        await peer.request()
        peer.send(response(200, b"ok"))
        await peer.flush()
        # The keep-alive race: the next request arrives as the server gives up on the connection.
        if await peer.request() is not None:
            peer.writer.transport.abort()

    async with upstream(handle) as server:
        resp = await client.post(server.url, b"{}", {})
        assert await body_of(resp) == b"ok"
        await resp.aclose()
        with pytest.raises(StaleConnection):  # the retry rule (transport.retry) decides
            await client.post(server.url, b"{}", {})
        resp = await client.post(server.url, b"{}", {})
        assert await body_of(resp) == b"ok"
        await resp.aclose()
        assert server.connections == 2


async def test_failure_on_a_fresh_connection_is_not_retried(client: FastClient) -> None:
    async def handle(peer: Peer) -> None:
        await peer.request()

    async with upstream(handle) as server:
        with pytest.raises(ConnectionBroken):
            await client.post(server.url, b"{}", {})
        assert server.connections == 1


async def test_max_connections_makes_the_second_request_wait() -> None:
    release_first = asyncio.Event()

    async def handle(peer: Peer) -> None:
        while await peer.request() is not None:
            peer.send(CHUNKED_HEAD + chunk(b"a"))
            if len(peer.upstream.requests) == 1:
                await release_first.wait()
            peer.send(chunk(b"b") + b"0\r\n\r\n")

    fast = FastClient(max_connections=1, connect_timeout=2, read_timeout=2)
    async with upstream(handle) as server:
        first = await fast.post(server.url, b"{}", {})
        second = asyncio.create_task(fast.post(server.url, b"{}", {}))
        await asyncio.sleep(0.1)
        assert not second.done()  # waiting for the only connection, not failing
        assert len(server.requests) == 1
        release_first.set()
        assert await body_of(first) == b"ab"
        resp = await second
        assert await body_of(resp) == b"ab"
        assert server.connections == 1
    await fast.aclose()


async def test_waiting_for_a_connection_times_out() -> None:
    async def handle(peer: Peer) -> None:
        await peer.request()
        peer.send(CHUNKED_HEAD)
        await asyncio.sleep(10)

    fast = FastClient(max_connections=1, connect_timeout=0.2, read_timeout=5)
    async with upstream(handle) as server:
        first = await fast.post(server.url, b"{}", {})
        with pytest.raises(TransportTimeout, match="no free connection"):
            await fast.post(server.url, b"{}", {})
        await first.aclose()
        # the slot is free again: the next request gets a connection of its own
        second = await fast.post(server.url, b"{}", {})
        await second.aclose()
        assert server.connections == 2
    await fast.aclose()


# --- failures --------------------------------------------------------------------------------


async def test_connection_refused_is_connect_failed(client: FastClient) -> None:
    async with upstream(keep_alive()) as server:
        port = server.port
    with pytest.raises(ConnectFailed):
        await client.post(f"http://127.0.0.1:{port}/", b"{}", {})


async def test_read_timeout_waiting_for_headers() -> None:
    async def handle(peer: Peer) -> None:
        await peer.request()
        await peer.wait_for_close()

    fast = FastClient(read_timeout=0.2)
    async with upstream(handle) as server:
        started = asyncio.get_running_loop().time()
        with pytest.raises(TransportTimeout, match="headers"):
            await fast.post(server.url, b"{}", {})
        assert 0.19 < asyncio.get_running_loop().time() - started < 1
        await asyncio.wait_for(server.closed_by_client.wait(), 1)
    await fast.aclose()


async def test_read_timeout_mid_body_but_not_while_bytes_flow() -> None:
    async def handle(peer: Peer) -> None:
        await peer.request()
        peer.send(CHUNKED_HEAD)
        for _ in range(6):  # 0.3 s of body in all, but never 0.2 s of silence
            peer.send(chunk(b"tick\n"))
            await peer.flush()
            await asyncio.sleep(0.05)
        await peer.wait_for_close()

    fast = FastClient(read_timeout=0.2)
    async with upstream(handle) as server:
        resp = await fast.post(server.url, b"{}", {})
        received = []
        with pytest.raises(TransportTimeout, match="body"):
            async for part in resp.aiter_bytes():
                received.append(part)
        assert b"".join(received) == b"tick\n" * 6
        await asyncio.wait_for(server.closed_by_client.wait(), 1)
    await fast.aclose()


async def test_read_timeout_on_a_pooled_connections_next_request() -> None:
    # The watchdog armed by the first response stays pending for the next one on the
    # connection; the second request's silence must still time out.
    async def handle(peer: Peer) -> None:
        await peer.request()
        peer.send(response(200, b"first"))
        await peer.flush()
        await peer.request()
        await peer.wait_for_close()

    fast = FastClient(read_timeout=0.2)
    async with upstream(handle) as server:
        assert await body_of(await fast.post(server.url, b"{}", {})) == b"first"
        with pytest.raises(TransportTimeout, match="headers"):
            await fast.post(server.url, b"{}", {})
        assert server.connections == 1
        await asyncio.wait_for(server.closed_by_client.wait(), 1)
    await fast.aclose()


async def test_eof_mid_chunked_body_is_connection_broken(client: FastClient) -> None:
    async def handle(peer: Peer) -> None:
        await peer.request()
        peer.send(CHUNKED_HEAD + chunk(b"data: partial\n\n") + b"20\r\nonly half")
        await peer.flush()

    async with upstream(handle) as server:
        resp = await client.post(server.url, b"{}", {})
        received = []
        with pytest.raises(ConnectionBroken):
            async for part in resp.aiter_bytes():
                received.append(part)
        assert b"".join(received).startswith(b"data: partial\n\n")


async def test_eof_before_content_length_is_reached(client: FastClient) -> None:
    async def handle(peer: Peer) -> None:
        await peer.request()
        peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort")

    async with upstream(handle) as server:
        resp = await client.post(server.url, b"{}", {})
        with pytest.raises(ConnectionBroken):
            await resp.read()


async def test_garbage_response_is_connection_broken(client: FastClient) -> None:
    async def handle(peer: Peer) -> None:
        await peer.request()
        peer.send(b"SMTP ready\r\n\r\n")
        await peer.wait_for_close()

    async with upstream(handle) as server:
        with pytest.raises(ConnectionBroken, match="unparsable"):
            await client.post(server.url, b"{}", {})


# --- closing and cancelling ------------------------------------------------------------------


def endless_stream() -> Handler:
    """Send a few events, then hold the connection open until the client closes it."""

    async def handle(peer: Peer) -> None:
        await peer.request()
        peer.send(CHUNKED_HEAD + chunk(b"data: 1\n\n"))
        await peer.flush()
        await peer.wait_for_close()

    return handle


async def test_aclose_mid_body_closes_the_socket_at_once(client: FastClient) -> None:
    async with upstream(endless_stream()) as server:
        resp = await client.post(server.url, b"{}", {})
        async for _ in resp.aiter_bytes():
            break
        await resp.aclose()
        await asyncio.wait_for(server.closed_by_client.wait(), 1)

        server.closed_by_client.clear()
        resp = await client.post(server.url, b"{}", {})
        await resp.aclose()
        assert server.connections == 2  # the closed connection was not pooled


async def test_cancelling_the_body_reader_closes_the_connection(client: FastClient) -> None:
    async with upstream(endless_stream()) as server:
        resp = await client.post(server.url, b"{}", {})
        got_one = asyncio.Event()

        async def consume() -> None:
            async for _ in resp.aiter_bytes():
                got_one.set()

        task = asyncio.create_task(consume())
        await got_one.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(server.closed_by_client.wait(), 1)
        with pytest.raises(ConnectionBroken):
            await resp.read()

        server.closed_by_client.clear()
        resp = await client.post(server.url, b"{}", {})
        await resp.aclose()
        assert server.connections == 2


async def test_cancelling_post_while_waiting_for_headers_closes_the_connection(
    client: FastClient,
) -> None:
    async def handle(peer: Peer) -> None:
        await peer.request()
        await peer.wait_for_close()

    async with upstream(handle) as server:
        task = asyncio.create_task(client.post(server.url, b"{}", {}))
        await server.request_seen.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(server.closed_by_client.wait(), 1)


async def test_aclose_from_another_task_wakes_the_reader(client: FastClient) -> None:
    async with upstream(endless_stream()) as server:
        resp = await client.post(server.url, b"{}", {})
        stream = resp.aiter_bytes()
        assert await anext(stream) == b"data: 1\n\n"

        async def next_part() -> bytes:
            return await anext(stream)

        reader = asyncio.create_task(next_part())
        await asyncio.sleep(0.02)
        await resp.aclose()
        with pytest.raises(ConnectionBroken):
            await asyncio.wait_for(reader, 1)


async def test_slow_reader_pauses_the_socket_and_gets_every_byte(client: FastClient) -> None:
    body = bytes(range(256)) * (16 * 1024)  # 4 MiB

    async def handle(peer: Peer) -> None:
        await peer.request()
        peer.send(response(200, body))
        await peer.flush()

    async with upstream(handle) as server:
        resp = await client.post(server.url, b"{}", {})
        await asyncio.sleep(0.2)  # the reader is busy; the client must stop reading, not buffer all
        conn = resp._conn
        assert conn is not None
        assert conn.paused
        assert conn.buffered < PAUSE_READING_AT + 1024 * 1024
        assert await body_of(resp) == body


# --- TLS -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def server_tls(ca: trustme.CA, name: str = "127.0.0.1") -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(name).configure_cert(context)
    return context


async def test_tls_round_trip(ca: trustme.CA) -> None:
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    fast = FastClient(ssl_context=trusting, connect_timeout=2, read_timeout=2)
    async with upstream(keep_alive(b"secret"), tls=server_tls(ca)) as server:
        url = f"https://127.0.0.1:{server.port}/v1/chat"
        for _ in range(2):
            resp = await fast.post(url, b"{}", {})
            assert (resp.status, await body_of(resp)) == (200, b"secret")
            await resp.aclose()
        assert server.connections == 1
        assert server.requests[0].header("host") == [f"127.0.0.1:{server.port}"]
    await fast.aclose()


async def test_untrusted_certificate_is_connect_failed(ca: trustme.CA) -> None:
    fast = FastClient(ssl_context=ssl.create_default_context(), connect_timeout=2)
    async with upstream(keep_alive(), tls=server_tls(ca)) as server:
        with pytest.raises(ConnectFailed, match="CERTIFICATE_VERIFY_FAILED"):
            await fast.post(f"https://127.0.0.1:{server.port}/", b"{}", {})
    await fast.aclose()


async def test_connection_paused_at_the_end_of_its_body_is_pooled_and_reads_again(
    client: FastClient,
) -> None:
    body = b"z" * (PAUSE_READING_AT + 100)  # the last read both ends the body and pauses

    async def handle(peer: Peer) -> None:
        while await peer.request() is not None:
            peer.send(response(200, body))
            await peer.flush()

    async with upstream(handle) as server:
        resp = await client.post(server.url, b"{}", {})
        await asyncio.sleep(0.1)
        conn = resp._conn
        assert conn is not None
        assert (conn.complete, conn.paused) == (True, True)
        await resp.aclose()  # unread: the body is dropped, the connection pooled
        resp = await client.post(server.url, b"{}", {})
        assert await body_of(resp) == body
        assert server.connections == 1


# --- limits ----------------------------------------------------------------------------------


async def test_an_oversized_response_head_is_limit_exceeded() -> None:
    async def handle(peer: Peer) -> None:
        await peer.request()
        peer.send(response(200, b"ok", "X-Big: " + "a" * 5000))
        await peer.flush()
        await peer.wait_for_close()

    fast = FastClient(max_head_bytes=2048)
    try:
        async with upstream(handle) as server:
            with pytest.raises(LimitExceeded):
                await fast.post(server.url, b"{}", {})
            await asyncio.wait_for(server.closed_by_client.wait(), 5)
    finally:
        await fast.aclose()


async def test_an_endless_header_is_cut_off_at_the_limit() -> None:
    async def handle(peer: Peer) -> None:
        await peer.request()
        peer.send(b"HTTP/1.1 200 OK\r\nX-Endless: ")
        with contextlib.suppress(ConnectionError):
            for _ in range(1000):  # 1 MB, never ending the header line
                peer.send(b"b" * 1024)
                await peer.flush()

    fast = FastClient(max_head_bytes=16 * 1024)
    try:
        async with upstream(handle) as server:
            with pytest.raises(LimitExceeded):
                await fast.post(server.url, b"{}", {})
    finally:
        await fast.aclose()


async def test_interim_heads_count_towards_the_head_limit() -> None:
    async def handle(peer: Peer) -> None:
        await peer.request()
        with contextlib.suppress(ConnectionError):
            for _ in range(200):
                peer.send(b"HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n")
            await peer.flush()
            await peer.wait_for_close()

    fast = FastClient(max_head_bytes=2048)
    try:
        async with upstream(handle) as server:
            with pytest.raises(LimitExceeded):
                await fast.post(server.url, b"{}", {})
    finally:
        await fast.aclose()
