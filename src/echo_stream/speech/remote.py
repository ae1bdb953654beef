"""What the remote TTS providers share: one HTTP client, timeouts, and errors translated once.

Every httpx failure and every non-2xx answer becomes a `TTSError` here, with the provider's own
message when it sent one (keys are redacted from it, in case a provider echoes what it got).
There are no retries: a segment that fails is reported as a `tts_error` and the answer goes on.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from echo_stream.speech.base import (
    TTSError,
    TTSRateLimited,
    TTSRejected,
    TTSTimeout,
    TTSUnavailable,
)

_MESSAGE_LIMIT = 300


@dataclass(frozen=True, slots=True)
class RemoteOptions:
    """Timeouts for one remote provider, in seconds."""

    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    """Longest wait for the first byte of an answer or for the next piece of a stream."""


def make_http_client(
    options: RemoteOptions, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """An HTTP client with these timeouts; `transport` replaces the network (tests)."""
    timeout = httpx.Timeout(options.read_timeout, connect=options.connect_timeout)
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
    return httpx.AsyncClient(timeout=timeout, limits=limits, transport=transport)


def provider_message(body: bytes) -> str:
    """The human part of a provider's error body (JSON `detail`/`message`/`error`, or text)."""
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.decode(errors="replace").strip()[:_MESSAGE_LIMIT]
    for key in ("detail", "error"):
        if isinstance(data, dict) and key in data:
            data = data[key]
    if isinstance(data, dict):
        data = data.get("message") or data.get("status") or data
    return (data if isinstance(data, str) else orjson.dumps(data).decode())[:_MESSAGE_LIMIT]


def error_for_status(provider: str, status: int, body: bytes, secret: str = "") -> TTSError:
    """The `TTSError` for a non-2xx answer from `provider`."""
    message = provider_message(body) or f"HTTP {status}"
    if secret:
        message = message.replace(secret, "[redacted]")
    text = f"{provider} answered {status}: {message}"
    if status == 429:
        return TTSRateLimited(text, status=status)
    if status >= 500:
        return TTSUnavailable(text, status=status)
    return TTSRejected(text, status=status)


def error_for_exception(provider: str, exc: httpx.HTTPError) -> TTSError:
    """The `TTSError` for a transport failure talking to `provider`."""
    if isinstance(exc, httpx.TimeoutException):
        return TTSTimeout(f"{provider} did not answer in time ({type(exc).__name__})")
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
        return TTSUnavailable(f"{provider} cut its answer off ({type(exc).__name__})")
    return TTSUnavailable(f"{provider} could not be reached ({type(exc).__name__})")


async def post_for_body(
    client: httpx.AsyncClient,
    provider: str,
    url: str,
    *,
    headers: Mapping[str, str],
    body: dict[str, Any],
    params: Mapping[str, str] | None = None,
    secret: str = "",
) -> bytes:
    """POST JSON and return the whole answer's body, or raise the matching `TTSError`."""
    async with open_stream(
        client, provider, url, headers=headers, body=body, params=params, secret=secret
    ) as chunks:
        return b"".join([chunk async for chunk in chunks])


@asynccontextmanager
async def open_stream(
    client: httpx.AsyncClient,
    provider: str,
    url: str,
    *,
    headers: Mapping[str, str],
    body: dict[str, Any],
    params: Mapping[str, str] | None = None,
    secret: str = "",
) -> AsyncIterator[AsyncIterator[bytes]]:
    """POST JSON; yield the answer's body as it arrives. Errors are `TTSError`s throughout."""
    request = client.build_request(
        "POST",
        url,
        params=params,
        headers={**headers, "content-type": "application/json"},
        content=orjson.dumps(body),
    )
    try:
        response = await client.send(request, stream=True)
    except httpx.HTTPError as exc:
        raise error_for_exception(provider, exc) from None
    try:
        if response.status_code >= 300:
            raise error_for_status(provider, response.status_code, await _read(response), secret)
        yield _chunks(provider, response)
    finally:
        await response.aclose()


async def _read(response: httpx.Response) -> bytes:
    try:
        return await response.aread()
    except httpx.HTTPError:
        return b""


async def _chunks(provider: str, response: httpx.Response) -> AsyncIterator[bytes]:
    try:
        async for chunk in response.aiter_bytes():
            if chunk:
                yield chunk
    except httpx.HTTPError as exc:
        raise error_for_exception(provider, exc) from None


async def get_json(
    client: httpx.AsyncClient, provider: str, url: str, headers: Mapping[str, str]
) -> Any:
    """GET a JSON document, or raise the matching `TTSError`."""
    try:
        response = await client.get(url, headers=headers)
    except httpx.HTTPError as exc:
        raise error_for_exception(provider, exc) from None
    if response.status_code >= 300:
        raise error_for_status(provider, response.status_code, response.content)
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        raise TTSUnavailable(f"{provider} sent a malformed voice list") from None
