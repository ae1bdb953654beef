"""`UpstreamClient` over aiohttp, only for `bench.transport_compare` (FastClient against aiohttp
inside the whole gateway). Same protocol, same `transport.errors`, same pool size and timeouts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import aiohttp

from echo_stream.providers.http import UpstreamOptions
from echo_stream.providers.transport.base import UpstreamClient, UpstreamResponse
from echo_stream.providers.transport.errors import (
    ConnectFailed,
    ConnectionBroken,
    ReadTimeout,
)


class _Response:
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.reason = response.reason or ""
        self.headers = {k.lower(): v for k, v in response.headers.items()}

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except TimeoutError as exc:
            raise ReadTimeout("read timeout") from exc
        except aiohttp.ClientError as exc:
            raise ConnectionBroken(repr(exc)) from exc

    async def read(self, limit: int = 65536) -> bytes:
        return await self._response.content.read(limit)

    def body_complete(self) -> bool:
        return self._response.content.at_eof()

    async def aclose(self) -> None:
        self._response.release()


class AiohttpClient:
    """Pooled keep-alive POSTs through one `aiohttp.ClientSession`."""

    def __init__(self, options: UpstreamOptions) -> None:
        self._options = options
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:  # made lazily: a session needs the running loop
            connector = aiohttp.TCPConnector(
                limit=self._options.max_connections, limit_per_host=0, ttl_dns_cache=300
            )
            timeout = aiohttp.ClientTimeout(
                connect=self._options.connect_timeout, sock_read=self._options.read_timeout
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=timeout,
                auto_decompress=False,
                max_field_size=self._options.limits.max_head_bytes,
            )
        return self._session

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> UpstreamResponse:
        """Send the request; translate aiohttp's errors into `TransportError`s."""
        try:
            response = await self._get_session().post(url, data=body, headers=dict(headers))
        except TimeoutError as exc:
            raise ReadTimeout("timeout") from exc
        except aiohttp.ClientConnectorError as exc:
            raise ConnectFailed(repr(exc)) from exc
        except aiohttp.ClientError as exc:
            raise ConnectionBroken(repr(exc)) from exc
        return _Response(response)

    async def aclose(self) -> None:
        """Close the pool."""
        if self._session is not None:
            await self._session.close()


def make_aiohttp_client(options: UpstreamOptions, transport: object = None) -> UpstreamClient:
    """A drop-in for `providers.http.make_client`."""
    return AiohttpClient(options)
