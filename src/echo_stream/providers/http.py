"""What the HTTP adapters share: one pooled client per upstream, bounded retries before the
first byte, and the single place where httpx errors and upstream statuses become `EchoError`s.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from echo_stream.errors import (
    EchoError,
    RateLimited,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from echo_stream.events import FLUSH
from echo_stream.ops.record import note_retry
from echo_stream.providers.fastclient import FastClient
from echo_stream.providers.fastclient_conn import TransportError, TransportTimeout
from echo_stream.providers.httpx_client import HttpxClient, UpstreamClient, UpstreamResponse
from echo_stream.streaming.sse import SSEDecoder, SSEEvent

_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504, 529})
_ERROR_BODY_LIMIT = 64 * 1024
_PROXY_VARIABLES = (
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
)


@dataclass(frozen=True, slots=True)
class UpstreamOptions:
    """Timeouts and pool limits for one upstream."""

    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    max_retries: int = 1
    max_connections: int = 1000


def make_client(
    options: UpstreamOptions, transport: httpx.AsyncBaseTransport | None = None
) -> UpstreamClient:
    """One pooled client per upstream; `read_timeout` bounds the gap between received chunks.

    `FastClient` unless `transport` replaces the network (tests) or an outbound proxy is set
    in the environment, which only httpx speaks.
    """
    if transport is None and not any(os.environ.get(name) for name in _PROXY_VARIABLES):
        return FastClient(
            connect_timeout=options.connect_timeout,
            read_timeout=options.read_timeout,
            max_connections=options.max_connections,
        )
    timeout = httpx.Timeout(
        connect=options.connect_timeout,
        read=options.read_timeout,
        write=options.connect_timeout,
        pool=options.connect_timeout,
    )
    limits = httpx.Limits(
        max_connections=options.max_connections,
        max_keepalive_connections=min(100, options.max_connections),
    )
    return HttpxClient(httpx.AsyncClient(timeout=timeout, limits=limits, transport=transport))


async def open_stream(
    client: UpstreamClient,
    provider: str,
    url: str,
    *,
    body: Mapping[str, Any],
    headers: Mapping[str, str],
    max_retries: int,
) -> UpstreamResponse:
    """POST `body` and return the streaming response once the upstream answers 2xx.

    Retries connect errors, 429 and 5xx a bounded number of times; nothing has reached the
    client yet, so a retry is invisible to it.
    """
    content = orjson.dumps(body)
    all_headers = {"content-type": "application/json", **headers}
    for attempt in range(max_retries + 1):
        last = attempt == max_retries
        try:
            response = await client.post(url, content, all_headers)
        except TransportTimeout as exc:
            if last:
                raise UpstreamTimeout(f"{provider} did not answer in time") from exc
            kind = "timeout"
        except TransportError as exc:
            if last:
                raise UpstreamUnavailable(f"could not reach {provider}: {exc}") from exc
            kind = "connect"
        else:
            if response.status < 400:
                return response
            error = await _status_error(provider, response)
            if last or response.status not in _RETRY_STATUSES:
                raise error
            kind = f"status_{response.status}"
        note_retry(kind)
        await asyncio.sleep(_backoff(attempt))
    raise AssertionError("unreachable")


def _backoff(attempt: int) -> float:
    return min(0.25 * 2.0**attempt, 2.0)


async def _status_error(provider: str, response: UpstreamResponse) -> EchoError:
    """Translate an upstream error status into the error the client gets."""
    try:
        raw = await response.read(_ERROR_BODY_LIMIT)
    except TransportError:
        raw = b""
    finally:
        await response.aclose()
    status = response.status
    message = f"{provider} answered {status}: {_error_message(raw) or response.reason}"
    if status == 429:
        retry_after = response.headers.get("retry-after")
        return RateLimited(message, headers={"Retry-After": retry_after} if retry_after else None)
    if 400 <= status < 500:
        return UpstreamRejected(message, status=status, code=f"upstream_{status}")
    return UpstreamUnavailable(message)


def _error_message(raw: bytes) -> str:
    """The human message inside an upstream error body (OpenAI, Anthropic and Google all
    use `{"error": {"message": ...}}`), else the start of the body."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw[:300].decode("utf-8", "replace").strip()
    if isinstance(data, list) and data:
        data = data[0]
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    return raw[:300].decode("utf-8", "replace").strip()


SSE_FLUSH: SSEEvent = (None, b"")
"""Yielded by `sse_events` after the events of each read; adapters pass it on as `FLUSH`."""


async def sse_events(provider: str, response: UpstreamResponse) -> AsyncGenerator[SSEEvent, None]:
    """Decode the response body as SSE, translating transport failures mid-stream."""
    decoder = SSEDecoder()
    try:
        async for chunk in response.aiter_bytes():
            if events := decoder.feed(chunk):
                for event in events:
                    yield event
                yield SSE_FLUSH
    except TransportTimeout as exc:
        raise UpstreamTimeout(f"{provider} stopped sending mid-stream (read timeout)") from exc
    except TransportError as exc:
        raise UpstreamUnavailable(f"{provider} stream broke: {exc}") from exc
    finally:
        await response.aclose()
    for event in decoder.flush():
        yield event


async def finish_body(events: AsyncGenerator[SSEEvent, None], seconds: float = 1.0) -> None:
    """Read what is left of a stream whose end marker arrived (normally just the chunked
    terminator), so its connection goes back to the pool instead of being dropped."""
    try:
        async with asyncio.timeout(seconds):
            async for _ in events:
                pass
    except (TimeoutError, EchoError):
        pass


async def json_events(
    provider: str, response: UpstreamResponse, is_last: Callable[[Any], bool] | None = None
) -> AsyncGenerator[Any, None]:
    """The stream's SSE payloads parsed as JSON, with `FLUSH` after each upstream read.

    Ends at `data: [DONE]` or after the payload `is_last` recognises, reading the rest of the
    body first so the connection is reused; the consumer must keep iterating to let it.
    """
    async with aclosing(sse_events(provider, response)) as events:
        async for item in events:
            if item is SSE_FLUSH:
                yield FLUSH
                continue
            if item[1] == b"[DONE]":
                await finish_body(events)
                return
            payload = parse_json(provider, item[1])
            yield payload
            if is_last is not None and is_last(payload):
                await finish_body(events)
                return


def parse_json(provider: str, data: bytes) -> Any:
    """Parse one event's JSON payload; a malformed one is an upstream failure."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise UpstreamUnavailable(f"{provider} sent a malformed event: {data[:200]!r}") from exc


def truncated(provider: str) -> UpstreamUnavailable:
    """The error for a stream that ended before the provider said it was finished."""
    return UpstreamUnavailable(f"{provider} closed the stream before it finished")
