"""A lean HTTP/1.1 client for the hot path: POST a request, stream the body back.

httpx/httpcore/h11 cost ~40% of the gateway's CPU per streamed chunk; this client does the
same job on asyncio protocols and httptools' C parser (see `fastclient_conn`).

Errors are those of `transport.errors`: `ConnectFailed`, `ConnectTimeout` (also for no free
connection in time), `ReadTimeout` (read_timeout seconds of silence while waiting for headers or
between body chunks), `ConnectionBroken`, `StaleConnection`, `LimitExceeded` (a head over
`max_head_bytes`).

Pool rules, per (scheme, host, port): idle connections are reused newest first, skipping
ones the peer closed; a response whose body ended with keep-alive returns its connection on
`aclose()` (or when `aiter_bytes()` runs out); anything else closes it. A request that fails on
a reused connection before any response byte arrives (a stale keep-alive) raises
`StaleConnection` after dropping the pool's other idle connections, which are older still; the
caller's retry rule (`transport.retry`) decides to send it again. `max_connections` bounds open
connections per host; callers beyond it wait up to `connect_timeout` for one to free up.

Idle pooled connections older than `idle_timeout` are closed instead of reused. Outbound
proxies (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`) are honoured: see `proxy`.
TLS trusts `SSL_CERT_FILE` / `SSL_CERT_DIR` when set, else certifi's bundle (or the system's).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
from collections.abc import AsyncIterator, Mapping
from typing import Final
from urllib.parse import urlsplit

from echo_stream.providers.transport.connection import Connection, Relay
from echo_stream.providers.transport.errors import (
    ConnectionBroken,
    StaleConnection,
    TransportError,
)
from echo_stream.providers.transport.pool import HostPool
from echo_stream.providers.transport.proxy import (
    Proxy,
    check_proxies,
    environment_proxies,
    proxy_for,
)
from echo_stream.providers.transport.resolve import AddressCache

__all__ = ["FastClient", "UpstreamResponse"]

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
_SKIPPED_HEADERS: Final = frozenset({"host", "content-length", "transfer-encoding"})
_URL_CACHE_SIZE: Final = 512


class UpstreamResponse:
    """The status and headers of an upstream response whose body is still streaming."""

    __slots__ = ("_body_done", "_conn", "headers", "reason", "status")

    def __init__(self, conn: Connection) -> None:
        self.status: int = conn.status
        self.reason: str = conn.reason
        self.headers: dict[str, str] = conn.headers
        self._conn: Connection | None = conn
        self._body_done = False

    def aiter_bytes(self) -> AsyncIterator[bytes]:
        """Body bytes as they arrive, chunked decoding done; ends at the end of the body."""
        return _BodyStream(self)

    async def read(self, limit: int = 65536) -> bytes:
        """The rest of the body, up to `limit` bytes (for error bodies)."""
        parts: list[bytes] = []
        size = 0
        async for chunk in _BodyStream(self):
            parts.append(chunk)
            size += len(chunk)
            if size >= limit:
                break
        return b"".join(parts)[:limit]

    def body_complete(self) -> bool:
        """Whether the whole body has arrived (the last chunk may still be unread)."""
        conn = self._conn
        return self._body_done if conn is None else conn.complete

    async def aclose(self) -> None:
        """Pool the connection if the body ended with keep-alive; otherwise close it now."""
        self._close()

    def relay(self, relay: Relay) -> None:
        """Offer each later read's body to `relay` before it is queued for `aiter_bytes`,
        while the reader waits for one (`Connection._offer`): what it takes never reaches the
        reader. For `streaming.relay`."""
        if self._conn is not None:
            self._conn.relay = relay

    def _close(self) -> None:
        conn = self._conn
        if conn is not None:
            self._conn = None
            self._body_done = conn.complete
            conn.relay = None
            conn.finish()

    def __del__(self) -> None:
        # A response dropped without aclose() must not hold a socket and a pool slot forever.
        if self._conn is not None:
            with contextlib.suppress(RuntimeError):  # the event loop is already closed
                self._conn.abort()

    def __repr__(self) -> str:
        return f"<UpstreamResponse {self.status} {self.reason}>"


class _BodyStream:
    """The iterator behind `aiter_bytes`: per chunk, drain the deque or wait for one wake-up."""

    __slots__ = ("_response",)

    def __init__(self, response: UpstreamResponse) -> None:
        self._response = response

    def __aiter__(self) -> _BodyStream:
        return self

    async def __anext__(self) -> bytes:
        response = self._response
        conn = response._conn
        if conn is None:
            if response._body_done:
                raise StopAsyncIteration
            raise ConnectionBroken("the response was closed before its body ended")
        while not conn.chunks:
            if conn.complete:
                response._close()
                raise StopAsyncIteration
            if conn.error is not None:
                response._close()
                raise conn.error
            try:
                await conn.wait()
            except asyncio.CancelledError:
                response._close()
                raise
            if response._conn is not conn:  # closed by another task while we waited
                raise ConnectionBroken("the response was closed before its body ended")
        return conn.drain()


class _Target:
    """What a URL resolves to: its pool and the first lines of the request head."""

    __slots__ = ("head", "pool")

    def __init__(self, pool: HostPool, head: str) -> None:
        self.pool = pool
        self.head = head


class FastClient:
    """Pooled keep-alive HTTP/1.1 POSTs whose responses stream back (see the module doc)."""

    def __init__(
        self,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        max_connections: int = 1000,
        max_idle_per_host: int = 100,
        max_head_bytes: int = 64 * 1024,
        idle_timeout: float = 60.0,
        ssl_context: ssl.SSLContext | None = None,
        proxies: Mapping[str, str] | None = None,
        addresses: AddressCache | None = None,
    ) -> None:
        """`proxies` maps a scheme (or "all", "no") to a proxy URL; None reads the environment.
        Host names resolve through `addresses` (a `resolve.AddressCache` of its own by default)."""
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_connections = max_connections
        self.max_idle_per_host = max_idle_per_host
        self.max_head_bytes = max_head_bytes
        self.idle_timeout = idle_timeout
        self._proxies = dict(environment_proxies() if proxies is None else proxies)
        check_proxies(self._proxies)
        self._ssl_context = ssl_context
        self._pools: dict[tuple[str, str, int, Proxy | None], HostPool] = {}
        self._addresses = addresses or AddressCache()
        self._targets: dict[str, _Target] = {}
        self._closed = False

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> UpstreamResponse:
        """Send a POST; return as soon as the status line and headers are parsed (the body
        streams later)."""
        target = self._targets.get(url) or self._resolve(url)
        request = _request_head(target.head, len(body), headers) + body
        pool = target.pool
        conn, reused = await pool.acquire()
        try:
            try:
                conn.start(request)
                await conn.wait_headers()
            except ConnectionBroken as exc:
                if not reused or conn.got_bytes:
                    raise
                pool.drop_idle()  # idle longer than this one, so likely closed by the server too
                raise StaleConnection(
                    f"a pooled connection was closed by the server: {exc}"
                ) from exc
        except BaseException:
            conn.abort()
            raise
        return UpstreamResponse(conn)

    async def aclose(self) -> None:
        """Close all pooled connections; responses still streaming close when they end."""
        self._closed = True
        for pool in self._pools.values():
            pool.close()

    def _resolve(self, url: str) -> _Target:
        if self._closed:
            raise TransportError("the client is closed")
        if not url.isascii() or not url.isprintable() or " " in url or "#" in url:
            # URLs come from `transport.urls`; anything else here is a bug, never sent.
            raise ValueError(f"unsafe upstream URL: {url!r}")
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        host = parts.hostname
        if scheme not in _DEFAULT_PORTS or not host:
            raise ValueError(f"not an http(s) URL: {url!r}")
        port = parts.port or _DEFAULT_PORTS[scheme]
        proxy = proxy_for(scheme, host, self._proxies)
        key = (scheme, host, port, proxy)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = HostPool(
                host,
                port,
                self._tls(scheme),
                connect_timeout=self.connect_timeout,
                read_timeout=self.read_timeout,
                max_connections=self.max_connections,
                max_idle=self.max_idle_per_host,
                max_head_bytes=self.max_head_bytes,
                proxy=proxy,
                idle_timeout=self.idle_timeout,
                addresses=self._addresses,
            )
        authority = f"[{host}]" if ":" in host else host
        if port != _DEFAULT_PORTS[scheme]:
            authority = f"{authority}:{port}"
        path = parts.path or "/"
        if parts.query:
            path = f"{path}?{parts.query}"
        head = f"POST {path} HTTP/1.1\r\nHost: {authority}\r\n"
        if proxy is not None and scheme == "http":  # absolute form, to the proxy itself
            head = f"POST http://{authority}{path} HTTP/1.1\r\nHost: {authority}\r\n"
            if proxy.authorization:
                head += f"Proxy-Authorization: {proxy.authorization}\r\n"
        target = _Target(pool, head)
        if len(self._targets) >= _URL_CACHE_SIZE:
            self._targets.clear()
        self._targets[url] = target
        return target

    def _tls(self, scheme: str) -> ssl.SSLContext | None:
        if scheme != "https":
            return None
        if self._ssl_context is None:
            self._ssl_context = _default_ssl_context()
        return self._ssl_context


def _default_ssl_context() -> ssl.SSLContext:
    cafile, capath = os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")
    if cafile or capath:
        return ssl.create_default_context(cafile=cafile or None, capath=capath or None)
    try:
        import certifi
    except ImportError:
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=certifi.where())


def _request_head(head: str, content_length: int, headers: Mapping[str, str]) -> bytes:
    """The request head: our request line and Host, the caller's headers, then defaults."""
    lines = [head]
    send_accept_encoding = send_connection = True
    for name, value in headers.items():
        lower = name.lower()
        if lower in _SKIPPED_HEADERS:
            continue
        if "\n" in value or "\r" in value or "\n" in name or "\r" in name:
            raise ValueError(f"line break in request header {name!r}")
        if lower == "accept-encoding":
            send_accept_encoding = False
        elif lower == "connection":
            send_connection = False
        lines.append(f"{name}: {value}\r\n")
    if send_accept_encoding:
        lines.append("Accept-Encoding: identity\r\n")
    if send_connection:
        lines.append("Connection: keep-alive\r\n")
    lines.append(f"Content-Length: {content_length}\r\n\r\n")
    return "".join(lines).encode("latin-1")
