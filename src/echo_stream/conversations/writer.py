"""Group commit for the streaming path: turn starts and outcomes written in shared transactions.

Every answer writes twice (its rows before the first token, its outcome at the end). One
transaction each costs far more than the statements in it (pool checkout, BEGIN, COMMIT and, on
SQLite, a thread hop per driver call), so concurrent requests queue their writes here and one
task writes whatever has queued as a single transaction of multi-row statements. A request
waits only for its own batch; with one client a batch is one write, as before. If a batch fails,
each of its writes is retried alone, so one bad write (a conversation deleted meanwhile) fails
only its own request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Table, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

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
    ) -> None:
        self.engine = engine
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
        """Wait for queued writes."""
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                async with self.engine.begin() as conn:
                    await self._write(conn, batch)
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

    async def _write(self, conn: AsyncConnection, batch: list[Write]) -> None:
        starts = [w for w in batch if w.start is not None]
        outcomes = [w for w in batch if w.outcome is not None]
        if starts:
            await self._starts(conn, starts)
        if outcomes:
            await self._outcomes(conn, outcomes)

    async def _starts(self, conn: AsyncConnection, writes: list[Write]) -> None:
        c, m = self._c.c, self._m.c
        starts = [(w.start, w.now) for w in writes if w.start is not None]
        new = [(t, now) for t, now in starts if t.create]
        old = [(t, now) for t, now in starts if not t.create]
        if new:
            await conn.execute(insert(self._c), [
                {"id": t.conversation_id, "owner": t.owner, "title": t.title, "model": t.model,
                 "created_at": now, "updated_at": now, "metadata": t.metadata}
                for t, now in new
            ])  # fmt: skip
        seqs: dict[str, int] = {}
        if old:
            touched = await conn.execute(
                update(self._c)
                .where(c.id == bindparam("b_id"), c.owner == bindparam("b_owner"))
                .values(updated_at=bindparam("b_now"), model=bindparam("b_model")),
                [{"b_id": t.conversation_id, "b_owner": t.owner, "b_now": now, "b_model": t.model}
                 for t, now in old],
            )  # fmt: skip
            if touched.rowcount not in (-1, len(old)):
                raise LookupError("a conversation of this batch is gone or not the caller's")
            rows = await conn.execute(
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
        await conn.execute(insert(self._m), messages)

    async def _outcomes(self, conn: AsyncConnection, writes: list[Write]) -> None:
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
        await conn.execute(update(self._m).where(m.id == bindparam("b_id")).values(**values), rows)
        await conn.execute(
            update(self._c).where(c.id == bindparam("b_id")).values(updated_at=bindparam("b_now")),
            [{"b_id": w.outcome[1], "b_now": w.now} for w in writes if w.outcome is not None],
        )
