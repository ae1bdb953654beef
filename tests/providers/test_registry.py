"""One place per provider: the registry drives routing, the model list, keys and the config
file; a new provider is its module plus one entry."""

from __future__ import annotations

from pathlib import Path

import pytest

from echo_stream.config_file import ConfigError, load_config, variable
from echo_stream.providers import registry
from echo_stream.providers.base import Provider, ProviderSetup, ProviderSpec
from echo_stream.providers.mock import MockProvider
from echo_stream.providers.openai import OpenAIProvider
from echo_stream.routing import build_router
from tests.conftest import make_settings


def test_every_spec_is_consistent() -> None:
    for name, spec in registry.SPECS.items():
        assert spec.name == name
        assert all(spec.prefixes) and all(spec.catalog)
        if spec.uses_http:
            assert spec.default_base_url and spec.default_base_url.startswith("https://")
            assert spec.key_variables


class _Echo(MockProvider):
    name = "acme"


def _acme(setup: ProviderSetup) -> Provider:
    assert setup.api_key == "acme-key" and setup.client is not None
    return _Echo(0)


ACME = ProviderSpec(
    name="acme",
    factory=_acme,
    key_variables=("ACME_API_KEY",),
    default_base_url="https://api.acme.example",
    prefixes=("acme-",),
    catalog=("acme-large",),
)


def test_a_new_provider_needs_only_its_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.SPECS, "acme", ACME)
    assert "acme-large" not in {card.id for card in build_router(make_settings(), None).models()}
    monkeypatch.setenv("ACME_API_KEY", "acme-key")
    router = build_router(make_settings(), None)
    assert ("acme-large", "acme") in {(card.id, card.owned_by) for card in router.models()}
    assert router.resolve("acme-mini").provider.name == "acme"
    assert router.resolve("acme/whatever").upstream_model == "whatever"


def test_a_new_provider_is_accepted_by_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "models.yaml"
    path.write_text("models:\n  - name: a\n    provider: acme\n")
    with pytest.raises(ConfigError, match="unknown provider 'acme'"):
        load_config(str(path))
    monkeypatch.setitem(registry.SPECS, "acme", ACME)
    assert load_config(str(path))[0].provider == "acme"


def test_api_key_env_is_read_from_dotenv_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GROQ_KEY", raising=False)
    (tmp_path / ".env").write_text("GROQ_KEY=gq-from-dotenv\n")
    config = tmp_path / "models.yaml"
    config.write_text(
        "models:\n  - name: fast\n    provider: openai\n"
        "    base_url: https://api.groq.example/openai/v1\n    api_key_env: GROQ_KEY\n"
    )
    settings = make_settings()
    assert variable(settings, "GROQ_KEY") == "gq-from-dotenv"
    router = build_router(settings, load_config(str(config)))
    provider = router.resolve("fast").provider
    assert isinstance(provider, OpenAIProvider)
    assert provider._headers["authorization"] == "Bearer gq-from-dotenv"
    monkeypatch.setenv("GROQ_KEY", "gq-from-env")
    assert variable(settings, "GROQ_KEY") == "gq-from-env"  # the environment wins, as for settings
