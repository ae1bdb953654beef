"""The store inside the app: opened by the lifespan, retention at start-up, the migrate command."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx

from echo_stream.conversations.db import open_repository
from echo_stream.conversations.repository import TurnStart, new_id
from echo_stream.conversations.retention import DAY
from tests.conftest import make_app, make_settings
from tests.databases import database_url  # noqa: F401  (fixture)


async def _seed(url: str, updated_at: float) -> str:
    repository = await open_repository(make_settings(database_url=url))
    try:
        turn = TurnStart("anonymous", new_id("conv"), True, "old", "old", "echo-mock", "mock")
        await repository.start_turn(turn, updated_at)
        return turn.conversation_id
    finally:
        await repository.aclose()


def test_retention_deletes_old_conversations_at_start_up(
    server: Callable[..., str],
    database_url: str,  # noqa: F811
) -> None:
    import time

    old = asyncio.run(_seed(database_url, time.time() - 40 * DAY))
    recent = asyncio.run(_seed(database_url, time.time() - 1 * DAY))
    base = server(make_app(database_url=database_url, conversation_retention_days=30))
    deadline = time.monotonic() + 30
    while httpx.get(f"{base}/v1/conversations/{old}", timeout=30).status_code != 404:
        assert time.monotonic() < deadline, "the old conversation was not deleted"
        time.sleep(0.05)
    assert httpx.get(f"{base}/v1/conversations/{recent}", timeout=30).status_code == 200


def test_migrate_command_creates_the_schema(tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'cmd.db'}"}
    done = subprocess.run(
        [sys.executable, "-m", "echo_stream.conversations", "migrate"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "cmd.db").exists()
    wrong = subprocess.run([sys.executable, "-m", "echo_stream.conversations"], env=env,
                           capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert wrong.returncode == 2 and "usage" in wrong.stderr
