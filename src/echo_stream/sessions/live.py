"""A session's log as this process writes it, for viewers in the same process.

With Redis, the process that generates a session writes every event to the session's stream
(so other processes, and reconnects anywhere, can read it) and ALSO keeps it here: a viewer
attached to this process is fed from memory instead of an XREAD per event, which halves the Redis
work per chunk. Event ids are the store's, so a `Last-Event-ID` from here is valid everywhere.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

from echo_stream.sessions.models import LogEntry
from echo_stream.sessions.store import SessionStore


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


@dataclass(slots=True)
class LiveLog:
    """The entries written so far, and the viewers waiting for the next one."""

    entries: list[LogEntry] = field(default_factory=list)
    positions: dict[str, int] = field(default_factory=dict)
    closed: bool = False
    _waiters: list[asyncio.Future[None]] = field(default_factory=list)

    def add(self, entry: LogEntry) -> None:
        """Record an entry the store accepted, and wake the viewers."""
        self.positions[entry.id] = len(self.entries)
        self.entries.append(entry)
        self._wake()

    def close(self) -> None:
        """No more entries will come (the end was written, or the session was lost)."""
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        for waiter in self._waiters:
            _resolve(waiter)
        self._waiters.clear()

    def knows(self, after: str | None) -> bool:
        """Whether a viewer that saw `after` can be served from here."""
        return after is None or after in self.positions

    async def follow(
        self, after: str | None, keepalive: float
    ) -> AsyncGenerator[LogEntry | None, None]:
        """Entries after `after` as they come; None after `keepalive` idle seconds."""
        position = 0 if after is None else self.positions[after] + 1
        loop = asyncio.get_running_loop()
        while True:
            while position < len(self.entries):
                entry = self.entries[position]
                position += 1
                yield entry
                if entry.end is not None:
                    return
            if self.closed:
                return
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append(waiter)
            timer = loop.call_later(keepalive, _resolve, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
            if position == len(self.entries) and not self.closed:
                yield None


class TeeStore:
    """Writes go to the store, then (with the store's ids) to the live log."""

    def __init__(self, store: SessionStore, live: LiveLog) -> None:
        self._store = store
        self._live = live

    async def append(self, session_id: str, text: str) -> str:
        """Append to the store and the live log; returns the event id."""
        entry_id = await self._store.append(session_id, text)
        self._live.add(LogEntry(entry_id, text))
        return entry_id

    async def finish(self, session_id: str, end: dict[str, Any], ttl: float) -> str:
        """Write the end to the store and the live log."""
        entry_id = await self._store.finish(session_id, end, ttl)
        self._live.add(LogEntry(entry_id, end=end))
        return entry_id
