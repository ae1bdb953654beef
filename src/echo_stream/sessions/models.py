"""The data a session store keeps: the session itself and the entries of its event log."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import orjson

JsonId = str | int | None
"""`userId` / `chatId` as the workflow sent them (n8n ids are often numbers)."""


@dataclass(slots=True, frozen=True)
class Session:
    """What `/init-stream` accepted: everything needed to generate and to call back later."""

    id: str
    token_hash: str
    """SHA-256 of the stream token; the token itself is never stored."""
    prompt: str
    model: str
    max_tokens: int
    resume_url: str
    user_id: JsonId = None
    chat_id: JsonId = None
    created_at: float = 0.0

    def dumps(self) -> bytes:
        """The session as JSON, for a store."""
        return orjson.dumps(asdict(self))

    @classmethod
    def loads(cls, data: bytes | str) -> Session:
        """The session from `dumps`' JSON."""
        fields: dict[str, Any] = orjson.loads(data)
        return cls(**fields)


@dataclass(slots=True)
class LogEntry:
    """One event of a session's log: a piece of the answer, or the end (with its outcome).

    Treated as immutable, but not `frozen` (one is built per event; see `events.TextDelta`)."""

    id: str
    text: str = ""
    end: dict[str, Any] | None = None
    """Set on the last entry only: `{"status", "error"}` of the finished generation."""


@dataclass(slots=True, frozen=True)
class SessionView:
    """A session as a viewer finds it: the record and how far its generation has gone."""

    session: Session
    started: str | None
    """`run` once a viewer started generation, `expired` when nobody came; None before."""
    finished: bool
