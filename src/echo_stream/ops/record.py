"""The per-request record: what one request did, filled in as it goes, logged once at the end.

The outermost ASGI middleware creates a `RequestRecord` and sets it in a `ContextVar` before
calling the app, so every task the request starts (the streaming work, the ad choice) sees the
same object. Lower layers fill their part through `current_record()` without knowing about
logging or metrics: the pipeline notes model, provider, tokens and the finish; the ad engine its
decision; the retry loop its retries; `EchoError.body()` reads the request id. This module
imports only the standard library (and `ids`, which does too) so every layer may use it.
"""

from __future__ import annotations

import functools
import hashlib
import re
import time
from contextvars import ContextVar, Token
from dataclasses import dataclass, field

from echo_stream.ids import hex_id

_VALID_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")


def new_request_id() -> str:
    """A fresh request id (`req_` and 24 hex digits, like OpenAI's)."""
    return hex_id("req_")


@functools.lru_cache(maxsize=256)
def key_digest(key: str) -> str:
    """SHA-256 of a client key, hex; cached, since the same keys come back request after request."""
    return hashlib.sha256(key.encode()).hexdigest()


def key_id(key: str) -> str:
    """The id logs, metrics and usage show for a client key: a short hash, never the key."""
    return "key_" + key_digest(key)[:12]


def valid_request_id(value: str | None) -> bool:
    """True for an id a client may choose: 1-128 characters of letters, digits and `._:-`."""
    return value is not None and _VALID_ID.fullmatch(value) is not None


@dataclass(slots=True)
class RequestRecord:
    """One request's facts, written by whichever layer knows them."""

    request_id: str
    method: str = ""
    path: str = ""
    route: str = ""
    """The route's template (a metrics label); `path` is what the client asked for."""
    started: float = field(default_factory=time.perf_counter)
    key_id: str | None = None
    """A short hash of the client key (`key_id()`), never the key."""
    user: str | None = None
    model: str | None = None
    provider: str | None = None
    streamed: bool | None = None
    status: int = 0
    ttft_s: float | None = None
    """Seconds from the request's arrival to the first answer event."""
    duration_s: float = 0.0
    input_tokens: int | None = None
    output_tokens: int | None = None
    chunks: int = 0
    retries: list[str] = field(default_factory=list)
    """One entry per upstream retry: the kind of failure retried (`status_429`, `connect`...)."""
    ad: str | None = None
    """The ad decision: `placed` or `none` (None when the ad stage never ran)."""
    ad_reason: str | None = None
    ad_impressions: int = 0
    ad_clicks: int = 0
    finish: str | None = None
    error_type: str | None = None
    response_headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    """Extra headers for the response (rate-limit state), added with the request id."""
    headers_added: bool = False

    def elapsed(self) -> float:
        """Seconds since the request arrived."""
        return time.perf_counter() - self.started


_current: ContextVar[RequestRecord | None] = ContextVar("echo_request", default=None)


def current_record() -> RequestRecord | None:
    """The record of the request being served here, if any (None outside a request)."""
    return _current.get()


def set_record(record: RequestRecord | None) -> Token[RequestRecord | None]:
    """Make `record` current; returns a token for `reset_record`."""
    return _current.set(record)


def reset_record(token: Token[RequestRecord | None]) -> None:
    """Undo a `set_record`."""
    _current.reset(token)


def response_started(status: int) -> list[tuple[bytes, bytes]]:
    """The headers to add to a response starting now with `status` (the request id, rate-limit
    state), noting the status; empty outside a request or once already handed out.

    The gateway's own response classes call it, so the chat fast path needs no wrapper around
    every `send`; the middleware adds the same headers to any other response.
    """
    record = _current.get()
    if record is None or record.headers_added:
        return []
    record.status = status
    record.headers_added = True
    return [(b"x-request-id", record.request_id.encode()), *record.response_headers]


def note_retry(kind: str) -> None:
    """Count one upstream retry of the current request (called by the retry loop)."""
    if (record := _current.get()) is not None:
        record.retries.append(kind)


def current_request_id() -> str | None:
    """The current request's id, for error bodies."""
    record = _current.get()
    return record.request_id if record is not None else None
