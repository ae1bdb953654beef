"""`GET /v1/models`, `GET /v1/models/{id}` and `/health`."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import openai
import pytest

from tests.conftest import make_app


def test_models_list_with_the_sdk(server: Callable[..., str]) -> None:
    client = openai.OpenAI(base_url=server(make_app()) + "/v1", api_key="x", max_retries=0)
    models = {model.id: model for model in client.models.list()}
    assert {"echo-mock", "gpt-4o", "claude-3-opus-20240229", "gemini-1.5-pro-latest"} <= set(models)
    assert models["gpt-4o"].owned_by == "openai"
    assert client.models.retrieve("gemini-2.5-pro").owned_by == "google"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nope")


def test_health_calls_no_provider(server: Callable[..., str]) -> None:
    response = httpx.get(server(make_app()) + "/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_sse_headers_and_framing(server: Callable[..., str]) -> None:
    base = server(make_app())
    with httpx.stream(
        "POST",
        base + "/v1/chat/completions",
        json={"model": "echo-mock", "messages": [{"role": "user", "content": "x"}], "stream": True},
    ) as response:
        body = response.read().decode()
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    assert "event:" not in body
    events = body.split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    assert all(event.startswith("data: ") for event in events[:-1])


def test_cors_when_origins_are_allowed(server: Callable[..., str]) -> None:
    base = server(make_app(allowed_origins="https://chat.example"))
    response = httpx.options(
        base + "/v1/chat/completions",
        headers={"Origin": "https://chat.example", "Access-Control-Request-Method": "POST"},
    )
    assert response.headers["access-control-allow-origin"] == "https://chat.example"
    other = httpx.get(base + "/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
