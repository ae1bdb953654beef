"""The database: an async engine from `DATABASE_URL` (or the embedded SQLite file) and migrations.

SQLite (aiosqlite) is the default and needs nothing installed: a file under `DATA_DIR`, in WAL
mode with `synchronous=NORMAL`, so a commit costs no fsync on the streaming path. PostgreSQL
(asyncpg) is for several replicas sharing one history. Migrations are Alembic scripts shipped
inside the package; `migrate` applies them under an advisory lock on PostgreSQL, so replicas
starting together do not race.
"""

from __future__ import annotations

import asyncio
import fcntl
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, event, text
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from echo_stream.conversations.repository import ConversationRepository
from echo_stream.settings import Settings

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
_LOCK_ID = 0x6563686F  # "echo": one advisory lock id for every replica's migration run


def database_url(settings: Settings) -> str:
    """The async SQLAlchemy URL: `DATABASE_URL` with its async driver, or the SQLite file."""
    if not settings.database_url:
        return f"sqlite+aiosqlite:///{Path(settings.data_dir).resolve() / 'conversations.db'}"
    url = make_url(settings.database_url)
    if url.drivername in ("postgres", "postgresql", "postgresql+psycopg2", "postgresql+psycopg"):
        url = url.set(drivername="postgresql+asyncpg")
    elif url.drivername == "sqlite":
        url = url.set(drivername="sqlite+aiosqlite")
    return url.render_as_string(hide_password=False)


def _sqlite_pragmas(
    dbapi_connection: Any, record: ConnectionPoolEntry, busy_ms: int = 5000
) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in (
        "journal_mode=WAL",
        "synchronous=NORMAL",
        "foreign_keys=ON",
        f"busy_timeout={busy_ms}",
        # The connection that writes on the event loop never checkpoints (a checkpoint syncs
        # the file); the writer's thread does that for it (see `writer`).
        *(["wal_autocheckpoint=0"] if busy_ms == 0 else []),
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def create_engine(url: str) -> AsyncEngine:
    """An engine for `url`; for a SQLite file, its directory is created and pragmas set."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


def alembic_config(connection: Connection | None = None, url: str | None = None) -> Config:
    """Alembic's configuration for the packaged scripts (no alembic.ini needed)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if url is not None:
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["connection"] = connection
    return config


HEAD_REVISION = "0002"
"""The newest migration's revision (a test checks it against Alembic's own head)."""


def _at_head(connection: Connection) -> bool:
    """True when the schema is already at `HEAD_REVISION`: Alembic need not even be imported
    (it costs ~10 MB a worker), which is every start but the first after an upgrade."""
    try:
        with connection.begin_nested():
            found = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    except DBAPIError:
        return False  # no version table yet: a fresh database
    return [row[0] for row in found] == [HEAD_REVISION]


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _LOCK_ID})
    if _at_head(connection):
        return
    from alembic import command

    command.upgrade(alembic_config(connection), "head")


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision (idempotent; safe from several processes)."""
    database = engine.url.database
    if engine.dialect.name == "sqlite" and database and database != ":memory:":
        # Workers sharing one SQLite file take turns (PostgreSQL uses an advisory lock).
        lock_path = Path(database + ".migrate.lock")
        with await asyncio.to_thread(lock_path.open, "w") as lock:
            await asyncio.to_thread(fcntl.flock, lock, fcntl.LOCK_EX)
            try:
                async with engine.begin() as connection:
                    await connection.run_sync(_upgrade)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
        return
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade)


def sqlite_engines(engine: AsyncEngine) -> tuple[Engine, Engine] | None:
    """For a SQLite file: synchronous (pysqlite) engines on it for the batch writer, one that
    fails at once on a lock (used on the event loop) and one that waits (used in a thread)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return None
    engines = []
    for busy_ms in (0, 5000):
        sync = create_sync_engine(
            engine.url.set(drivername="sqlite"),
            pool_size=1,
            max_overflow=0,
            connect_args={"timeout": busy_ms / 1000, "check_same_thread": False},
        )
        event.listen(sync, "connect", partial(_sqlite_pragmas, busy_ms=busy_ms))
        engines.append(sync)
    return engines[0], engines[1]


async def open_repository(settings: Settings) -> ConversationRepository:
    """The conversation store for `settings`, migrated when `DB_MIGRATE_ON_START` is on."""
    engine = create_engine(database_url(settings))
    try:
        if settings.db_migrate_on_start:
            await migrate(engine)
    except BaseException:
        await engine.dispose()
        raise
    return ConversationRepository(engine, sqlite_engines(engine))
