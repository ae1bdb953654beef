"""Databases for persistence tests: a fresh SQLite file, or a uniquely named PostgreSQL database.

`database_url` is parametrised over both backends. The PostgreSQL case creates its own database
on the local server (127.0.0.1:5432, user postgres) and drops it afterwards, so parallel runs
never meet; it skips with the reason when the server is absent, and fails under CI (CI=true),
which must exercise the store that replicas share.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
PG_UNREACHABLE = "PostgreSQL is not answering on 127.0.0.1:5432"


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


async def _admin(statement: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN, timeout=3)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def create_pg_database() -> str:
    """A new, empty database on the local server; its SQLAlchemy URL."""
    name = f"echo_test_{uuid.uuid4().hex[:16]}"
    try:
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        if in_ci():
            pytest.fail(f"{PG_UNREACHABLE} ({exc}); CI must run the PostgreSQL tests")
        pytest.skip(f"{PG_UNREACHABLE}: {exc}")
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


def drop_pg_database(url: str) -> None:
    """Drop a database made by `create_pg_database` (even with connections still open)."""
    name = url.rsplit("/", 1)[1]
    asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """`DATABASE_URL` for one test: SQLite in tmp_path, or a throwaway PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'conversations.db'}"
        return
    url = create_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(url)
