"""Feeding a viewer from a log held in this process: the hop from the generating task.

The generating task appends an entry and resolves the futures of the viewers waiting for one;
each viewer takes everything new and waits again. Keep-alive ticks come from ONE timer per
viewer, re-armed only when it fires (about every keep-alive interval), not a timer armed and
cancelled around every wait: on a loop like uvloop that pair costs more than the rest of the hop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field

from echo_stream.sessions.models import LogEntry


def resolve(waiter: asyncio.Future[None]) -> None:
    """Wake a waiting viewer (once)."""
    if not waiter.done():
        waiter.set_result(None)


@dataclass(slots=True)
class Feed:
    """A log's entries in order, and the viewers waiting for the next one."""

    entries: list[LogEntry] = field(default_factory=list)
    waiters: list[asyncio.Future[None]] = field(default_factory=list)
    closed: bool = False
    """No more entries will come (the session was lost or dropped)."""

    def wake(self) -> None:
        """Wake every viewer waiting for the next entry."""
        for waiter in self.waiters:
            resolve(waiter)
        self.waiters.clear()


class _Ticker:
    """A viewer's keep-alive clock: resolves its current wait once idle for `interval` s."""

    __slots__ = ("_handle", "_interval", "_loop", "deadline", "idle", "waiter")

    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float) -> None:
        self._loop = loop
        self._interval = interval
        self.deadline = loop.time() + interval
        self.waiter: asyncio.Future[None] | None = None
        self.idle = False
        self._handle = loop.call_at(self.deadline, self._fire)

    def _fire(self) -> None:
        now = self._loop.time()
        waiter = self.waiter
        if now >= self.deadline and waiter is not None and not waiter.done():
            self.idle = True
            waiter.set_result(None)
            self.deadline = now + self._interval
        self._handle = self._loop.call_at(max(self.deadline, now + 0.001), self._fire)

    def active(self) -> None:
        """Something was sent: the idle interval starts again."""
        self.deadline = self._loop.time() + self._interval

    def stop(self) -> None:
        """The viewer is gone."""
        self._handle.cancel()


async def follow(
    feed: Feed, position: int, keepalive: float, alive: Callable[[], bool] | None = None
) -> AsyncGenerator[LogEntry | None, None]:
    """The feed's entries from index `position` as they come, up to the end entry; None after
    each `keepalive` idle seconds. Stops when the feed is closed, or when `alive` (asked after
    an idle interval) says the log is gone."""
    loop = asyncio.get_running_loop()
    ticker = _Ticker(loop, keepalive)
    entries = feed.entries
    try:
        while True:
            if position < len(entries):
                ticker.active()
                while position < len(entries):
                    entry = entries[position]
                    position += 1
                    yield entry
                    if entry.end is not None:
                        return
            if feed.closed:
                return
            waiter = loop.create_future()
            feed.waiters.append(waiter)
            ticker.waiter = waiter
            await waiter
            if ticker.idle:
                ticker.idle = False
                if waiter in feed.waiters:
                    feed.waiters.remove(waiter)
                if position == len(entries) and not feed.closed:
                    if alive is not None and not alive():
                        return
                    yield None
    finally:
        ticker.stop()
