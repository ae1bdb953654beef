"""Events -> Lobe Chat's stream protocol: `id:` / `event:` / `data:` per event.

Lobe's model runtime frames every chunk as three lines and a blank one::

    id: <message id>
    event: <type>
    data: <JSON>

with these types (the names its `fetchSSE` client switches on):

- `text`        data is the text delta as a JSON string
- `reasoning`   the model's thinking as a JSON string (`ReasoningDelta`: Anthropic's thinking,
                Gemini's thought summaries, `reasoning_content` of OpenAI-compatible servers);
                Lobe's client shows it as the collapsible "thinking" part before the answer
- `tool_calls`  `[{index, id, type: "function", function: {name, arguments}}]`; `name` only on a
                call's first fragment (null after), `id` on every fragment, as Lobe's client merges
                fragments by index
- `stop`        the finish reason (`stop`, `length`, `tool_calls`, `content_filter`)
- `speed`       `{ttft, tps, latency, duration}` (milliseconds; tokens per second), id
                `output_speed` as in Lobe
- `usage`       Lobe's `ModelTokensUsage` field names, zero counts left out as Lobe does
- `error`       `{body, message, type}` with Lobe's error types (`ProviderBizError`,
                `StreamChunkError`, `QuotaLimitReached`, ...)
- `ad`          ours: a sponsored block as its own event, `{adId, advertiser, title, text, link}`.
                Lobe's client ignores event types it does not know, so a stock Lobe front end just
                does not show it; our page renders it as a labelled card.

A finished stream ends `stop`, `speed`, `usage` (Lobe sends `speed` after `usage`; we send it
before so that the stream always ends on a terminal event). A stream that fails ends with one
`error`; an upstream that ends without finishing gets a synthetic `StreamChunkError`. Errors
before the first byte become a JSON body `{"body": {...}, "errorType": ...}` with a non-2xx status
(Lobe's `ErrorResponse`), via `LobeHTTPError`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from typing import Any

import orjson

from echo_stream.errors import (
    BrokenStream,
    EchoError,
    InvalidRequest,
    ModelNotFound,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    Unauthorized,
    UpstreamError,
    UpstreamRejected,
    UpstreamTimeout,
)
from echo_stream.events import (
    AdBlock,
    EventStream,
    Finish,
    Flush,
    ReasoningDelta,
    RefusalDelta,
    TextDelta,
    ToolCallDelta,
    Usage,
)

log = logging.getLogger(__name__)

SPEED_ID = "output_speed"
"""Lobe's id for the speed event (`TOKEN_SPEED_CHUNK_ID`)."""

STREAM_CHUNK_ERROR = "StreamChunkError"
UNEXPECTED_END = "the upstream stream ended before the answer finished"

LobeErrorType = str | int
"""Lobe's `AgentRuntimeErrorType` names, or its numeric `ChatErrorType` for plain HTTP errors."""


def lobe_error_type(error: EchoError) -> LobeErrorType:
    """The Lobe error type a client should see for `error`."""
    if isinstance(error, BrokenStream):
        return STREAM_CHUNK_ERROR
    if isinstance(error, ModelNotFound):
        return "ModelNotFound"
    if isinstance(error, Unauthorized):
        return "InvalidAccessCode"  # the gateway's own key, Lobe's "access code"
    if isinstance(error, RateLimited):
        return "QuotaLimitReached"
    if isinstance(error, UpstreamTimeout):
        return 504  # ChatErrorType.GatewayTimeout: Lobe has no runtime type for timeouts
    if isinstance(error, UpstreamRejected):
        return {401: "InvalidProviderAPIKey", 403: "PermissionDenied", 404: "ModelNotFound"}.get(
            error.status, "ProviderBizError"
        )
    if isinstance(error, UpstreamError):
        return "ProviderBizError"
    if isinstance(error, PayloadTooLarge | InvalidRequest | NotFound):
        return error.status  # ChatErrorType.BadRequest / ContentNotFound / 413
    return "AgentRuntimeError"


def error_data(error: EchoError, provider: str | None = None) -> dict[str, Any]:
    """Lobe's `ChatMessageError`: `{body, message, type}`; body carries our OpenAI-shaped error."""
    body: dict[str, Any] = dict(error.body()["error"])
    if provider:
        body["provider"] = provider
    return {"body": body, "message": error.message, "type": lobe_error_type(error)}


class LobeHTTPError(EchoError):
    """An error before the first byte, answered as Lobe's `ErrorResponse` JSON body."""

    def __init__(self, error: EchoError, provider: str | None = None) -> None:
        super().__init__(error.message, status=error.status, headers=error.headers)
        self.original = error
        self.provider = provider

    def body(self) -> dict[str, Any]:
        """`{"body": {...}, "errorType": ...}`, what Lobe's `getMessageError` reads."""
        data = error_data(self.original, self.provider)
        return {"body": data["body"], "errorType": data["type"]}


def frame(message_id: str, event: str, data: Any) -> bytes:
    """One Lobe protocol event."""
    return b"id: %s\nevent: %s\ndata: %s\n\n" % (
        message_id.encode(),
        event.encode(),
        orjson.dumps(data),
    )


def usage_data(usage: Usage) -> dict[str, int]:
    """Lobe's `ModelTokensUsage` from our counts, leaving zero fields out as Lobe does."""
    reasoning = usage.reasoning_tokens or 0
    cached = usage.cached_tokens or 0
    data = {
        "inputTextTokens": usage.prompt_tokens,
        "inputCachedTokens": cached,
        "inputCacheMissTokens": usage.prompt_tokens - cached,
        "outputTextTokens": usage.completion_tokens - reasoning,
        "outputReasoningTokens": reasoning,
        "totalInputTokens": usage.prompt_tokens,
        "totalOutputTokens": usage.completion_tokens,
        "totalTokens": usage.total_tokens,
    }
    return {key: value for key, value in data.items() if value}


def ad_data(ad: AdBlock) -> dict[str, str]:
    """The `ad` event's fields: what a labelled card needs, never the rendered `[ad]` text."""
    return {
        "adId": ad.ad_id,
        "advertiser": ad.advertiser,
        "title": ad.title,
        "text": ad.body,
        "link": ad.url,
    }


class _Timing:
    """Speed bookkeeping in Lobe's units: milliseconds, and tokens per second."""

    def __init__(self, started: float, clock: Callable[[], float]) -> None:
        self.started = started
        self.clock = clock
        self.first: float | None = None

    def output_started(self) -> None:
        if self.first is None:
            self.first = self.clock()

    def speed(self, output_tokens: int) -> dict[str, float]:
        end = self.clock()
        first = self.first if self.first is not None else end
        duration = max(end - first, 0.0)
        tps = output_tokens / duration if duration > 0 else 0.0
        return {
            "ttft": round((first - self.started) * 1000, 1),
            "tps": round(tps, 2),
            "latency": round((end - self.started) * 1000, 1),
            "duration": round(duration * 1000, 1),
        }


class _Encoder:
    """Per-response state: ids of tool calls, the held finish and usage, pending bytes.

    Text (or reasoning) deltas of one read are joined into one event; `kind` says which of the
    two `text` holds, so that switching between them keeps their order.
    """

    def __init__(self, message_id: str, timing: _Timing) -> None:
        self.id = message_id
        self.timing = timing
        self.pending: list[bytes] = []
        self.text: list[str] = []
        self.kind = "text"
        self.tool_ids: dict[int, str] = {}
        self.finish: Finish | None = None
        self.usage: Usage | None = None

    def flush_text(self) -> None:
        if self.text:
            self.pending.append(frame(self.id, self.kind, "".join(self.text)))
            self.text = []

    def add(self, event: object) -> None:
        if isinstance(event, AdBlock):
            if event.choice == 0:
                self.flush_text()
                self.pending.append(frame(self.id, "ad", ad_data(event)))
        elif isinstance(event, TextDelta | RefusalDelta):
            if event.choice == 0 and event.text:
                if self.kind != "text":
                    self.flush_text()
                    self.kind = "text"
                self.timing.output_started()
                self.text.append(event.text)
        elif isinstance(event, ReasoningDelta):
            if event.choice == 0 and event.text:
                if self.kind != "reasoning":
                    self.flush_text()
                    self.kind = "reasoning"
                self.timing.output_started()
                self.text.append(event.text)
        elif isinstance(event, ToolCallDelta):
            if event.choice == 0:
                self.timing.output_started()
                self.flush_text()
                self.pending.append(frame(self.id, "tool_calls", [self._tool_call(event)]))
        elif isinstance(event, Finish):
            if event.choice == 0 and self.finish is None:
                self.finish = event
        elif isinstance(event, Usage):
            self.usage = event

    def _tool_call(self, event: ToolCallDelta) -> dict[str, Any]:
        call_id = self.tool_ids.setdefault(event.index, event.id or f"call_{event.index}")
        first = event.name is not None
        return {
            "index": event.index,
            "id": call_id,
            "type": "function",
            "function": {"name": event.name if first else None, "arguments": event.arguments},
        }

    def take(self) -> bytes:
        self.flush_text()
        out = b"".join(self.pending)
        self.pending = []
        return out

    def ending(self) -> bytes:
        """stop, speed, usage — or the synthetic error when the upstream never finished."""
        self.flush_text()
        if self.finish is None:
            error = {
                "body": {"message": UNEXPECTED_END},
                "message": UNEXPECTED_END,
                "type": STREAM_CHUNK_ERROR,
            }
            self.pending.append(frame(self.id, "error", error))
            return self.take()
        self.pending.append(frame(self.id, "stop", self.finish.reason))
        output_tokens = self.usage.completion_tokens if self.usage else 0
        self.pending.append(frame(SPEED_ID, "speed", self.timing.speed(output_tokens)))
        if self.usage is not None:
            self.pending.append(frame(self.id, "usage", usage_data(self.usage)))
        return self.take()


async def encode_lobe(
    events: EventStream,
    *,
    message_id: str,
    provider: str | None = None,
    started: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> AsyncGenerator[bytes, None]:
    """Turn events into Lobe protocol bytes, one write per `FLUSH`.

    An error before the first byte is raised as `LobeHTTPError` (a JSON error response); after
    it, it becomes one `error` event that ends the stream.
    """
    encoder = _Encoder(message_id, _Timing(clock() if started is None else started, clock))
    sent = False
    try:
        async with aclosing(events):
            async for event in events:
                if isinstance(event, Flush):
                    if chunk := encoder.take():
                        sent = True
                        yield chunk
                    continue
                encoder.add(event)
        tail = encoder.ending()
    except EchoError as exc:
        if not sent:
            raise LobeHTTPError(exc, provider) from exc
        yield encoder.take() + frame(message_id, "error", error_data(exc, provider))
        return
    except Exception:
        log.exception("lobe stream failed")
        error = EchoError("internal error while streaming")
        if not sent:
            raise LobeHTTPError(error, provider) from None
        yield encoder.take() + frame(message_id, "error", error_data(error, provider))
        return
    yield tail
