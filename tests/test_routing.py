"""Model names to providers: prefixes, explicit names, the catalog, and the config file."""

from __future__ import annotations

from pathlib import Path

import pytest

from echo_stream.app import build_state
from echo_stream.config_file import ConfigError, load_config
from echo_stream.errors import ModelNotFound
from echo_stream.routing import build_router
from tests.conftest import make_settings


@pytest.mark.parametrize(
    ("name", "provider", "upstream"),
    [
        ("gpt-4o", "openai", "gpt-4o"),
        ("gpt-4.1-mini", "openai", "gpt-4.1-mini"),
        ("o1", "openai", "o1"),
        ("o3-mini", "openai", "o3-mini"),
        ("o4-mini", "openai", "o4-mini"),
        ("chatgpt-4o-latest", "openai", "chatgpt-4o-latest"),
        ("claude-3-5-sonnet-20241022", "anthropic", "claude-3-5-sonnet-20241022"),
        ("gemini-2.0-flash-exp", "google", "gemini-2.0-flash-exp"),
        ("openai/my-finetune", "openai", "my-finetune"),
        ("anthropic/claude-x", "anthropic", "claude-x"),
        ("google/gemma-3", "google", "gemma-3"),
        ("echo-mock", "mock", "echo-mock"),
        ("mock/fast", "mock", "mock/fast"),
    ],
)
def test_prefix_routing(name: str, provider: str, upstream: str) -> None:
    route = build_router(make_settings(), None).resolve(name)
    assert route.provider.name == provider
    assert route.upstream_model == upstream


@pytest.mark.parametrize("name", ["llama-3", "openai/", "mistral-large"])
def test_unknown_names_are_not_found(name: str) -> None:
    with pytest.raises(ModelNotFound):
        build_router(make_settings(), None).resolve(name)


def test_catalog_lists_only_providers_with_keys() -> None:
    keyless = build_router(
        make_settings(openai_api_key=None, anthropic_api_key=None, google_api_key=None), None
    )
    assert [card.id for card in keyless.models()] == ["echo-mock"]
    only_google = build_router(make_settings(openai_api_key=None, anthropic_api_key=None), None)
    ids = {card.id for card in only_google.models()}
    assert {"echo-mock", "gemini-2.0-flash-exp", "gemini-1.5-pro-latest", "gemini-2.5-pro"} <= ids
    assert not any(i.startswith(("gpt", "claude")) for i in ids)
    everything = {card.id for card in build_router(make_settings(), None).models()}
    assert {
        "gpt-4o",
        "gpt-4o-mini",
        "o1",
        "gpt-4.1",
        "claude-3-5-sonnet-20241022",
        "claude-3-opus-20240229",
        "claude-sonnet-4-20250514",
        "gemini-2.0-flash",
        "gemini-2.5-flash",
    } <= everything


def test_openai_compatible_base_url_needs_no_key() -> None:
    router = build_router(
        make_settings(openai_api_key=None, openai_base_url="http://localhost:11434/v1"), None
    )
    assert router.resolve("gpt-oss").provider.name == "openai"


def _write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "echo.yaml"
    path.write_text(text)
    return str(path)


def test_config_file_declares_exactly_its_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GROQ_KEY", "gq-test")
    path = _write(
        tmp_path,
        """
models:
  - name: fast
    provider: openai
    model: llama-3.1-8b-instant
    base_url: https://api.groq.example/openai/v1
    api_key_env: GROQ_KEY
    aliases: [quick]
  - name: smart
    provider: anthropic
    model: claude-sonnet-4-20250514
  - name: demo
    provider: mock
""",
    )
    state = build_state(make_settings(echo_config=path))
    assert [card.id for card in state.router.models()] == ["fast", "smart", "demo"]
    assert state.router.resolve("quick").upstream_model == "llama-3.1-8b-instant"
    assert state.router.resolve("smart").provider.name == "anthropic"
    with pytest.raises(ModelNotFound):
        state.router.resolve("gpt-4o")  # prefixes do not apply when models are declared


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("models: []", "expected a top-level 'models:' list"),
        ("models:\n  - name: a\n    provider: azure\n", "models entry 1 ('a'): provider"),
        (
            "models:\n  - name: a\n    provider: mock\n  - name: a\n    provider: mock\n",
            "entry 2 ('a'): name 'a' is already used by entry 1",
        ),
        ("models:\n  - provider: mock\n", "models entry 1: name"),
        ("models:\n  - name: a\n    provider: mock\n    colour: red\n", "colour"),
        (
            "models:\n  - name: a\n    provider: openai\n    base_url: ftp://x\n",
            "base_url: must start with http",
        ),
        ("models: [unclosed", "not valid YAML"),
    ],
)
def test_bad_config_file_names_file_entry_and_problem(
    tmp_path: Path, text: str, message: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(path)
    assert message in str(caught.value)


def test_missing_key_variable_stops_start_up(tmp_path: Path) -> None:
    path = _write(
        tmp_path, "models:\n  - name: smart\n    provider: anthropic\n    api_key_env: NOPE_KEY\n"
    )
    with pytest.raises(ConfigError, match=r"echo.yaml: model 'smart': NOPE_KEY is not set"):
        build_state(make_settings(echo_config=path))


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(str(tmp_path / "absent.yaml"))
