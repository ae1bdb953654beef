"""`UpstreamClient` over httpx, for tests that replace the network with an
`httpx.MockTransport`, and (until `FastClient` speaks CONNECT) for outbound proxies.

It raises the same `transport.errors` as `FastClient`, so errors are translated once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import httpx

from echo_stream.providers.transport.base import UpstreamResponse
from echo_stream.providers.transport.errors import (
    ConnectFailed,
    ConnectionBroken,
    ConnectTimeout,
    ReadTimeout,
)


class _HttpxResponse:
    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self.status = response.status_code
        self.reason = response.reason_phrase
        self.headers = {k.lower(): v for k, v in response.headers.items()}

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.aiter_bytes():
                yield chunk
        except httpx.TimeoutException as exc:
            raise ReadTimeout(str(exc) or "read timeout") from exc
        except httpx.HTTPError as exc:
            raise ConnectionBroken(repr(exc)) from exc

    async def read(self, limit: int = 65536) -> bytes:
        body = b""
        async for chunk in self.aiter_bytes():
            body += chunk
            if len(body) >= limit:
                break
        return body[:limit]

    def body_complete(self) -> bool:
        return self._response.is_stream_consumed

    async def aclose(self) -> None:
        await self._response.aclose()


class HttpxClient:
    """`UpstreamClient` over an `httpx.AsyncClient`."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> UpstreamResponse:
        """Send the request; translate httpx's errors into `TransportError`s."""
        request = self._client.build_request("POST", url, content=body, headers=dict(headers))
        try:
            response = await self._client.send(request, stream=True)
        except (httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise ConnectTimeout(str(exc) or "connect timeout") from exc
        except httpx.TimeoutException as exc:
            raise ReadTimeout(str(exc) or "timeout") from exc
        except httpx.ConnectError as exc:
            raise ConnectFailed(repr(exc)) from exc
        except httpx.TransportError as exc:
            raise ConnectionBroken(repr(exc)) from exc
        return _HttpxResponse(response)

    async def aclose(self) -> None:
        """Close the pool."""
        await self._client.aclose()
