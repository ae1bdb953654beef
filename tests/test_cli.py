"""The `echo-stream` command line: flags, `--check`, the banner and the open-network warning."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from echo_stream import __version__, cli
from tests.conftest import make_settings


def _run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    keep = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    return subprocess.run(
        [sys.executable, "-m", "echo_stream", *args],
        env={**keep, "LOG_LEVEL": "warning", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_version_and_help() -> None:
    assert _run("--version").stdout.strip() == f"echo-stream {__version__}"
    help_text = _run("--help").stdout
    for flag in ("--host", "--port", "--workers", "--config", "--check"):
        assert flag in help_text


def test_unknown_flag_is_an_error() -> None:
    result = _run("--prot", "9000")
    assert result.returncode == 2
    assert "unrecognized arguments: --prot" in result.stderr


def test_check_validates_and_lists_routes(tmp_path: Path) -> None:
    config = tmp_path / "echo.yaml"
    config.write_text("models:\n  - {name: fast, provider: mock, model: echo-mock}\n")
    result = _run("--check", "--config", str(config), "--port", "9123")
    assert result.returncode == 0, result.stderr
    assert "fast -> mock:echo-mock" in result.stdout
    assert "POST /v1/chat/completions" in result.stdout and "GET,HEAD /ready" in result.stdout
    assert "127.0.0.1:9123" in result.stdout
    assert result.stdout.strip().endswith("configuration ok")


def test_check_refuses_a_bad_keys_section(tmp_path: Path) -> None:
    config = tmp_path / "echo.yaml"
    config.write_text("keys:\n  - {name: a, key_env: NOT_SET_ANYWHERE, rpm: 5}\n")
    result = _run("--check", "--config", str(config))
    assert result.returncode == 2
    assert "keys entry 1 ('a'): key_env: the variable NOT_SET_ANYWHERE is not set" in result.stderr


def test_a_keys_only_config_keeps_the_default_models(tmp_path: Path) -> None:
    config = tmp_path / "echo.yaml"
    config.write_text("keys:\n  - {name: all, default: true, rpm: 5}\n")
    result = _run("--check", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert "echo-mock -> mock:echo-mock" in result.stdout and "per-key limits on" in result.stdout


def test_banner_says_what_runs() -> None:
    from echo_stream.app import build_state

    settings = make_settings(echo_api_keys="k1", ad_injection_rate=0.3, port=8123)
    text = cli.banner(settings, build_state(settings))
    assert f"Echo Stream {__version__}" in text
    assert "openai, anthropic, google" in text
    assert "rate 0.3" in text and "memory" in text and "127.0.0.1:8123" in text
    assert "curl http://127.0.0.1:8123/v1/chat/completions" in text
    assert "Authorization: Bearer $KEY" in text


@pytest.mark.parametrize(
    ("overrides", "warns"),
    [
        ({"host": "0.0.0.0"}, True),
        ({"host": "0.0.0.0", "echo_api_keys": "k"}, False),
        ({"host": "127.0.0.1"}, False),
        (
            {
                "host": "0.0.0.0",
                "openai_api_key": None,
                "anthropic_api_key": None,
                "google_api_key": None,
            },
            False,
        ),
    ],
)
def test_open_network_warning(overrides: dict[str, object], warns: bool) -> None:
    warning = cli.open_network_warning(make_settings(**overrides))
    assert (warning is not None) is warns
    if warning:
        assert "ECHO_API_KEYS" in warning


def test_start_prints_banner_and_open_network_warning(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import logging

    import uvicorn

    from echo_stream.__main__ import main
    from echo_stream.http_protocol import CoalescingHttpToolsProtocol

    calls: list[dict[str, object]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: calls.append(kwargs))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-warning-key")
    monkeypatch.setenv("LOG_FORMAT", "text")
    try:
        main(["--host", "0.0.0.0", "--port", "8765", "--workers", "1"])
    finally:
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "echo_stream"):
            logging.getLogger(name).handlers = []
            logging.getLogger(name).propagate = True
        for name in ("HOST", "PORT", "WORKERS"):
            os.environ.pop(name, None)
    err = capsys.readouterr().err
    assert "Echo Stream" in err and "0.0.0.0:8765" in err
    assert "WARNING" in err and "anyone who can reach this port" in err
    assert "sk-test-warning-key" not in err
    (kwargs,) = calls
    assert kwargs["host"] == "0.0.0.0" and kwargs["port"] == 8765
    assert kwargs["timeout_graceful_shutdown"] == 30 and kwargs["access_log"] is False
    assert kwargs["http"] is CoalescingHttpToolsProtocol  # heads leave with their first bytes


def test_safe_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    from echo_stream.settings import Settings

    for name in ("HOST", "LOG_FORMAT", "METRICS_OPEN", "SHUTDOWN_GRACE_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.ad_injection_rate == 0.3
    assert settings.host == "127.0.0.1"
    assert settings.shutdown_grace_seconds == 30
    assert settings.log_format == "text" and not settings.metrics_open
