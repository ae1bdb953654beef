"""`/ready` checks the conversation store besides Redis: 200 while it answers, 503 naming it."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from echo_stream.app import build_state, create_app
from tests.conftest import make_settings


def test_ready_names_the_database_when_the_conversation_store_is_down(
    server: Callable[..., str],
) -> None:
    settings = make_settings()
    state = build_state(settings)
    base = server(create_app(settings, state))
    ready = httpx.get(base + "/ready", timeout=10)
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["database"] == "ok"

    async def refuse() -> None:  # what a dead database does to a round trip
        raise OSError("connection refused")

    assert state.conversations is not None
    state.conversations.ping = refuse  # type: ignore[method-assign]
    down = httpx.get(base + "/ready", timeout=10)
    assert down.status_code == 503
    assert "database" in down.json()["down"]
