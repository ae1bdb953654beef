"""The `keys:` section of the config file (`ECHO_CONFIG`): limits per client key.

    keys:
      - name: team-a
        key_env: TEAM_A_KEY     # the variable holding this client key (it must also be in
                                # ECHO_API_KEYS); or key_id: key_0123abcd4567 as the logs show it
        rpm: 60                 # requests per minute for the key (optional)
        tpm: 100000             # tokens (prompt + completion) per minute (optional)
        user_rpm: 10            # the same, per `user` field within the key (optional)
        user_tpm: 20000
      - name: everyone-else
        default: true           # any other key, and requests without one
        rpm: 600

Secrets stay in the environment: an entry names the variable that holds its key, or the key's
short hash. A bad section stops start-up naming the entry and the problem.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from echo_stream.config_file import ConfigError
from echo_stream.ops.record import key_id


class KeyLimits(BaseModel):
    """The limits of one client key (None: unlimited)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    key_env: str | None = None
    key_id: str | None = None
    default: bool = False
    rpm: int | None = Field(None, ge=1)
    tpm: int | None = Field(None, ge=1)
    user_rpm: int | None = Field(None, ge=1)
    user_tpm: int | None = Field(None, ge=1)


class KeyTable:
    """Key id -> limits, with an optional default entry for every other key."""

    def __init__(self, by_id: dict[str, KeyLimits], default: KeyLimits | None) -> None:
        self.by_id = by_id
        self.default = default

    def lookup(self, client_key_id: str | None) -> KeyLimits | None:
        """The limits for a key id (None for a request without a key), if any apply."""
        if client_key_id is not None and client_key_id in self.by_id:
            return self.by_id[client_key_id]
        return self.default

    def names(self) -> dict[str, str]:
        """Key id -> the entry's name, for usage reports."""
        return {kid: entry.name for kid, entry in self.by_id.items()}


def read_sections(path: str) -> dict[str, Any]:
    """The config file's top-level mapping (empty when it is not a mapping)."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    return raw if isinstance(raw, dict) else {}


def load_keys(path: str, environ: dict[str, str] | None = None) -> KeyTable | None:
    """The `keys:` section of the file at `path`, or None when it has none."""
    env = os.environ if environ is None else environ
    section = read_sections(path).get("keys")
    if section is None:
        return None
    if not isinstance(section, list):
        raise ConfigError(f"{path}: 'keys:' must be a list of entries")
    by_id: dict[str, KeyLimits] = {}
    default: KeyLimits | None = None
    for position, entry in enumerate(section, start=1):
        where = f"{path}: keys entry {position}"
        try:
            limits = KeyLimits.model_validate(entry)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or "entry"
            raise ConfigError(f"{where}: {field}: {first['msg']}") from exc
        where += f" ('{limits.name}')"
        if limits.default:
            if default is not None or limits.key_env or limits.key_id:
                raise ConfigError(f"{where}: one default entry, with no key_env or key_id")
            default = limits
            continue
        kid = _entry_key_id(limits, env, where)
        if kid in by_id:
            raise ConfigError(f"{where}: the same key as entry '{by_id[kid].name}'")
        by_id[kid] = limits
    return KeyTable(by_id, default)


def _entry_key_id(limits: KeyLimits, env: Any, where: str) -> str:
    if bool(limits.key_env) == bool(limits.key_id):
        raise ConfigError(f"{where}: give exactly one of key_env or key_id (or default: true)")
    if limits.key_id:
        return limits.key_id
    value = env.get(limits.key_env or "")
    if not value:
        raise ConfigError(f"{where}: key_env: the variable {limits.key_env} is not set")
    return key_id(value)
