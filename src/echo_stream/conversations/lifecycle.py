"""The conversation store's life inside the app: opened at start-up, retention, closed at exit."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from echo_stream.conversations.db import open_repository
from echo_stream.conversations.retention import retention_loop

if TYPE_CHECKING:
    from echo_stream.state import AppState


@asynccontextmanager
async def conversation_store(state: AppState) -> AsyncIterator[None]:
    """Open (and migrate) the store onto `state` unless one is already there; close it after."""
    opened = state.conversations is None
    if state.conversations is None:
        state.conversations = await open_repository(state.settings)
    retention: asyncio.Task[None] | None = None
    if state.settings.conversation_retention_days > 0:
        days = state.settings.conversation_retention_days
        retention = asyncio.create_task(retention_loop(state.conversations, days))
    try:
        yield
    finally:
        if retention is not None:
            retention.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await retention
        if opened and state.conversations is not None:
            await state.conversations.aclose()
            state.conversations = None
