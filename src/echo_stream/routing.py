"""Model name -> provider adapter + upstream model, through a table rather than a ladder of ifs.

Without a config file: `echo-mock` and `mock/*` go to the mock; `openai/X`, `anthropic/X` and
`google/X` name their provider explicitly; otherwise the name's prefix decides (`gpt-*`, `o1*`,
`o3*`, `o4*`, `chatgpt-*` -> OpenAI, `claude-*` -> Anthropic, `gemini-*` -> Google). With a
config file, exactly the declared names and aliases route.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import httpx

from echo_stream.catalog import CATALOG
from echo_stream.config_file import ConfigError, ModelDeclaration
from echo_stream.errors import ModelNotFound
from echo_stream.providers.anthropic import AnthropicProvider
from echo_stream.providers.base import Provider
from echo_stream.providers.google import GoogleProvider
from echo_stream.providers.http import UpstreamOptions, make_client
from echo_stream.providers.mock import MockProvider
from echo_stream.providers.openai import OpenAIProvider
from echo_stream.settings import Settings

EXPLICIT = {"openai/": "openai", "anthropic/": "anthropic", "google/": "google"}
PREFIXES = (
    ("mock/", "mock"),
    ("gpt-", "openai"),
    ("chatgpt-", "openai"),
    ("o1", "openai"),
    ("o3", "openai"),
    ("o4", "openai"),
    ("claude-", "anthropic"),
    ("gemini-", "google"),
)
KEY_VARIABLES = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "google": "GOOGLE_API_KEY",
}
DEFAULT_OPENAI_URL = "https://api.openai.com/v1"


@dataclass(frozen=True, slots=True)
class Route:
    provider: Provider
    upstream_model: str


@dataclass(frozen=True, slots=True)
class ModelCard:
    """One entry of `GET /v1/models`."""

    id: str
    owned_by: str


Transport = httpx.AsyncBaseTransport | None
ProviderFactory = Callable[[Settings, str | None, str | None, Transport], Provider]


def _options(settings: Settings) -> UpstreamOptions:
    return UpstreamOptions(
        connect_timeout=settings.upstream_connect_timeout,
        read_timeout=settings.upstream_read_timeout,
        max_retries=settings.upstream_max_retries,
        max_connections=settings.upstream_max_connections,
    )


def _openai(settings: Settings, url: str | None, key: str | None, transport: Transport) -> Provider:
    options = _options(settings)
    client = make_client(options, transport)
    return OpenAIProvider(url or DEFAULT_OPENAI_URL, key, options, client)


def _anthropic(
    settings: Settings, url: str | None, key: str | None, transport: Transport
) -> Provider:
    options = _options(settings)
    return AnthropicProvider(
        url or settings.anthropic_base_url,
        key or "",
        options,
        default_max_tokens=settings.anthropic_default_max_tokens,
        client=make_client(options, transport),
    )


def _google(settings: Settings, url: str | None, key: str | None, transport: Transport) -> Provider:
    options = _options(settings)
    client = make_client(options, transport)
    return GoogleProvider(url or settings.google_base_url, key or "", options, client)


def _mock(settings: Settings, url: str | None, key: str | None, transport: Transport) -> Provider:
    return MockProvider(settings.mock_delay_ms)


FACTORIES: dict[str, ProviderFactory] = {
    "openai": _openai,
    "anthropic": _anthropic,
    "google": _google,
    "mock": _mock,
}


class Router:
    """Resolves public model names; owns the provider adapters (and so their pools)."""

    def __init__(
        self,
        providers: Iterable[Provider],
        exact: dict[str, Route],
        listed: list[ModelCard],
        prefix_providers: dict[str, Provider] | None = None,
    ) -> None:
        self._providers = list(providers)
        self._exact = exact
        self._listed = listed
        self._cards = {card.id: card for card in listed}
        self._prefix = prefix_providers

    def resolve(self, name: str) -> Route:
        """The route for `name`, or `ModelNotFound` saying what to do about it."""
        route = self._exact.get(name)
        if route is not None:
            return route
        if self._prefix is None:
            raise ModelNotFound(f"The model '{name}' does not exist", param="model")
        kind, upstream = _kind_of(name)
        if kind is None:
            raise ModelNotFound(f"The model '{name}' does not exist", param="model")
        provider = self._prefix.get(kind)
        if provider is None:
            raise ModelNotFound(
                f"The model '{name}' needs the {kind} provider, which is not configured: "
                f"set {KEY_VARIABLES[kind]}",
                param="model",
            )
        return Route(provider, upstream)

    def models(self) -> list[ModelCard]:
        """What `GET /v1/models` lists."""
        return self._listed

    def card(self, name: str) -> ModelCard | None:
        """One listed model, by id."""
        return self._cards.get(name)

    async def aclose(self) -> None:
        """Close every adapter's connection pool."""
        for provider in self._providers:
            await provider.aclose()


def _kind_of(name: str) -> tuple[str | None, str]:
    for prefix, kind in EXPLICIT.items():
        if name.startswith(prefix) and len(name) > len(prefix):
            return kind, name[len(prefix) :]
    if name == "echo-mock":
        return "mock", name
    for prefix, kind in PREFIXES:
        if name.startswith(prefix):
            return kind, name
    return None, name


def build_router(
    settings: Settings,
    declarations: list[ModelDeclaration] | None,
    transport: Transport = None,
) -> Router:
    """The router for these settings: from the config file when given, else by prefix.

    `transport` replaces the network for every upstream client (tests).
    """
    if declarations is not None:
        return _declared_router(settings, declarations, transport)
    providers: dict[str, Provider] = {"mock": _mock(settings, None, None, None)}
    if settings.openai_api_key or settings.openai_base_url:
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        providers["openai"] = _openai(settings, settings.openai_base_url, key, transport)
    if settings.anthropic_api_key:
        key = settings.anthropic_api_key.get_secret_value()
        providers["anthropic"] = _anthropic(settings, None, key, transport)
    if settings.google_api_key:
        key = settings.google_api_key.get_secret_value()
        providers["google"] = _google(settings, None, key, transport)
    listed = [ModelCard(name, kind) for kind in providers for name in CATALOG[kind]]
    return Router(providers.values(), {}, listed, prefix_providers=providers)


def _declared_router(
    settings: Settings, declarations: list[ModelDeclaration], transport: Transport
) -> Router:
    pools: dict[tuple[str, str | None, str | None], Provider] = {}
    exact: dict[str, Route] = {}
    listed: list[ModelCard] = []
    for declaration in declarations:
        key = _declared_key(settings, declaration)
        base_url = declaration.base_url or _default_base_url(settings, declaration.provider)
        pool_key = (declaration.provider, base_url, declaration.api_key_env)
        if pool_key not in pools:
            factory = FACTORIES[declaration.provider]
            pools[pool_key] = factory(settings, base_url, key, transport)
        route = Route(pools[pool_key], declaration.upstream_model)
        for name in (declaration.name, *declaration.aliases):
            exact[name] = route
        listed.append(ModelCard(declaration.name, declaration.provider))
    return Router(pools.values(), exact, listed)


def _default_base_url(settings: Settings, kind: str) -> str | None:
    return {
        "openai": settings.openai_base_url,
        "anthropic": settings.anthropic_base_url,
        "google": settings.google_base_url,
    }.get(kind)


def _declared_key(settings: Settings, declaration: ModelDeclaration) -> str | None:
    if declaration.provider == "mock":
        return None
    variable = declaration.api_key_env or KEY_VARIABLES[declaration.provider]
    if declaration.api_key_env is None:
        secret = {
            "openai": settings.openai_api_key,
            "anthropic": settings.anthropic_api_key,
            "google": settings.google_api_key,
        }[declaration.provider]
        value = secret.get_secret_value() if secret else None
    else:
        value = os.environ.get(variable)
    if not value and (declaration.provider != "openai" or declaration.api_key_env):
        raise ConfigError(
            f"model '{declaration.name}': {variable} is not set "
            f"(the {declaration.provider} provider needs a key)"
        )
    return value or None
