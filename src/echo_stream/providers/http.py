"""The shared HTTP-provider base: open (with the one retry rule), decode SSE within limits,
check payload shapes, detect truncation. An adapter only maps request bodies and events.

Every failure leaves here as an `EchoError`: transport errors through
`transport.errors.to_echo_error`, upstream statuses through `_status_error`, and a payload of
the wrong shape (a list where an object belongs, a number where text belongs) as a 502 that
names the provider.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

import httpx
import orjson

from echo_stream.errors import (
    BrokenStream,
    EchoError,
    RateLimited,
    UpstreamRejected,
    UpstreamUnavailable,
)
from echo_stream.events import FLUSH, AnswerEvent, EventStream
from echo_stream.ops.record import note_retry
from echo_stream.protocol import ChatCompletionRequest
from echo_stream.providers.payloads import PayloadDecoder, malformed
from echo_stream.providers.transport import retry
from echo_stream.providers.transport.base import Limits, UpstreamClient, UpstreamResponse
from echo_stream.providers.transport.errors import (
    LimitExceeded,
    TransportError,
    to_echo_error,
)
from echo_stream.providers.transport.fastclient import FastClient
from echo_stream.providers.transport.httpx_client import HttpxClient
from echo_stream.streaming.relay import RELAY

_ERROR_BODY_LIMIT = 64 * 1024
MALFORMED_ERRORS = (KeyError, TypeError, AttributeError, ValueError, IndexError)
"""What reading a payload of the wrong shape raises; turned into a 502 naming the provider."""


@dataclass(frozen=True, slots=True)
class UpstreamOptions:
    """Timeouts, pool size, retries and limits for one upstream."""

    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    max_retries: int = 1
    max_connections: int = 1000
    idle_timeout: float = 60.0
    limits: Limits = field(default_factory=Limits)


def make_client(
    options: UpstreamOptions, transport: httpx.AsyncBaseTransport | None = None
) -> UpstreamClient:
    """One pooled client per upstream; `read_timeout` bounds the gap between received chunks.

    Always `FastClient` (proxies included), unless `transport` replaces the network (tests).
    """
    if transport is None:
        return FastClient(
            connect_timeout=options.connect_timeout,
            read_timeout=options.read_timeout,
            max_connections=options.max_connections,
            max_head_bytes=options.limits.max_head_bytes,
            idle_timeout=options.idle_timeout,
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

    Sends again only as `transport.retry` allows; nothing has reached the client yet, so a
    retry is invisible to it.
    """
    content = orjson.dumps(body)
    all_headers = {"content-type": "application/json", **headers}
    attempt = 0
    stale_retried = False
    while True:
        last = attempt >= max_retries
        try:
            response = await client.post(url, content, all_headers)
        except TransportError as exc:
            if retry.retry_now(exc, stale_retried):
                stale_retried = True
                note_retry("stale_connection")
                continue
            if last or not retry.may_retry_error(exc):
                raise to_echo_error(provider, exc) from exc
            kind = "connect"
        else:
            if 200 <= response.status < 300:
                return response  # a 3xx is not followed: an upstream URL never redirects
            error = await _status_error(provider, response)
            if last or not retry.may_retry_status(response.status):
                raise error
            kind = f"status_{response.status}"
        note_retry(kind)
        await asyncio.sleep(retry.backoff(attempt))
        attempt += 1


async def _status_error(provider: str, response: UpstreamResponse) -> EchoError:
    """Translate an upstream error status into the error the client gets."""
    try:
        raw = await response.read(_ERROR_BODY_LIMIT)
    except TransportError:
        raw = b""
    finally:
        await response.aclose()
    status = response.status
    message = f"{provider} answered {status}: {error_message(raw) or response.reason}"
    if status == 429:
        retry_after = response.headers.get("retry-after")
        return RateLimited(message, headers={"Retry-After": retry_after} if retry_after else None)
    if 400 <= status < 500:
        return UpstreamRejected(message, status=status, code=f"upstream_{status}")
    return UpstreamUnavailable(message)


def error_message(raw: bytes) -> str:
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
        return str(error["message"])[:1000]
    return raw[:300].decode("utf-8", "replace").strip()


def _is_event_stream(response: UpstreamResponse) -> bool:
    kind = response.headers.get("content-type", "text/event-stream")
    return not kind.lower().startswith("application/json")


async def _not_a_stream(provider: str, response: UpstreamResponse, limits: Limits) -> None:
    """A 2xx JSON body where a stream was asked for: read it (within the limit) and fail."""
    raw = await response.read(limits.max_body_bytes + 1)
    if len(raw) > limits.max_body_bytes:
        raise LimitExceeded(f"a response body over {limits.max_body_bytes} bytes")
    raise UpstreamUnavailable(
        f"{provider} answered with a JSON body instead of a stream: {error_message(raw)}"
    )


async def _finish_body(body: AsyncIterator[bytes], seconds: float = 1.0) -> None:
    """Read what is left of a stream whose end marker arrived (normally just the chunked
    terminator), so its connection goes back to the pool instead of being dropped."""
    try:
        async with asyncio.timeout(seconds):
            async for _ in body:
                pass
    except (TimeoutError, TransportError):
        pass


def truncated(provider: str) -> UpstreamUnavailable:
    """The error for a stream that ended before the provider said it was finished."""
    return BrokenStream(f"{provider} closed the stream before it finished")


class StreamReader(Protocol):
    """One answer's payload-to-events mapping, with whatever state the stream needs."""

    def feed(self, payload: Any) -> Iterable[AnswerEvent]:
        """The events in one JSON payload; raise an `EchoError` for an in-band upstream error.

        A payload of the wrong shape may simply fail (KeyError, TypeError, ...): the base
        turns that into a 502 naming the provider.
        """
        ...

    def finish(self) -> Iterable[AnswerEvent]:
        """Events at the end of the stream; raise `truncated(...)` if it ended too early."""
        ...


def _events_of(
    reader: StreamReader, provider: str, payloads: list[Any]
) -> tuple[list[AnswerEvent], EchoError | None]:
    """The events in one read's payloads, and the error that stops them, if one does (an
    in-band upstream error, or a payload of the wrong shape: a 502 naming the provider). The
    events before the error still go out first."""
    events: list[AnswerEvent] = []
    for payload in payloads:
        try:
            events += reader.feed(payload)
        except EchoError as exc:
            return events, exc
        except MALFORMED_ERRORS as exc:
            error = malformed(provider, payload)
            error.__cause__ = exc
            return events, error
    return events, None


class HttpProvider:
    """Base of the HTTP adapters: owns the open / retry / decode / truncation loop."""

    name: str

    def __init__(
        self, options: UpstreamOptions, client: UpstreamClient | None, headers: Mapping[str, str]
    ) -> None:
        self._options = options
        self._client = client or make_client(options)
        self._headers = dict(headers)

    def prepare(self, request: ChatCompletionRequest, upstream_model: str) -> tuple[str, Any]:
        """The URL (from `transport.urls.build_url`) and JSON body of the upstream request."""
        raise NotImplementedError

    def reader(self) -> StreamReader:
        """A fresh reader for one answer's stream."""
        raise NotImplementedError

    is_last: Callable[[Any], bool] | None = None
    """Recognises the payload that ends the stream, besides `data: [DONE]` and the body's end
    (None: nothing to call per payload)."""

    async def stream(self, request: ChatCompletionRequest, upstream_model: str) -> EventStream:
        """Send the request and yield its answer as events, with `FLUSH` after each read's.

        One loop from body bytes to events (`PayloadDecoder` decodes a whole read at once):
        this runs once per upstream read, so it is kept free of generator layers.
        """
        url, body = self.prepare(request, upstream_model)
        provider = self.name
        limits = self._options.limits
        response = await open_stream(
            self._client,
            provider,
            url,
            body=body,
            headers=self._headers,
            max_retries=self._options.max_retries,
        )
        reader = self.reader()
        decoder = PayloadDecoder(provider, limits.max_event_bytes, self.is_last)
        try:
            if not _is_event_stream(response):
                await _not_a_stream(provider, response, limits)
            relay = RELAY.get()
            if relay is not None:  # a plain answer: reads of plain text may skip this task
                read_texts = getattr(reader, "read_texts", None)
                offer = getattr(response, "relay", None)
                if read_texts is not None and offer is not None:
                    offer(partial(relay.take, decoder, read_texts))
            chunks = response.aiter_bytes()
            async for chunk in chunks:
                payloads = decoder.feed(chunk)
                if payloads:
                    events, error = _events_of(reader, provider, payloads)
                    for event in events:
                        yield event
                    if error is not None:
                        raise error
                    if not decoder.ended:
                        yield FLUSH
                if decoder.ended:
                    break
            else:  # the body ended without an end marker: its last event may lack a blank line
                events, error = _events_of(reader, provider, decoder.flush())
                for event in events:
                    yield event
                if error is not None:
                    raise error
            if decoder.ended and not response.body_complete():
                await _finish_body(chunks)
        except TransportError as exc:
            raise to_echo_error(provider, exc, mid_stream=True) from exc
        finally:
            await response.aclose()
        try:
            last = reader.finish()
        except EchoError:
            raise
        except MALFORMED_ERRORS as exc:
            raise malformed(provider, "the stream's last state") from exc
        for event in last:
            yield event

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._client.aclose()
