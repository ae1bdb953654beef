"""Conformance of the production client (FastClient) over loopback: body framings, connection
reuse rules, interim and redirect statuses, stray bytes, idle expiry, TLS names, proxies
(CONNECT and absolute-form), CA variables, and cancellation while waiting for a slot."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trustme

from echo_stream.providers.transport.errors import ConnectFailed
from echo_stream.providers.transport.fastclient import FastClient
from tests.providers.transport.test_fastclient import (
    Peer,
    body_of,
    ca,  # noqa: F401  (fixture)
    keep_alive,
    response,
    server_tls,
    upstream,
)


@pytest.fixture
async def client() -> AsyncIterator[FastClient]:
    fast = FastClient(connect_timeout=2, read_timeout=2, proxies={})
    yield fast
    await fast.aclose()


async def _twice(client: FastClient, url: str) -> list[bytes]:
    bodies = []
    for _ in range(2):
        resp = await client.post(url, b"{}", {})
        bodies.append(await body_of(resp))
        await resp.aclose()
    return bodies


# --- framing and reuse --------------------------------------------------------------------------


async def test_http_1_0_close_delimited_body(client: FastClient) -> None:
    async def handle(peer: Peer) -> None:
        await peer.request()
        peer.send(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nold server body")
        await peer.flush()

    async with upstream(handle) as server:
        assert await _twice(client, server.url) == [b"old server body"] * 2
        assert server.connections == 2  # HTTP/1.0 without keep-alive: never reused


async def test_http_1_0_content_length_is_not_reused(client: FastClient) -> None:
    async def handle(peer: Peer) -> None:
        while await peer.request() is not None:
            peer.send(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await peer.flush()

    async with upstream(handle) as server:
        assert await _twice(client, server.url) == [b"ok", b"ok"]
        assert server.connections == 2


async def test_connection_close_response_is_not_reused(client: FastClient) -> None:
    async def handle(peer: Peer) -> None:
        while await peer.request() is not None:
            peer.send(response(200, b"bye", "Connection: close"))
            await peer.flush()

    async with upstream(handle) as server:
        assert await _twice(client, server.url) == [b"bye", b"bye"]
        assert server.connections == 2


async def test_early_hints_103_are_skipped(client: FastClient) -> None:
    async def handle(peer: Peer) -> None:
        await peer.request()
        peer.send(b"HTTP/1.1 103 Early Hints\r\nLink: </x>; rel=preload\r\n\r\n")
        peer.send(response(200, b"final"))
        await peer.flush()

    async with upstream(handle) as server:
        resp = await client.post(server.url, b"{}", {})
        assert (resp.status, await body_of(resp)) == (200, b"final")


async def test_redirects_are_returned_not_followed(client: FastClient) -> None:
    async def handle(peer: Peer) -> None:
        await peer.request()
        peer.send(response(302, b"", "Location: http://elsewhere.example/", reason="Found"))
        await peer.flush()

    async with upstream(handle) as server:
        resp = await client.post(server.url, b"{}", {})
        assert resp.status == 302 and resp.headers["location"] == "http://elsewhere.example/"
        await resp.aclose()
        assert len(server.requests) == 1


async def test_bytes_after_a_response_retire_the_connection(client: FastClient) -> None:
    async def handle(peer: Peer) -> None:
        while await peer.request() is not None:
            # A complete response, then bytes nobody asked for (a smuggled second response).
            peer.send(response(200, b"real") + response(200, b"smuggled"))
            await peer.flush()

    async with upstream(handle) as server:
        assert await _twice(client, server.url) == [b"real", b"real"]
        assert server.connections == 2


# --- idle connections ---------------------------------------------------------------------------


async def test_idle_connections_expire_after_idle_timeout() -> None:
    fast = FastClient(idle_timeout=1.0, proxies={})
    try:
        async with upstream(keep_alive()) as server:
            await _twice(fast, server.url)  # back to back: reused
            assert server.connections == 1
            await asyncio.sleep(1.5)
            await _twice(fast, server.url)
            assert server.connections == 2
    finally:
        await fast.aclose()


# --- TLS, CAs and proxies -----------------------------------------------------------------------


async def test_tls_hostname_mismatch_is_connect_failed(ca: trustme.CA) -> None:  # noqa: F811
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("api.example.org").configure_cert(tls)
    fast = FastClient(ssl_context=trusting, connect_timeout=2, proxies={})
    try:
        async with upstream(keep_alive(), tls=tls) as server:
            with pytest.raises(ConnectFailed, match=r"(?i)hostname|match"):
                await fast.post(f"https://127.0.0.1:{server.port}/", b"{}", {})
    finally:
        await fast.aclose()


async def test_ssl_cert_file_is_trusted(
    ca: trustme.CA,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    fast = FastClient(connect_timeout=2, proxies={})
    try:
        async with upstream(keep_alive(b"trusted"), tls=server_tls(ca)) as server:
            resp = await fast.post(f"https://127.0.0.1:{server.port}/", b"{}", {})
            assert await body_of(resp) == b"trusted"
    finally:
        await fast.aclose()


@asynccontextmanager
async def connect_proxy(record: list[str], answer: bytes | None = None) -> AsyncIterator[int]:
    """A loopback proxy: CONNECT tunnels to the asked host:port, or, for any other request,
    records it and answers itself. `answer` replaces the tunnel's 200 (a refusal)."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        record.append(head)
        method, target, _ = head.split("\r\n", 1)[0].split(" ", 2)
        if method != "CONNECT":
            length = int(
                next(
                    line.split(":")[1]
                    for line in head.split("\r\n")
                    if line.lower().startswith("content-length")
                )
            )
            await reader.readexactly(length)
            writer.write(response(200, b"via proxy"))
            await writer.drain()
            return
        if answer is not None:
            writer.write(answer)
            await writer.drain()
            writer.close()
            return
        host, port = target.rsplit(":", 1)
        up_reader, up_writer = await asyncio.open_connection(host, int(port))
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


async def test_https_through_a_connect_proxy_with_credentials(ca: trustme.CA) -> None:  # noqa: F811
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    record: list[str] = []
    async with (
        connect_proxy(record) as proxy_port,
        upstream(keep_alive(b"tunnelled"), tls=server_tls(ca)) as server,
    ):
        proxies = {"https": f"http://user:p%40ss@127.0.0.1:{proxy_port}"}
        fast = FastClient(ssl_context=trusting, connect_timeout=2, proxies=proxies)
        try:
            assert await _twice(fast, f"https://127.0.0.1:{server.port}/v1/x") == [b"tunnelled"] * 2
        finally:
            await fast.aclose()
    [connect] = record  # one tunnel, reused for both requests
    assert connect.startswith(f"CONNECT 127.0.0.1:{server.port} HTTP/1.1\r\n")
    assert "Proxy-Authorization: Basic dXNlcjpwQHNz" in connect  # user:p@ss
    assert server.requests[0].head.startswith("POST /v1/x HTTP/1.1")
    assert not server.requests[0].header("proxy-authorization")


async def test_plain_http_through_a_proxy_uses_absolute_form() -> None:
    record: list[str] = []
    async with connect_proxy(record) as proxy_port:
        fast = FastClient(connect_timeout=2, proxies={"http": f"http://127.0.0.1:{proxy_port}"})
        try:
            resp = await fast.post("http://upstream.example:8080/v1/chat?x=1", b"{}", {})
            assert await body_of(resp) == b"via proxy"
        finally:
            await fast.aclose()
    assert record[0].startswith("POST http://upstream.example:8080/v1/chat?x=1 HTTP/1.1\r\n")


async def test_no_proxy_bypasses_the_proxy(client: FastClient) -> None:
    proxies = {"http": "http://127.0.0.1:9", "no": "127.0.0.1,localhost"}
    fast = FastClient(connect_timeout=2, proxies=proxies)
    try:
        async with upstream(keep_alive(b"direct")) as server:
            assert await _twice(fast, server.url) == [b"direct"] * 2
    finally:
        await fast.aclose()


async def test_a_refused_tunnel_is_connect_failed() -> None:
    record: list[str] = []
    refusal = b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n"
    async with connect_proxy(record, answer=refusal) as proxy_port:
        fast = FastClient(connect_timeout=2, proxies={"https": f"http://127.0.0.1:{proxy_port}"})
        try:
            with pytest.raises(ConnectFailed, match="407"):
                await fast.post("https://api.example.com/v1", b"{}", {})
        finally:
            await fast.aclose()


def test_unsupported_proxy_schemes_are_refused_at_start() -> None:
    with pytest.raises(ValueError, match="only http://"):
        FastClient(proxies={"https": "socks5://127.0.0.1:1080"})


# --- cancellation -------------------------------------------------------------------------------


async def test_cancelling_a_wait_for_a_pool_slot_leaks_no_slot() -> None:
    fast = FastClient(max_connections=1, connect_timeout=5, proxies={})
    release = asyncio.Event()

    async def handle(peer: Peer) -> None:
        while await peer.request() is not None:
            await release.wait()
            peer.send(response(200, b"ok"))
            await peer.flush()

    try:
        async with upstream(handle) as server:
            first = asyncio.ensure_future(fast.post(server.url, b"{}", {}))
            await server.request_seen.wait()
            waiting = asyncio.ensure_future(fast.post(server.url, b"{}", {}))
            await asyncio.sleep(0.05)
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            release.set()
            resp = await first
            assert await body_of(resp) == b"ok"
            await resp.aclose()
            resp = await fast.post(server.url, b"{}", {})  # the slot came back
            assert await body_of(resp) == b"ok"
            await resp.aclose()
    finally:
        await fast.aclose()


async def test_cancelling_inside_a_proxy_tunnel_setup_closes_it() -> None:
    asked = asyncio.Event()
    hang = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        asked.set()
        await hang.wait()  # never answers the CONNECT

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    fast = FastClient(connect_timeout=5, proxies={"https": f"http://127.0.0.1:{port}"})
    try:
        task = asyncio.ensure_future(fast.post("https://api.example.com/v1", b"{}", {}))
        await asked.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        hang.set()
        server.close()
        await fast.aclose()


async def test_cancelling_during_the_tls_handshake_frees_the_slot() -> None:
    accepted = asyncio.Event()
    hang = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set()
        await hang.wait()  # accepts TCP, never speaks TLS

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    fast = FastClient(max_connections=1, connect_timeout=5, proxies={})
    try:
        task = asyncio.ensure_future(fast.post(f"https://127.0.0.1:{port}/", b"{}", {}))
        await accepted.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        [pool] = fast._pools.values()
        assert pool.open == 0  # the half-open connection gave its slot back
    finally:
        hang.set()
        server.close()
        await fast.aclose()


async def test_proxy_variables_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    record: list[str] = []
    async with connect_proxy(record) as proxy_port:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy_port}")
        fast = FastClient(connect_timeout=2)
        try:
            resp = await fast.post("http://upstream.example/v1/chat", b"{}", {})
            assert await body_of(resp) == b"via proxy"
        finally:
            await fast.aclose()
    assert record[0].startswith("POST http://upstream.example/v1/chat HTTP/1.1")
