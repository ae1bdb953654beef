"""Repository fixtures on both backends."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from echo_stream.conversations.db import open_repository
from echo_stream.conversations.repository import ConversationRepository
from tests.conftest import make_settings
from tests.databases import database_url  # noqa: F401  (fixture)


@pytest.fixture
async def repository(database_url: str) -> AsyncIterator[ConversationRepository]:  # noqa: F811
    """A migrated store on a fresh database."""
    repo = await open_repository(make_settings(database_url=database_url))
    yield repo
    await repo.aclose()
