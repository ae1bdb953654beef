"""Group commit for the streaming path: turn starts and outcomes written in shared transactions.

Every answer writes twice (its rows before the first token, its outcome at the end). One
transaction each costs far more than the statements in it (pool checkout, BEGIN, COMMIT and, on
SQLite, a thread hop per driver call), so concurrent requests queue their writes here and one
task writes whatever has queued as a single transaction of multi-row statements. A request
waits only for its own batch; with one client a batch is one write. If a batch fails, each of
its writes is retried alone, so one bad write (a conversation deleted meanwhile) fails only its
own request.

The batch is written by plain synchronous SQLAlchemy code: on PostgreSQL inside the async
connection (`run_sync`). On SQLite it runs right on the event loop, on its own pysqlite
connection that never waits for a lock: a local write of a few rows in WAL mode without fsync
takes a fraction of a millisecond, while every hand-off to a thread (aiosqlite makes one per
driver call) costs a scheduler wake-up and GIL hand-overs on a busy machine, which measured as
milliseconds added to time to first token. When another process holds SQLite's write lock the
batch goes to a dedicated thread that waits for it instead, so the loop never waits on a lock;
that thread also checkpoints the write-ahead log every `CHECKPOINT_EVERY` batches (a checkpoint
syncs the file, which the loop must not wait for either).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from sqlalchemy import (
    Connection,
    Engine,
    Table,
    bindparam,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.dml import UpdateBase

if TYPE_CHECKING:
    from echo_stream.conversations.repository import Outcome, TurnStart

log = logging.getLogger(__name__)

CHECKPOINT_EVERY = 200
"""Inline SQLite batches between two checkpoints of the write-ahead log (run in the thread)."""


@dataclass(slots=True)
class Write:
    """One queued write: a turn's start, or an outcome (message id, conversation id, Outcome)."""

    start: TurnStart | None
    outcome: tuple[str, str, Outcome] | None
    now: float
    done: asyncio.Future[None]


class TurnWriter:
    """Queues turn writes and writes each batch in one transaction."""

    def __init__(
        self,
        engine: AsyncEngine,
        conversations: Table,
        messages: Table,
        alone: Callable[[Write], Awaitable[None]],
        sqlite_engines: tuple[Engine, Engine] | None = None,
    ) -> None:
        self.engine = engine
        self._inline_engine: Engine | None = sqlite_engines[0] if sqlite_engines else None
        self._thread_engine: Engine | None = sqlite_engines[1] if sqlite_engines else None
        self._thread = ThreadPoolExecutor(1, "echo-db-writer") if sqlite_engines else None
        self._sql = _Statements(conversations, messages)
        self._alone = alone
        self._queue: list[Write] = []
        self._task: asyncio.Task[None] | None = None
        self._inline_batches = 0
        self._checkpoint: asyncio.Future[None] | None = None

    def enqueue(
        self, start: TurnStart | None, outcome: tuple[str, str, Outcome] | None, now: float
    ) -> asyncio.Future[None]:
        """Queue one write; the future resolves when its batch is committed (or fails).

        Cancelling the future does not withdraw the write.
        """
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(Write(start, outcome, now, done))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())
        return done

    async def aclose(self) -> None:
        """Wait for queued writes; release the writer thread."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        if self._checkpoint is not None:
            await asyncio.gather(self._checkpoint, return_exceptions=True)
        if self._thread is not None:
            self._thread.shutdown(wait=True)
        for sync in (self._inline_engine, self._thread_engine):
            if sync is not None:
                sync.dispose()

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                if self._inline_engine is not None:
                    await self._write_sqlite(batch)
                else:
                    async with self.engine.begin() as conn:
                        await conn.run_sync(self._write, batch)
            except Exception:
                if len(batch) > 1:
                    log.warning("a batch of %d writes failed; writing each alone", len(batch))
                for write in batch:
                    await self._settle(write, self._alone(write))
            else:
                for write in batch:
                    if not write.done.done():
                        write.done.set_result(None)

    @staticmethod
    async def _settle(write: Write, work: Awaitable[None]) -> None:
        try:
            await work
        except Exception as exc:
            if not write.done.done():
                write.done.set_exception(exc)
        else:
            if not write.done.done():
                write.done.set_result(None)

    async def _write_sqlite(self, batch: list[Write]) -> None:
        assert self._inline_engine is not None and self._thread_engine is not None
        try:
            with self._inline_engine.begin() as conn:
                self._write(conn, batch)
            self._inline_batches += 1
            if self._inline_batches % CHECKPOINT_EVERY == 0 and not self._checkpointing():
                loop = asyncio.get_running_loop()
                self._checkpoint = loop.run_in_executor(self._thread, self._checkpoint_wal)
            return
        except OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._write_with, self._thread_engine, batch)

    def _checkpointing(self) -> bool:
        return self._checkpoint is not None and not self._checkpoint.done()

    def _checkpoint_wal(self) -> None:
        assert self._thread_engine is not None
        try:
            with self._thread_engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        except Exception:
            log.warning("checkpointing the SQLite write-ahead log failed", exc_info=True)

    def _write_with(self, engine: Engine, batch: list[Write]) -> None:
        with engine.begin() as conn:
            self._write(conn, batch)

    def _write(self, conn: Connection, batch: list[Write]) -> None:
        raw = conn.connection.dbapi_connection if conn.dialect.name == "sqlite" else None
        db: _Db = _SqliteDb(raw, self._sql) if raw is not None else _AlchemyDb(conn, self._sql)
        starts = [(w.start, w.now) for w in batch if w.start is not None]
        if starts:
            _write_starts(db, starts)
        outcomes = [(w.outcome, w.now) for w in batch if w.outcome is not None]
        if outcomes:
            _write_outcomes(db, outcomes)


OUTCOME_FIELDS = ("status", "content", "finish_reason", "input_tokens", "output_tokens", "error",
                  "ttft_ms", "duration_ms", "ad")  # fmt: skip


class _Statements:
    """The batch's statements, built once from the tables; compiled for raw SQLite too."""

    def __init__(self, conversations: Table, messages: Table) -> None:
        c, m = conversations.c, messages.c
        self.messages = messages
        self.alchemy: dict[str, UpdateBase] = {
            "new_conversations": insert(conversations),
            "touch_owned": update(conversations)
            .where(c.id == bindparam("b_id"), c.owner == bindparam("b_owner"))
            .values(updated_at=bindparam("b_now"), model=bindparam("b_model")),
            "new_messages": insert(messages),
            "outcomes": update(messages)
            .where(m.id == bindparam("b_id"))
            .values(**{f: bindparam(f"b_{f}", type_=m[f].type) for f in OUTCOME_FIELDS}),
            "touch": update(conversations)
            .where(c.id == bindparam("b_id"))
            .values(updated_at=bindparam("b_now")),
        }
        named = sqlite.dialect(paramstyle="named")
        self.sqlite = {key: str(stmt.compile(dialect=named)) for key, stmt in self.alchemy.items()}
        self.max_seq = select(m.conversation_id, func.max(m.seq)).group_by(m.conversation_id)


class _Db(Protocol):
    def run(self, key: str, rows: list[dict[str, Any]]) -> int: ...
    def max_seqs(self, conversation_ids: set[str]) -> dict[str, int]: ...


class _AlchemyDb:
    """The statements through SQLAlchemy (PostgreSQL, inside `run_sync`)."""

    def __init__(self, conn: Connection, sql: _Statements) -> None:
        self.conn, self.sql = conn, sql

    def run(self, key: str, rows: list[dict[str, Any]]) -> int:
        return int(self.conn.execute(self.sql.alchemy[key], rows).rowcount)

    def max_seqs(self, conversation_ids: set[str]) -> dict[str, int]:
        m = self.sql.messages.c
        query = self.sql.max_seq.where(m.conversation_id.in_(conversation_ids))
        return {cid: int(top or 0) for cid, top in self.conn.execute(query).all()}


class _SqliteDb:
    """The same statements, compiled once, straight on the pysqlite connection: no per-row
    SQLAlchemy processing, which is most of a small batch's cost. JSON is encoded here."""

    def __init__(self, raw: Any, sql: _Statements) -> None:
        self.raw, self.sql = raw, sql

    def run(self, key: str, rows: list[dict[str, Any]]) -> int:
        if key in _JSON_KEYS:
            name = _JSON_KEYS[key]
            rows = [{**row, name: _json(row[name])} for row in rows]
        cursor = self.raw.cursor()
        try:
            cursor.executemany(self.sql.sqlite[key], rows)
            return int(cursor.rowcount)
        finally:
            cursor.close()

    def max_seqs(self, conversation_ids: set[str]) -> dict[str, int]:
        ids = sorted(conversation_ids)
        marks = ", ".join("?" for _ in ids)
        query = (
            f"SELECT conversation_id, max(seq) FROM {self.sql.messages.name} "
            f"WHERE conversation_id IN ({marks}) GROUP BY conversation_id"
        )
        cursor = self.raw.cursor()
        try:
            return {cid: int(top or 0) for cid, top in cursor.execute(query, ids).fetchall()}
        finally:
            cursor.close()


_JSON_KEYS = {"new_conversations": "metadata", "outcomes": "b_ad"}
"""The JSON column each statement writes; SQLAlchemy encodes it on PostgreSQL."""


def _json(value: Any) -> Any:
    return None if value is None else orjson.dumps(value).decode()


def _write_starts(db: _Db, starts: list[tuple[TurnStart, float]]) -> None:
    new = [(t, now) for t, now in starts if t.create]
    old = [(t, now) for t, now in starts if not t.create]
    if new:
        db.run("new_conversations", [
            {"id": t.conversation_id, "owner": t.owner, "title": t.title, "model": t.model,
             "created_at": now, "updated_at": now, "metadata": t.metadata}
            for t, now in new
        ])  # fmt: skip
    seqs: dict[str, int] = {}
    if old:
        touched = db.run("touch_owned", [
            {"b_id": t.conversation_id, "b_owner": t.owner, "b_now": now, "b_model": t.model}
            for t, now in old
        ])  # fmt: skip
        if touched not in (-1, len(old)):
            raise LookupError("a conversation of this batch is gone or not the caller's")
        seqs = db.max_seqs({t.conversation_id for t, _ in old})
    messages: list[dict[str, Any]] = []
    for t, now in starts:
        seq = seqs.get(t.conversation_id, 0)
        seqs[t.conversation_id] = seq + 2
        common = {"conversation_id": t.conversation_id, "created_at": now,
                  "idempotency_key": t.idempotency_key, "finish_reason": None,
                  "input_tokens": None, "output_tokens": None, "error": None, "ttft_ms": None,
                  "duration_ms": None, "ad": None}  # fmt: skip
        # Every row names every column: a multi-row insert takes the first row's keys.
        messages.append({**common, "id": t.user_message_id, "parent_id": None, "seq": seq + 1,
                         "role": "user", "content": t.prompt, "status": "complete",
                         "model": None, "provider": None})  # fmt: skip
        messages.append({**common, "id": t.message_id, "parent_id": t.user_message_id,
                         "seq": seq + 2, "role": "assistant", "content": "",
                         "status": "streaming", "model": t.model,
                         "provider": t.provider})  # fmt: skip
    db.run("new_messages", messages)


def _write_outcomes(db: _Db, outcomes: list[tuple[tuple[str, str, Outcome], float]]) -> None:
    rows = [
        {"b_id": message_id, **{f"b_{f}": getattr(outcome, f) for f in OUTCOME_FIELDS}}
        for (message_id, _, outcome), _ in outcomes
    ]
    db.run("outcomes", rows)
    db.run("touch", [{"b_id": cid, "b_now": now} for (_, cid, _), now in outcomes])
