"""Reads and writes of conversations and messages; every read and change is scoped to an owner.

Each method is one short transaction on the async engine (SQLAlchemy Core statements on the
declarative tables: no ORM identity map, since nothing here outlives a request). A conversation
that is not the owner's is treated exactly like one that does not exist.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import orjson
from sqlalchemy import Engine, Row, Table, and_, delete, func, insert, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from echo_stream.conversations.models import ConversationRow, IdempotencyKeyRow, MessageRow
from echo_stream.conversations.writer import TurnWriter, Write
from echo_stream.errors import InvalidRequest, NotFound

CONVERSATIONS = cast(Table, ConversationRow.__table__)
MESSAGES = cast(Table, MessageRow.__table__)
KEYS = cast(Table, IdempotencyKeyRow.__table__)


def new_id(prefix: str) -> str:
    """A random, URL-safe id such as `conv_...` or `msg_...`."""
    return f"{prefix}_{secrets.token_urlsafe(18)}"


@dataclass(slots=True, frozen=True)
class Conversation:
    id: str
    owner: str
    title: str
    model: str | None
    created_at: float
    updated_at: float
    metadata: dict[str, Any]


@dataclass(slots=True, frozen=True)
class Message:
    id: str
    conversation_id: str
    parent_id: str | None
    seq: int
    role: str
    content: str
    status: str
    finish_reason: str | None
    model: str | None
    provider: str | None
    input_tokens: int | None
    output_tokens: int | None
    error: str | None
    idempotency_key: str | None
    ttft_ms: float | None
    duration_ms: float | None
    ad: dict[str, Any] | None
    created_at: float


@dataclass(slots=True)
class Outcome:
    """How an assistant message ended: what `finish` writes over the `streaming` row."""

    status: str
    content: str
    finish_reason: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    error: str | None = None
    ttft_ms: float | None = None
    duration_ms: float | None = None
    ad: dict[str, Any] | None = None


@dataclass(slots=True)
class TurnStart:
    """The rows `start_turn` writes: a user message and a `streaming` assistant answer."""

    owner: str
    conversation_id: str
    create: bool
    prompt: str
    title: str
    model: str | None
    provider: str | None
    idempotency_key: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    user_message_id: str = field(default_factory=lambda: new_id("msg"))
    message_id: str = field(default_factory=lambda: new_id("msg"))


def _conversation(row: Row[Any]) -> Conversation:
    m = row._mapping
    return Conversation(
        m["id"], m["owner"], m["title"], m["model"], m["created_at"], m["updated_at"],
        m["metadata"] or {},
    )  # fmt: skip


def _message(row: Row[Any]) -> Message:
    return Message(**dict(row._mapping))


def encode_cursor(updated_at: float, conversation_id: str) -> str:
    """An opaque page cursor: the last row's sort key."""
    return base64.urlsafe_b64encode(orjson.dumps([updated_at, conversation_id])).decode()


def decode_cursor(cursor: str) -> tuple[float, str]:
    """The sort key inside a cursor; a 400 for anything that is not one of ours."""
    try:
        updated_at, conversation_id = orjson.loads(base64.urlsafe_b64decode(cursor.encode()))
        return float(updated_at), str(conversation_id)
    except (ValueError, TypeError) as exc:
        raise InvalidRequest("Invalid value for 'cursor'", param="cursor") from exc


class ConversationRepository:
    """The conversation store on one engine (SQLite or PostgreSQL)."""

    def __init__(
        self, engine: AsyncEngine, sqlite_engines: tuple[Engine, Engine] | None = None
    ) -> None:
        """`sqlite_engines`: synchronous engines on the same SQLite file for the batch writer
        (one that never waits for a lock, one that does), see `writer`."""
        self.engine = engine
        self.pending: set[asyncio.Future[None]] = set()
        """Outcome writes still running (finished by `aclose`)."""
        self.writer = TurnWriter(engine, CONVERSATIONS, MESSAGES, self._write_alone, sqlite_engines)

    async def ping(self) -> None:
        """One round trip to the database (for `/ready`); raises when it does not answer."""
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def aclose(self) -> None:
        """Finish pending writes, then close the engine's pooled connections."""
        if self.pending:
            await asyncio.gather(*self.pending, return_exceptions=True)
        await self.writer.aclose()
        await self.engine.dispose()

    async def get(self, owner: str, conversation_id: str) -> Conversation | None:
        """The owner's conversation, or None (unknown and someone else's look the same)."""
        query = select(CONVERSATIONS).where(
            CONVERSATIONS.c.id == conversation_id, CONVERSATIONS.c.owner == owner
        )
        async with self.engine.connect() as conn:
            row = (await conn.execute(query)).first()
        return _conversation(row) if row else None

    async def page(
        self, owner: str, limit: int, cursor: str | None = None
    ) -> tuple[list[Conversation], str | None]:
        """One page of the owner's conversations, newest first, and the next page's cursor."""
        c = CONVERSATIONS.c
        query = select(CONVERSATIONS).where(c.owner == owner)
        if cursor:
            updated_at, last_id = decode_cursor(cursor)
            query = query.where(
                or_(c.updated_at < updated_at, and_(c.updated_at == updated_at, c.id < last_id))
            )
        query = query.order_by(c.updated_at.desc(), c.id.desc()).limit(limit + 1)
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        items = [_conversation(row) for row in rows[:limit]]
        more = len(rows) > limit
        return items, encode_cursor(items[-1].updated_at, items[-1].id) if more else None

    async def messages(self, conversation_id: str) -> list[Message]:
        """A conversation's messages, oldest first (call after checking ownership)."""
        query = (
            select(MESSAGES)
            .where(MESSAGES.c.conversation_id == conversation_id)
            .order_by(MESSAGES.c.seq, MESSAGES.c.created_at)
        )
        async with self.engine.connect() as conn:
            return [_message(row) for row in (await conn.execute(query)).all()]

    async def message(self, message_id: str) -> Message | None:
        """One message by id (internal: callers got the id from an owned conversation)."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(select(MESSAGES).where(MESSAGES.c.id == message_id))).first()
        return _message(row) if row else None

    async def rename(self, owner: str, conversation_id: str, title: str, now: float) -> bool:
        """Set the title of the owner's conversation; False when there is none."""
        return await self._update_owned(owner, conversation_id, title=title, updated_at=now)

    async def set_title(self, conversation_id: str, title: str) -> None:
        """Replace a title without touching `updated_at` (the model-written title)."""
        async with self.engine.begin() as conn:
            await conn.execute(
                update(CONVERSATIONS)
                .where(CONVERSATIONS.c.id == conversation_id)
                .values(title=title)
            )

    async def delete(self, owner: str, conversation_id: str) -> bool:
        """Hard-delete the owner's conversation and its messages; False when there is none."""
        owned = select(CONVERSATIONS.c.id).where(
            CONVERSATIONS.c.id == conversation_id, CONVERSATIONS.c.owner == owner
        )
        async with self.engine.begin() as conn:
            await conn.execute(delete(KEYS).where(KEYS.c.message_id.in_(
                select(MESSAGES.c.id).where(MESSAGES.c.conversation_id.in_(owned))
            )))  # fmt: skip
            await conn.execute(delete(MESSAGES).where(MESSAGES.c.conversation_id.in_(owned)))
            result = await conn.execute(
                delete(CONVERSATIONS).where(
                    CONVERSATIONS.c.id == conversation_id, CONVERSATIONS.c.owner == owner
                )
            )
        return bool(result.rowcount)

    async def delete_older_than(self, cutoff: float) -> int:
        """Retention: hard-delete every conversation last updated before `cutoff`."""
        old = select(CONVERSATIONS.c.id).where(CONVERSATIONS.c.updated_at < cutoff)
        async with self.engine.begin() as conn:
            await conn.execute(delete(KEYS).where(KEYS.c.created_at < cutoff))
            await conn.execute(delete(MESSAGES).where(MESSAGES.c.conversation_id.in_(old)))
            result = await conn.execute(
                delete(CONVERSATIONS).where(CONVERSATIONS.c.updated_at < cutoff)
            )
        return int(result.rowcount)

    async def claim_key(
        self, owner: str, key: str, message_id: str, now: float
    ) -> tuple[str, float] | None:
        """Claim the owner's idempotency `key` for the answer `message_id`: None when this call
        claimed it, else (the answer holding it, when that claim was made). One round trip
        (two when taken); the primary key decides between simultaneous claims, in any process."""
        k = KEYS.c
        while True:
            try:
                async with self.engine.begin() as conn:
                    await conn.execute(
                        insert(KEYS).values(
                            owner=owner, key=key, message_id=message_id, created_at=now
                        )
                    )
                return None
            except IntegrityError:
                pass
            async with self.engine.connect() as conn:
                held = (
                    await conn.execute(
                        select(k.message_id, k.created_at).where(k.owner == owner, k.key == key)
                    )
                ).first()
            if held is not None:  # (else released meanwhile: claim again)
                return str(held[0]), float(held[1])

    async def take_over_key(
        self, owner: str, key: str, held_by: str, message_id: str, now: float
    ) -> bool:
        """Move the key from the answer `held_by` (failed, or never written) to `message_id`;
        False when another request moved it first."""
        k = KEYS.c
        async with self.engine.begin() as conn:
            moved = await conn.execute(
                update(KEYS)
                .where(k.owner == owner, k.key == key, k.message_id == held_by)
                .values(message_id=message_id, created_at=now)
            )
        return bool(moved.rowcount)

    async def start_turn(self, turn: TurnStart, now: float) -> None:
        """Write the user message and a `streaming` assistant message (and a new conversation).

        Queued with concurrent requests' writes and committed together (see `writer`).
        """
        await asyncio.shield(self.writer.enqueue(turn, None, now))

    async def finish(
        self, conversation_id: str, message_id: str, outcome: Outcome, now: float
    ) -> None:
        """Write how the assistant message ended, and touch its conversation (batched too)."""
        await asyncio.shield(self.writer.enqueue(None, (message_id, conversation_id, outcome), now))

    async def _write_alone(self, write: Write) -> None:
        """One write in its own transaction: a failed batch's writes, retried one by one."""
        if write.start is not None:
            await self._start_turn_alone(write.start, write.now)
        elif write.outcome is not None:
            message_id, conversation_id, outcome = write.outcome
            await self._finish_alone(conversation_id, message_id, outcome, write.now)

    async def _start_turn_alone(self, turn: TurnStart, now: float) -> None:
        async with self.engine.begin() as conn:
            if turn.create:
                await conn.execute(
                    insert(CONVERSATIONS).values(
                        id=turn.conversation_id, owner=turn.owner, title=turn.title,
                        model=turn.model, created_at=now, updated_at=now, metadata=turn.metadata,
                    )
                )  # fmt: skip
                seq = 0
            else:
                c = CONVERSATIONS.c
                touched = await conn.execute(
                    update(CONVERSATIONS)
                    .where(c.id == turn.conversation_id, c.owner == turn.owner)
                    .values(updated_at=now, model=turn.model)
                )
                if not touched.rowcount:
                    raise NotFound(f"No conversation found with id '{turn.conversation_id}'")
                seq = (await conn.execute(
                    select(func.coalesce(func.max(MESSAGES.c.seq), 0))
                    .where(MESSAGES.c.conversation_id == turn.conversation_id)
                )).scalar_one()  # fmt: skip
            common = {"conversation_id": turn.conversation_id, "created_at": now,
                      "idempotency_key": turn.idempotency_key}  # fmt: skip
            # Both rows name the same columns: a multi-row insert takes the first row's keys.
            await conn.execute(
                insert(MESSAGES),
                [
                    {**common, "id": turn.user_message_id, "parent_id": None, "seq": seq + 1,
                     "role": "user", "content": turn.prompt, "status": "complete",
                     "model": None, "provider": None},
                    {**common, "id": turn.message_id, "parent_id": turn.user_message_id,
                     "seq": seq + 2, "role": "assistant", "content": "", "status": "streaming",
                     "model": turn.model, "provider": turn.provider},
                ],
            )  # fmt: skip

    async def _finish_alone(
        self, conversation_id: str, message_id: str, outcome: Outcome, now: float
    ) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(MESSAGES).where(MESSAGES.c.id == message_id).values(
                    status=outcome.status, content=outcome.content,
                    finish_reason=outcome.finish_reason, input_tokens=outcome.input_tokens,
                    output_tokens=outcome.output_tokens, error=outcome.error,
                    ttft_ms=outcome.ttft_ms, duration_ms=outcome.duration_ms, ad=outcome.ad,
                )
            )  # fmt: skip
            await conn.execute(
                update(CONVERSATIONS)
                .where(CONVERSATIONS.c.id == conversation_id)
                .values(updated_at=now)
            )

    async def _update_owned(self, owner: str, conversation_id: str, **values: Any) -> bool:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                update(CONVERSATIONS)
                .where(CONVERSATIONS.c.id == conversation_id, CONVERSATIONS.c.owner == owner)
                .values(**values)
            )
        return bool(result.rowcount)


def history_messages(messages: Sequence[Message]) -> list[dict[str, str]]:
    """Stored messages as OpenAI chat messages for the next turn's context (finished text only)."""
    return [
        {"role": m.role, "content": m.content}
        for m in messages
        if m.content and (m.role == "user" or m.status in ("complete", "aborted"))
    ]
