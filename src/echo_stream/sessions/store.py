"""Where sessions live: the `SessionStore` interface and the in-memory store (one process).

A session is a record plus an append-only event log. Two claims make multi-process work safe:
`claim(id, "start", ...)` lets exactly one process start generation (or expire the session), and
`claim(id, "callback", ...)` makes the callback go out at most once. Time-to-live: a new session
keeps for `STREAM_SESSION_TTL`; starting extends it to cover the longest generation; finishing
cuts it back to one TTL, so late reconnects still find the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from echo_stream.sessions.feed import Feed, Push, follow, resolve
from echo_stream.sessions.models import LogEntry, Session, SessionView


class SessionStore(Protocol):
    """The storage a session stream needs; memory and Redis implement it."""

    async def create(self, session: Session, ttl: float) -> None:
        """Store a new session, kept for `ttl` seconds unless claimed."""

    async def view(self, session_id: str) -> SessionView | None:
        """The session and its progress; None when unknown or expired."""

    async def claim(self, session_id: str, name: str, value: str, ttl: float) -> bool:
        """Set the record's `name` to `value` unless set before; on success keep it `ttl` s."""

    async def attach(
        self, session_id: str, token_hash: str, ttl: float
    ) -> tuple[SessionView | None, bool]:
        """The view, and whether this call claimed `start` ("run", kept `ttl` s): only for the
        right token, on a session neither started nor finished. One round trip."""

    async def append(self, session_id: str, text: str) -> str:
        """Add a piece of the answer to the log; returns its event id."""

    async def finish(self, session_id: str, end: dict[str, Any], ttl: float) -> str:
        """Add the last entry (the outcome), mark the session finished, keep it `ttl` s more."""

    async def conclude(self, session_id: str, end: dict[str, Any], ttl: float) -> bool:
        """`finish`, then `claim` the callback: True when this caller is to send it."""

    async def read(self, session_id: str, after: str | None, wait: float) -> list[LogEntry]:
        """Entries after event id `after` (all when None), waiting up to `wait` s for one."""

    def valid_event_id(self, value: str) -> bool:
        """Whether `value` has the shape of this store's event ids (a `Last-Event-ID`)."""

    async def aclose(self) -> None:
        """Release connections."""


_SWEEP_INTERVAL = 1.0
"""Seconds between two sweeps of expired records (each record also expires when looked up)."""


@dataclass(slots=True)
class _Record:
    session: Session
    expires_at: float
    fields: dict[str, str] = field(default_factory=dict)
    feed: Feed = field(default_factory=Feed)
    """The event log, and the readers waiting for its next entry."""
    finished: bool = False


class MemorySessionStore:
    """Sessions in this process's memory: the default, for one worker."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._records: dict[str, _Record] = {}
        self._clock = clock
        self._next_sweep = 0.0

    def _live(self, session_id: str) -> _Record | None:
        record = self._records.get(session_id)
        if record is not None and record.expires_at <= self._clock():
            del self._records[session_id]
            record.feed.close()  # readers then find the session gone
            return None
        return record

    def _sweep(self) -> None:
        # At most once a second: a walk over every record on each create would cost more
        # than the rest of `/init-stream`'s storage under load.
        now = self._clock()
        if now < self._next_sweep:
            return
        self._next_sweep = now + _SWEEP_INTERVAL
        for session_id in [k for k, r in self._records.items() if r.expires_at <= now]:
            self._live(session_id)

    async def create(self, session: Session, ttl: float) -> None:
        """Store a new session, kept for `ttl` seconds unless claimed."""
        self._sweep()
        self._records[session.id] = _Record(session, self._clock() + ttl)

    async def view(self, session_id: str) -> SessionView | None:
        """The session and its progress; None when unknown or expired."""
        record = self._live(session_id)
        if record is None:
            return None
        return SessionView(record.session, record.fields.get("start"), record.finished)

    async def claim(self, session_id: str, name: str, value: str, ttl: float) -> bool:
        """Set the record's `name` to `value` unless set before; on success keep it `ttl` s."""
        record = self._live(session_id)
        if record is None or name in record.fields:
            return False
        record.fields[name] = value
        record.expires_at = max(record.expires_at, self._clock() + ttl)
        return True

    async def attach(
        self, session_id: str, token_hash: str, ttl: float
    ) -> tuple[SessionView | None, bool]:
        """The view, and whether this call claimed `start` (see `SessionStore.attach`)."""
        view = await self.view(session_id)
        if view is None or view.finished or view.session.token_hash != token_hash:
            return view, False
        return view, await self.claim(session_id, "start", "run", ttl)

    def _add(self, session_id: str, text: str, end: dict[str, Any] | None) -> _Record:
        record = self._live(session_id)
        if record is None:
            raise KeyError(session_id)
        feed = record.feed
        feed.add(LogEntry(str(len(feed.entries) + 1), text, end))
        return record

    async def append(self, session_id: str, text: str) -> str:
        """Add a piece of the answer to the log; returns its event id."""
        return self._add(session_id, text, None).feed.entries[-1].id

    async def finish(self, session_id: str, end: dict[str, Any], ttl: float) -> str:
        """Add the last entry (the outcome), mark the session finished, keep it `ttl` s more."""
        record = self._add(session_id, "", end)
        record.finished = True
        record.expires_at = self._clock() + ttl
        return record.feed.entries[-1].id

    async def conclude(self, session_id: str, end: dict[str, Any], ttl: float) -> bool:
        """`finish`, then `claim` the callback: True when this caller is to send it."""
        with contextlib.suppress(KeyError):
            await self.finish(session_id, end, ttl)
        return await self.claim(session_id, "callback", "claimed", ttl)

    async def read(self, session_id: str, after: str | None, wait: float) -> list[LogEntry]:
        """Entries after event id `after` (all when None), waiting up to `wait` s for one."""
        start = int(after) if after else 0
        record = self._live(session_id)
        if record is None:
            return []
        if len(record.feed.entries) <= start and wait > 0:
            loop = asyncio.get_running_loop()
            waiter: asyncio.Future[None] = loop.create_future()
            record.feed.waiters.append(waiter)
            timer = loop.call_later(wait, resolve, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                if waiter in record.feed.waiters:
                    record.feed.waiters.remove(waiter)
            record = self._live(session_id)
        return record.feed.entries[start:] if record is not None else []

    def follow(
        self, session_id: str, after: str | None, keepalive: float, push: Push | None = None
    ) -> AsyncGenerator[LogEntry | None, None]:
        """What a viewer in this process reads: the entries after `after` as they come, None
        when idle for `keepalive` s (`feed.follow`: no timer per wait, as `read` has; pushed
        to the viewer while it is caught up, with `push`)."""
        record = self._live(session_id)
        feed = record.feed if record is not None else Feed(closed=True)
        position = int(after) if after else 0
        return follow(feed, position, keepalive, lambda: self._live(session_id) is not None, push)

    def valid_event_id(self, value: str) -> bool:
        """Whether `value` has the shape of this store's event ids (a `Last-Event-ID`)."""
        return value.isascii() and value.isdigit() and len(value) <= 12

    async def aclose(self) -> None:
        """Nothing to release."""
