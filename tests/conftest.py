"""Shared fixtures: settings isolated from the machine's environment, and app builders."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.types import ASGIApp

from echo_stream.app import build_state, create_app
from echo_stream.settings import Settings
from tests.browser import chromium, page  # noqa: F401  (fixtures)
from tests.live import serve
from tests.upstreams import FakeUpstream, SocketUpstream

_ENV = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "GOOGLE_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_BASE_URL",
    "ECHO_CONFIG",
    "ECHO_API_KEYS",
    "ECHO_ADMIN_KEYS",
    "ADS_FILE",
    "REDIS_URL",
    "AD_INJECTION_RATE",
    "AD_FREE_KEYS",
    "DATABASE_URL",
    # The upstream client reads these itself: tests talk to loopback upstreams directly.
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Browser tests run last: sync Playwright keeps an event loop running in the main thread
    for the rest of the session, after which `asyncio.run` and async tests cannot run."""
    browser = [i for i in items if {"page", "chromium"} & set(getattr(i, "fixturenames", ()))]
    if browser:
        others = [i for i in items if i not in browser]
        items[:] = others + browser


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests never see the developer's provider keys or settings, nor write to ./data."""
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))


def make_settings(**overrides: Any) -> Settings:
    """Settings for a test: offline defaults, no ads unless asked, keys for every provider."""
    values: dict[str, Any] = {
        "openai_api_key": "sk-test",
        "anthropic_api_key": "ak-test",
        "google_api_key": "gk-test",
        "mock_delay_ms": 0,
        "ad_injection_rate": 0.0,
        "upstream_max_retries": 0,
        "gc_tuning": False,  # a process-wide setting: tests/ops/test_gc_tuning.py checks it
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def make_app(upstream: FakeUpstream | SocketUpstream | None = None, **overrides: Any) -> ASGIApp:
    """The real app, with `upstream` standing in for every provider's network."""
    transport = None
    if isinstance(upstream, SocketUpstream):
        base = upstream.base_url
        overrides = {
            "openai_base_url": base + "/v1",
            "anthropic_base_url": base,
            "google_base_url": base,
            **overrides,
        }
    elif upstream is not None:
        transport = upstream.transport
    settings = make_settings(**overrides)
    return create_app(settings, build_state(settings, transport))


@pytest.fixture
def live() -> Callable[..., Any]:
    """Start a live server for an app: `with live(app) as base_url: ...`."""
    return serve


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[Callable[..., str]]:
    """Start live servers on demand; all are stopped at the end of the test."""
    stack: list[Any] = []

    def start(app: ASGIApp) -> str:
        manager = serve(app)
        live_server = manager.__enter__()
        stack.append(manager)
        return live_server.url

    yield start
    for manager in reversed(stack):
        manager.__exit__(None, None, None)
