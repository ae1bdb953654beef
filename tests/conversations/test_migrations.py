"""Migrations: the packaged scripts build exactly the models' schema, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect

from echo_stream.conversations.db import HEAD_REVISION, create_engine, database_url, migrate
from echo_stream.conversations.models import Base
from echo_stream.conversations.repository import ConversationRepository
from tests.conftest import make_settings


def _drift(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_migrations_match_the_models(repository: ConversationRepository) -> None:
    async with repository.engine.connect() as conn:
        assert await conn.run_sync(_drift) == []


async def test_migrate_is_idempotent_and_creates_the_listing_indexes(
    repository: ConversationRepository,
) -> None:
    await migrate(repository.engine)  # a second replica starting: nothing to do, no error
    async with repository.engine.connect() as conn:
        indexes = await conn.run_sync(
            lambda sync: {i["name"] for i in inspect(sync).get_indexes("conversations")}
        )
        version = (await conn.exec_driver_sql("SELECT version_num FROM alembic_version")).scalar()
    assert "ix_conversations_owner_updated_at_id" in indexes
    assert version == HEAD_REVISION


def test_default_url_is_a_sqlite_file_under_the_data_dir(tmp_path: object) -> None:
    url = database_url(make_settings(data_dir="/srv/echo"))
    assert url == "sqlite+aiosqlite:////srv/echo/conversations.db"
    assert database_url(make_settings(database_url="postgresql://u@h/db")).startswith(
        "postgresql+asyncpg://"
    )


async def test_engine_creates_the_data_directory(tmp_path: object) -> None:
    from pathlib import Path

    target = Path(str(tmp_path)) / "nested" / "dir" / "c.db"
    engine = create_engine(f"sqlite+aiosqlite:///{target}")
    try:
        await migrate(engine)
    finally:
        await engine.dispose()
    assert target.exists()


def test_the_head_constant_is_alembics_head() -> None:
    from alembic.script import ScriptDirectory

    from echo_stream.conversations.db import alembic_config

    assert ScriptDirectory.from_config(alembic_config()).get_current_head() == HEAD_REVISION


async def test_a_database_at_head_starts_without_running_alembic(
    repository: ConversationRepository, monkeypatch: object
) -> None:
    import alembic.command

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("alembic ran on a database already at head")

    monkeypatch.setattr(alembic.command, "upgrade", refuse)  # type: ignore[attr-defined]
    await migrate(repository.engine)  # at head already (the fixture migrated it)


async def test_a_fresh_database_is_migrated_from_nothing(tmp_path: object) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/fresh.db")
    try:
        await migrate(engine)
        async with engine.connect() as conn:
            version = (
                await conn.exec_driver_sql("SELECT version_num FROM alembic_version")
            ).scalar()
        assert version == HEAD_REVISION
    finally:
        await engine.dispose()
