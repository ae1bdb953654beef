"""The provider registry: one `ProviderSpec` per provider, each defined beside its adapter.

Adding a provider is one module (the adapter and its `SPEC`) plus one entry here; routing, the
model list, key look-up and the config file's `provider:` values all read this table.
"""

from __future__ import annotations

from echo_stream.providers import anthropic, google, mock, openai
from echo_stream.providers.base import ProviderSpec

SPECS: dict[str, ProviderSpec] = {
    spec.name: spec for spec in (mock.SPEC, openai.SPEC, anthropic.SPEC, google.SPEC)
}
"""Every provider by name, in routing order (the first matching prefix wins) and in the order
`GET /v1/models` lists them: the offline `echo-mock` first, so a front end that picks the first
model works with no key."""
