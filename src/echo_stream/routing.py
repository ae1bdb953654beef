"""Model name -> provider adapter + upstream model, through a table rather than a ladder of ifs.

Without a config file: `name/X` sends X to the provider called `name` (`openai/`, `anthropic/`,
`google/`; `mock/X` keeps its whole name); a built-in catalog name goes to its provider;
otherwise the name's prefix decides (each spec's `prefixes`: `gpt-*`, `o1*`, `o3*`, `o4*`,
`chatgpt-*` -> OpenAI, `claude-*` -> Anthropic, `gemini-*` -> Google). With a config file,
exactly the declared names and aliases route. Every provider fact comes from
`providers.registry`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import httpx

from echo_stream.config_file import ConfigError, ModelDeclaration, variable
from echo_stream.errors import InvalidRequest, ModelNotFound
from echo_stream.providers.base import Provider, ProviderSetup, ProviderSpec
from echo_stream.providers.http import UpstreamOptions, make_client
from echo_stream.providers.registry import SPECS
from echo_stream.providers.transport.base import Limits
from echo_stream.settings import Settings

MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,255}")
"""What a model name may be: 1 to 256 of `A-Z a-z 0-9 . _ : / @ + -`, starting with a letter
or digit, without `..` or `//`. Covers every provider's names (`gpt-4o`, `claude-sonnet-4-5`,
`gemini-2.5-flash`, `openai/gpt-4o`, Ollama's `llama3:8b`, OpenRouter's `meta-llama/x:free`)."""


def check_model_name(name: str) -> None:
    """Refuse a model name outside `MODEL_NAME` with a 400 on `model`."""
    if MODEL_NAME.fullmatch(name) is None or ".." in name or "//" in name:
        shown = name[:80].encode("unicode_escape").decode("ascii")
        raise InvalidRequest(
            f"Invalid model name '{shown}': use 1-256 of A-Z a-z 0-9 . _ : / @ + - "
            "(starting with a letter or digit, no '..' or '//')",
            param="model",
            code="invalid_model_name",
        )


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


def _options(settings: Settings) -> UpstreamOptions:
    return UpstreamOptions(
        connect_timeout=settings.upstream_connect_timeout,
        read_timeout=settings.upstream_read_timeout,
        max_retries=settings.upstream_max_retries,
        max_connections=settings.upstream_max_connections,
        idle_timeout=settings.upstream_idle_timeout,
        limits=Limits(
            max_head_bytes=settings.upstream_max_head_bytes,
            max_event_bytes=settings.upstream_max_event_bytes,
            max_body_bytes=settings.upstream_max_body_bytes,
        ),
    )


def _create(
    spec: ProviderSpec,
    settings: Settings,
    base_url: str | None,
    key: str | None,
    transport: Transport,
) -> Provider:
    options = _options(settings)
    client = make_client(options, transport) if spec.uses_http else None
    return spec.factory(ProviderSetup(settings, base_url, key, options, client))


class Router:
    """Resolves public model names; owns the provider adapters (and so their pools)."""

    def __init__(
        self,
        providers: Iterable[Provider],
        exact: dict[str, Route],
        listed: list[ModelCard],
        prefix_providers: dict[str, Provider] | None = None,
    ) -> None:
        """`exact` names first; then, without a config file, by prefix to `prefix_providers`."""
        self._providers = list(providers)
        self._exact = exact
        self._listed = listed
        self._cards = {card.id: card for card in listed}
        self._prefix = prefix_providers
        self._resolved: dict[str, Route] = {}

    def resolve(self, name: str) -> Route:
        """The route for `name`; `InvalidRequest` for a name outside `MODEL_NAME`, or
        `ModelNotFound` saying what to do about it."""
        route = self._resolved.get(name)
        if route is not None:
            return route
        route = self._resolve(name)
        # Names come from clients: a bounded memo of the ones that routed, emptied when full.
        if len(self._resolved) >= _RESOLVED_CACHE_SIZE:
            self._resolved.clear()
        self._resolved[name] = route
        return route

    def _resolve(self, name: str) -> Route:
        check_model_name(name)
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
                f"set {SPECS[kind].key_variables[0]}",
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


_RESOLVED_CACHE_SIZE = 1024


def _kind_of(name: str) -> tuple[str | None, str]:
    for kind, spec in SPECS.items():
        prefix = kind + "/"
        if spec.strip_name_prefix and name.startswith(prefix) and len(name) > len(prefix):
            return kind, name[len(prefix) :]
    for kind, spec in SPECS.items():
        if name in spec.catalog:
            return kind, name
    for kind, spec in SPECS.items():
        if name.startswith(spec.prefixes):
            return kind, name
    return None, name


def _key(settings: Settings, spec: ProviderSpec) -> str | None:
    for name in spec.key_variables:
        if value := variable(settings, name):
            return value
    return None


def _base_url(settings: Settings, spec: ProviderSpec) -> str | None:
    return variable(settings, spec.base_url_variable) if spec.base_url_variable else None


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
    providers: dict[str, Provider] = {}
    for kind, spec in SPECS.items():
        key, base_url = _key(settings, spec), _base_url(settings, spec)
        enabled = not spec.key_variables or key or (not spec.key_required and base_url)
        if enabled:
            providers[kind] = _create(spec, settings, base_url, key, transport)
    listed = [ModelCard(name, kind) for kind in providers for name in SPECS[kind].catalog]
    return Router(providers.values(), {}, listed, prefix_providers=providers)


def _declared_router(
    settings: Settings, declarations: list[ModelDeclaration], transport: Transport
) -> Router:
    pools: dict[tuple[str, str | None, str | None], Provider] = {}
    exact: dict[str, Route] = {}
    listed: list[ModelCard] = []
    for declaration in declarations:
        spec = SPECS[declaration.provider]
        key = _declared_key(settings, spec, declaration)
        base_url = declaration.base_url or _base_url(settings, spec)
        pool_key = (declaration.provider, base_url, declaration.api_key_env)
        if pool_key not in pools:
            pools[pool_key] = _create(spec, settings, base_url, key, transport)
        route = Route(pools[pool_key], declaration.upstream_model)
        for name in (declaration.name, *declaration.aliases):
            exact[name] = route
        listed.append(ModelCard(declaration.name, declaration.provider))
    return Router(pools.values(), exact, listed)


def _declared_key(
    settings: Settings, spec: ProviderSpec, declaration: ModelDeclaration
) -> str | None:
    if not spec.key_variables and declaration.api_key_env is None:
        return None
    if declaration.api_key_env is not None:
        name, value = declaration.api_key_env, variable(settings, declaration.api_key_env)
    else:
        name, value = spec.key_variables[0], _key(settings, spec)
    if not value and (spec.key_required or declaration.api_key_env):
        raise ConfigError(
            f"model '{declaration.name}': {name} is not set "
            f"(the {declaration.provider} provider needs a key)"
        )
    return value or None
