"""Built-in model catalog, listed by `GET /v1/models` when no config file declares models.

Each provider's list lives in its spec (`providers.registry`); this is the same table by kind.
Only providers with a key (or, for OpenAI-compatible upstreams, a base URL) are listed, so a
LibreChat model picker shows what will actually answer. Any other name with a known prefix
still routes (see each spec's `prefixes`); this list is what the picker offers.
"""

from __future__ import annotations

from echo_stream.providers.registry import SPECS

CATALOG: dict[str, tuple[str, ...]] = {name: spec.catalog for name, spec in SPECS.items()}
