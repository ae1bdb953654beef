"""The one interface every provider adapter implements."""

from __future__ import annotations

from typing import Protocol

from echo_stream.events import EventStream
from echo_stream.protocol import ChatCompletionRequest


class Provider(Protocol):
    """Streams one chat completion as internal events.

    Non-streaming requests use the same stream, collected, so the two paths cannot drift.
    Errors are raised as `echo_stream.errors.EchoError` subclasses, translated in the adapter.
    """

    name: str
    """The provider kind, e.g. "openai"; used in error messages and `owned_by`."""

    def stream(self, request: ChatCompletionRequest, upstream_model: str) -> EventStream:
        """Send `request` for `upstream_model` and yield its events until every choice finishes."""
        ...

    async def aclose(self) -> None:
        """Release pooled connections (called once on shutdown)."""
        ...
