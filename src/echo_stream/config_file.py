"""The optional YAML model file (`ECHO_CONFIG`): an exact list of public models.

    models:
      - name: gpt-4o                 # the name clients use
        provider: openai             # openai | anthropic | google | mock
        model: gpt-4o-2024-08-06     # upstream model (default: name)
        base_url: https://api.openai.com/v1   # default: the provider's *_BASE_URL
        api_key_env: OPENAI_API_KEY  # the variable holding the key (default: the provider's)
        aliases: [gpt4]

A bad file stops start-up with a `ConfigError` naming the file, the entry and the problem.
`provider:` is any name in `providers.registry`. Variables named by `api_key_env` are read like
every setting: the environment first, then `.env`.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from dotenv import dotenv_values
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from echo_stream.providers.registry import SPECS
from echo_stream.settings import Settings


class ConfigError(ValueError):
    """The config file cannot be used; the message says where and why."""


class ModelDeclaration(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    provider: str
    model: str | None = None
    base_url: str | None = None
    api_key_env: str | None = None
    aliases: list[str] = Field(default_factory=list)

    @field_validator("provider")
    @classmethod
    def _known_provider(cls, value: str) -> str:
        if value not in SPECS:
            raise ValueError(f"unknown provider '{value}': one of {', '.join(SPECS)}")
        return value

    @property
    def upstream_model(self) -> str:
        return self.model or self.name


def variable(settings: Settings, name: str) -> str | None:
    """A variable's value as settings see it: a settings field of that name (environment, then
    `.env`), else the environment, else the `.env` file; None when unset or empty."""
    field = name.lower()
    if field in Settings.model_fields:
        value = getattr(settings, field)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        return str(value) if value else None
    if found := os.environ.get(name):
        return found
    env_file = settings.model_config.get("env_file")
    if isinstance(env_file, str) and Path(env_file).is_file():
        return dotenv_values(env_file).get(name) or None
    return None


def load_config(path: str) -> list[ModelDeclaration]:
    """Read and validate the model file at `path`."""
    file = Path(path)
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("models"), list) or not raw["models"]:
        raise ConfigError(f"{path}: expected a top-level 'models:' list with at least one entry")
    unknown = set(raw) - {"models", "keys"}  # keys: per-key limits, read by ops/keys.py
    if unknown:
        raise ConfigError(f"{path}: unknown top-level keys: {', '.join(sorted(unknown))}")
    declarations: list[ModelDeclaration] = []
    seen: dict[str, int] = {}
    for position, entry in enumerate(raw["models"], start=1):
        where = _describe(path, position, entry)
        try:
            declaration = ModelDeclaration.model_validate(entry)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or "entry"
            raise ConfigError(f"{where}: {field}: {first['msg']}") from exc
        for name in (declaration.name, *declaration.aliases):
            if name in seen:
                raise ConfigError(f"{where}: name '{name}' is already used by entry {seen[name]}")
            seen[name] = position
        if declaration.base_url and not declaration.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"{where}: base_url: must start with http:// or https://")
        declarations.append(declaration)
    return declarations


def _describe(path: str, position: int, entry: object) -> str:
    name = entry.get("name") if isinstance(entry, dict) else None
    return f"{path}: models entry {position}" + (f" ('{name}')" if name else "")
