"""Group commit for the streaming path: turn starts and outcomes written in shared transactions.

Every answer writes twice (its rows before the first token, its outcome at the end). One
transaction each costs far more than the statements in it (pool checkout, BEGIN, COMMIT and, on
SQLite, a thread hop per driver call), so concurrent requests queue their writes here and one
task writes whatever has queued as a single transaction of multi-row statements. A request
waits only for its own batch; with one client a batch is one write. If a batch fails, each of
its writes is retried alone, so one bad write (a conversation deleted meanwhile) fails only its
own request.

The batch is written by plain synchronous SQLAlchemy code: on PostgreSQL inside the async
connection (`run_sync`), on SQLite in one dedicated thread with its own pysqlite connection, so
a whole batch costs one thread hop instead of one per driver call (aiosqlite's way).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Connection, Engine, Table, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from echo_stream.conversations.repository import Outcome, TurnStart

log = logging.getLogger(__name__)


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
        thread_engine: Engine | None = None,
    ) -> None:
        self.engine = engine
        self._thread_engine = thread_engine
        self._thread = ThreadPoolExecutor(1, "echo-db-writer") if thread_engine else None
        self._c = conversations
        self._m = messages
        self._alone = alone
        self._queue: list[Write] = []
        self._task: asyncio.Task[None] | None = None

    async def submit(
        self, start: TurnStart | None, outcome: tuple[str, str, Outcome] | None, now: float
    ) -> None:
        """Queue one write and wait until its batch is committed (or its own error)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(Write(start, outcome, now, done))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())
        await asyncio.shield(done)

    async def aclose(self) -> None:
        """Wait for queued writes; release the writer thread."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        if self._thread is not None:
            self._thread.shutdown(wait=True)
        if self._thread_engine is not None:
            self._thread_engine.dispose()

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                if self._thread is not None:
                    loop = asyncio.get_running_loop()
                    await loop.run_in_executor(self._thread, self._write_in_thread, batch)
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

    def _write_in_thread(self, batch: list[Write]) -> None:
        assert self._thread_engine is not None
        with self._thread_engine.begin() as conn:
            self._write(conn, batch)

    def _write(self, conn: Connection, batch: list[Write]) -> None:
        starts = [w for w in batch if w.start is not None]
        outcomes = [w for w in batch if w.outcome is not None]
        if starts:
            self._starts(conn, starts)
        if outcomes:
            self._outcomes(conn, outcomes)

    def _starts(self, conn: Connection, writes: list[Write]) -> None:
        c, m = self._c.c, self._m.c
        starts = [(w.start, w.now) for w in writes if w.start is not None]
        new = [(t, now) for t, now in starts if t.create]
        old = [(t, now) for t, now in starts if not t.create]
        if new:
            conn.execute(insert(self._c), [
                {"id": t.conversation_id, "owner": t.owner, "title": t.title, "model": t.model,
                 "created_at": now, "updated_at": now, "metadata": t.metadata}
                for t, now in new
            ])  # fmt: skip
        seqs: dict[str, int] = {}
        if old:
            touched = conn.execute(
                update(self._c)
                .where(c.id == bindparam("b_id"), c.owner == bindparam("b_owner"))
                .values(updated_at=bindparam("b_now"), model=bindparam("b_model")),
                [{"b_id": t.conversation_id, "b_owner": t.owner, "b_now": now, "b_model": t.model}
                 for t, now in old],
            )  # fmt: skip
            if touched.rowcount not in (-1, len(old)):
                raise LookupError("a conversation of this batch is gone or not the caller's")
            rows = conn.execute(
                select(m.conversation_id, func.max(m.seq))
                .where(m.conversation_id.in_({t.conversation_id for t, _ in old}))
                .group_by(m.conversation_id)
            )
            seqs = {cid: int(top or 0) for cid, top in rows.all()}
        messages: list[dict[str, Any]] = []
        for t, now in starts:
            seq = seqs.get(t.conversation_id, 0)
            seqs[t.conversation_id] = seq + 2
            common = {"conversation_id": t.conversation_id, "created_at": now,
                      "idempotency_key": t.idempotency_key}  # fmt: skip
            # Every row names the same columns: a multi-row insert takes the first row's keys.
            messages.append({**common, "id": t.user_message_id, "parent_id": None,
                             "seq": seq + 1, "role": "user", "content": t.prompt,
                             "status": "complete", "model": None, "provider": None})  # fmt: skip
            messages.append({**common, "id": t.message_id, "parent_id": t.user_message_id,
                             "seq": seq + 2, "role": "assistant", "content": "",
                             "status": "streaming", "model": t.model,
                             "provider": t.provider})  # fmt: skip
        conn.execute(insert(self._m), messages)

    def _outcomes(self, conn: Connection, writes: list[Write]) -> None:
        c, m = self._c.c, self._m.c
        fields = ("status", "content", "finish_reason", "input_tokens", "output_tokens", "error",
                  "ttft_ms", "duration_ms")  # fmt: skip
        values: dict[str, Any] = {name: bindparam(f"b_{name}") for name in fields}
        values["ad"] = bindparam("b_ad", type_=JSON(none_as_null=True))
        rows = []
        for w in writes:
            assert w.outcome is not None
            message_id, _, outcome = w.outcome
            row = {f"b_{name}": getattr(outcome, name) for name in fields}
            rows.append({**row, "b_ad": outcome.ad, "b_id": message_id})
        conn.execute(update(self._m).where(m.id == bindparam("b_id")).values(**values), rows)
        conn.execute(
            update(self._c).where(c.id == bindparam("b_id")).values(updated_at=bindparam("b_now")),
            [{"b_id": w.outcome[1], "b_now": w.now} for w in writes if w.outcome is not None],
        )
