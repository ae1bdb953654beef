"""The one interface every provider adapter implements, and the spec that registers one."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from echo_stream.events import EventStream
from echo_stream.protocol import ChatCompletionRequest
from echo_stream.providers.http import UpstreamOptions
from echo_stream.providers.transport.base import UpstreamClient
from echo_stream.settings import Settings


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


@dataclass(frozen=True, slots=True)
class ProviderSetup:
    """What a provider factory gets: settings, where to send, the key, and its HTTP client."""

    settings: Settings
    base_url: str | None
    api_key: str | None
    options: UpstreamOptions
    client: UpstreamClient | None
    """The pooled client for `base_url`'s upstream; None for a provider without HTTP."""


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """Everything the gateway knows about one provider, in one place (see `registry`)."""

    name: str
    """The provider kind: the config file's `provider:` and the `name/` routing prefix."""
    factory: Callable[[ProviderSetup], Provider]
    key_variables: tuple[str, ...] = ()
    """Variables that may hold its key, first preferred; empty for a keyless provider."""
    key_required: bool = True
    """False when a base URL alone enables it (keyless OpenAI-compatible servers)."""
    base_url_variable: str | None = None
    default_base_url: str | None = None
    prefixes: tuple[str, ...] = ()
    """Model-name prefixes that route to it without a config file (`claude-`, `gemini-`...)."""
    strip_name_prefix: bool = True
    """Whether `name/model` routes `model` upstream (else the whole name is sent)."""
    catalog: tuple[str, ...] = ()
    """Built-in names listed by `GET /v1/models`; each routes to it exactly."""
    uses_http: bool = True
