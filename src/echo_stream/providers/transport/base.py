"""The upstream client interface every adapter uses, and the limits every client enforces."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Limits:
    """Caps on what an upstream may send; exceeding one is a `LimitExceeded` (a 502)."""

    max_head_bytes: int = 64 * 1024
    """Status line plus headers of one response, interim (1xx) responses included."""
    max_event_bytes: int = 8 * 1024 * 1024
    """One SSE line, and the data of one SSE event."""
    max_body_bytes: int = 8 * 1024 * 1024
    """A body read whole (a JSON answer); error bodies are cut to their first 64 KiB instead."""


class UpstreamResponse(Protocol):
    """A response whose status and headers have arrived; the body streams on demand."""

    status: int
    reason: str
    headers: dict[str, str]

    def aiter_bytes(self) -> AsyncIterator[bytes]: ...

    async def read(self, limit: int = 65536) -> bytes: ...

    def body_complete(self) -> bool:
        """Whether the whole body has arrived (so nothing is left to read before pooling)."""
        ...

    async def aclose(self) -> None: ...


class UpstreamClient(Protocol):
    """Sends one POST and returns as soon as the response headers are in."""

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> UpstreamResponse: ...

    async def aclose(self) -> None: ...
