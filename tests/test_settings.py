"""Settings: every variable documented, the example file loads as the defaults, secrets hidden."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from echo_stream.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def _documented() -> dict[str, str]:
    lines = (ROOT / ".env.example").read_text().splitlines()
    pairs = [re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line) for line in lines]
    return {m.group(1): m.group(2) for m in pairs if m}


def test_every_setting_is_in_env_example() -> None:
    names = {name.upper() for name in Settings.model_fields}
    assert names <= set(_documented()), names - set(_documented())
    assert set(_documented()) <= names, set(_documented()) - names


def test_env_example_as_is_gives_the_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text((ROOT / ".env.example").read_text())
    loaded = Settings()
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    assert loaded.model_dump() == defaults.model_dump()
    assert loaded.openai_api_key is None and loaded.ad_seed is None


def test_gemini_key_alias_and_secret_masking(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "g-secret-value")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.google_api_key is not None
    assert settings.google_api_key.get_secret_value() == "g-secret-value"
    assert "g-secret-value" not in repr(settings)


def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AD_INJECTION_RATE", "1.5")
    with pytest.raises(ValueError, match="ad_injection_rate"):
        Settings(_env_file=None)  # type: ignore[call-arg]
