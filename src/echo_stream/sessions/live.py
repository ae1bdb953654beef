"""A session's log as this process writes it, for viewers in the same process.

With Redis, the process that generates a session writes its events to the session's stream
(so other processes, and reconnects anywhere, can read them) and ALSO keeps them here: a viewer
attached to this process is fed from memory instead of an XREAD per event, and the writes go in
batches (`BatchingWriter`). Event ids are the stream's, so a `Last-Event-ID` from here is valid
everywhere.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

from echo_stream.sessions.feed import Feed, Push, follow
from echo_stream.sessions.models import LogEntry
from echo_stream.sessions.redis_store import RedisSessionStore


@dataclass(slots=True)
class LiveLog(Feed):
    """The entries written so far, and the viewers waiting for the next one."""

    positions: dict[str, int] = field(default_factory=dict)

    def add(self, entry: LogEntry) -> None:
        """Record an entry the store accepted, and feed the viewers."""
        self.positions[entry.id] = len(self.entries)
        Feed.add(self, entry)  # not super(): slots dataclasses break its zero-argument form

    def knows(self, after: str | None) -> bool:
        """Whether a viewer that saw `after` can be served from here."""
        return after is None or after in self.positions

    def follow(
        self, after: str | None, keepalive: float, push: Push | None = None
    ) -> AsyncGenerator[LogEntry | None, None]:
        """Entries after `after` as they come; None after `keepalive` idle seconds (pushed to
        the viewer while it is caught up, with `push`)."""
        position = 0 if after is None else self.positions[after] + 1
        return follow(self, position, keepalive, push=push)


LINGER = 0.25
"""Seconds a batch of a session's events waits before it is written to Redis (see below)."""


class BatchingWriter:
    """The generating process's writer for a shared (Redis) store.

    It numbers the events itself (stream ids `0-1`, `0-2`, ...: valid, increasing, and known
    before the write), feeds the live log at once, and writes to the store in batches at most
    every `linger` seconds, so a fast answer costs a few Redis calls per second rather than one
    per event. Other processes see an event at most `linger` later. The end goes with what is
    still pending, after any batch being written, in one round trip that also claims the
    callback (`conclude`): a short answer costs one write.

    `LINGER` is 0.25 s: every Redis command costs the gateway 50-250 µs of redis-py CPU, and a
    viewer that reconnects elsewhere waits the face's 1 s `retry:` anyway. With 50 ms, a
    400 ms answer cost eight batches; now two (measured ~1 ms less CPU per such session). A
    batch travels as one JSON argument (`redis_store`): 100 pieces cost ~100 µs, not ~190.
    """

    def __init__(self, store: RedisSessionStore, live: LiveLog, linger: float = LINGER) -> None:
        self._store = store
        self._live = live
        self._linger = linger
        self._count = 0
        self._pending: list[tuple[str, str]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._writing = False
        """The flusher is past its linger, writing a batch (it must not be cancelled then)."""
        self._ending = False
        self._failure: KeyError | None = None

    def _next_id(self) -> str:
        self._count += 1
        return f"0-{self._count}"

    async def append(self, session_id: str, text: str) -> str:
        """Show the piece to local viewers now; write it with the next batch."""
        if self._failure is not None:
            raise self._failure
        entry_id = self._next_id()
        self._pending.append((entry_id, text))
        self._live.add(LogEntry(entry_id, text))
        if self._flusher is None:
            self._flusher = asyncio.ensure_future(self._flush_later(session_id))
        return entry_id

    async def _flush_later(self, session_id: str) -> None:
        await asyncio.sleep(self._linger)
        self._writing = True
        try:
            batch, self._pending = self._pending, []
            if batch and self._failure is None:
                try:
                    await self._store.append_many(session_id, batch)
                except KeyError as exc:
                    self._failure = exc
        finally:
            self._writing = False
            self._flusher = None
        if self._pending and not self._ending:  # added during the write
            self._flusher = asyncio.ensure_future(self._flush_later(session_id))

    async def _end(
        self, session_id: str, end: dict[str, Any], ttl: float, *, claim: bool
    ) -> tuple[str | None, bool]:
        self._ending = True
        if (flusher := self._flusher) is not None:
            if self._writing:
                await asyncio.shield(flusher)  # order: that batch first
            else:
                flusher.cancel()  # still lingering: its batch goes with the end
            self._flusher = None
        pending, self._pending = ([] if self._failure else self._pending), []
        entry_id, claimed = await self._store.write_end(
            session_id, end, ttl, self._next_id(), pending, claim=claim
        )
        if entry_id is not None:
            self._live.add(LogEntry(entry_id, end=end))
        return entry_id, claimed

    async def finish(self, session_id: str, end: dict[str, Any], ttl: float) -> str:
        """Write what is pending, then the end; its id."""
        entry_id, _claimed = await self._end(session_id, end, ttl, claim=False)
        if entry_id is None:
            raise KeyError(session_id)
        return entry_id

    async def conclude(self, session_id: str, end: dict[str, Any], ttl: float) -> bool:
        """Write what is pending and the end, and claim the callback, in one round trip."""
        return (await self._end(session_id, end, ttl, claim=True))[1]
