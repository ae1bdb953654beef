"""Outbound HTTP proxies for `FastClient`: which proxy a URL takes, and the CONNECT tunnel.

The proxy comes from `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` (either case) unless `NO_PROXY`
bypasses the host, as curl and httpx read them. An https upstream is reached through a
`CONNECT host:port` tunnel and TLS inside it, verified for the upstream's name; a plain http
upstream gets absolute-form requests sent to the proxy. `user:password@` in the proxy URL
becomes a `Proxy-Authorization: Basic` header. Only `http://` proxies are supported.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from echo_stream.providers.transport.errors import ConnectFailed, LimitExceeded


@dataclass(frozen=True, slots=True)
class Proxy:
    """An `http://` proxy: where it listens and the header that authenticates to it."""

    host: str
    port: int
    authorization: str | None = None

    @classmethod
    def parse(cls, url: str) -> Proxy:
        """Read `http://[user:password@]host[:port]`; anything else is a `ValueError`."""
        parts = urlsplit(url if "://" in url else "http://" + url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"only http:// proxies are supported, not {url!r}")
        authorization = None
        if parts.username is not None:
            secret = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            authorization = "Basic " + base64.b64encode(secret.encode()).decode()
        return cls(parts.hostname, parts.port or 80, authorization)


def proxy_for(scheme: str, host: str, proxies: Mapping[str, str]) -> Proxy | None:
    """The proxy a request to `scheme://host` goes through, or None (direct or bypassed)."""
    url = proxies.get(scheme) or proxies.get("all")
    if not url:
        return None
    no_proxy = proxies.get("no")
    bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]
    if no_proxy and bypass(host, {"no": no_proxy}):
        return None
    return Proxy.parse(url)


def environment_proxies() -> dict[str, str]:
    """The proxy variables of this process's environment, keyed by scheme ("no" for NO_PROXY)."""
    return urllib.request.getproxies_environment()


def check_proxies(proxies: Mapping[str, str]) -> None:
    """Refuse, at start-up, a proxy URL this client cannot use (`ValueError`)."""
    for scheme in ("http", "https", "all"):
        if url := proxies.get(scheme):
            Proxy.parse(url)


class _TunnelHandshake(asyncio.Protocol):
    """Collects the proxy's answer to CONNECT (its head only) before the tunnel is handed on.

    A protocol of its own rather than asyncio streams: a dropped StreamWriter closes its
    transport, which here lives on as the tunnel.
    """

    def __init__(self, max_head_bytes: int) -> None:
        self.head = asyncio.get_running_loop().create_future()
        self._buffer = bytearray()
        self._limit = max_head_bytes

    def data_received(self, data: bytes) -> None:
        if self.head.done():
            return
        self._buffer += data
        end = self._buffer.find(b"\r\n\r\n")
        if end >= 0:
            self.head.set_result(bytes(self._buffer[:end]))
        elif len(self._buffer) > self._limit:
            self.head.set_exception(LimitExceeded(f"proxy answer over {self._limit} bytes"))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.head.done():
            self.head.set_exception(ConnectFailed(f"the proxy closed the connection: {exc!r}"))


async def open_tunnel(
    proxy: Proxy,
    host: str,
    port: int,
    ssl_context: ssl.SSLContext | None,
    max_head_bytes: int,
) -> asyncio.Transport:
    """A transport to `host:port` through `proxy` (TLS inside it when `ssl_context` is set)."""
    loop = asyncio.get_running_loop()
    handshake = _TunnelHandshake(max_head_bytes)
    try:
        raw, _ = await loop.create_connection(lambda: handshake, proxy.host, proxy.port)
    except OSError as exc:
        raise ConnectFailed(
            f"cannot connect to the proxy {proxy.host}:{proxy.port}: {exc}"
        ) from exc
    transport: asyncio.BaseTransport = raw
    try:
        authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
        if proxy.authorization:
            lines.append(f"Proxy-Authorization: {proxy.authorization}")
        raw.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        status_line = (await handshake.head).split(b"\r\n", 1)[0].decode("latin-1")
        fields = status_line.split(" ", 2)
        if len(fields) < 2 or fields[1] != "200":
            raise ConnectFailed(f"the proxy refused CONNECT {authority}: {status_line}")
        if ssl_context is not None:
            tls = await loop.start_tls(raw, handshake, ssl_context, server_hostname=host)
            if tls is None:  # pragma: no cover - only when the transport closed meanwhile
                raise ConnectFailed("the tunnel closed during the TLS handshake")
            transport = tls
        return transport  # type: ignore[return-value]
    except ssl.SSLError as exc:
        transport.abort()  # type: ignore[attr-defined]
        raw.abort()
        raise ConnectFailed(f"TLS through the proxy to {host}:{port} failed: {exc}") from exc
    except BaseException:
        raw.abort()
        raise
