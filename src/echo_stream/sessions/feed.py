"""Feeding a viewer from a log held in this process: the hop from the generating task.

The generating task appends an entry and resolves the futures of the viewers waiting for one;
each viewer takes everything new and waits again. A viewer that is caught up and can be written
to directly (a `Push`: the server's `http_protocol.BodyWriter`) is instead fed by the generating
task itself, piece by piece, with no task switch: its own task sleeps until the end entry, a
write that cannot go at once (the client pushes back, or left), or a keep-alive tick, and then
goes on from the log where the pushes stopped. Keep-alive ticks come from ONE timer per viewer,
re-armed only when it fires (about every keep-alive interval), not a timer armed and cancelled
around every wait: on a loop like uvloop that pair costs more than the rest of the hop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field

from echo_stream.sessions.models import LogEntry

Push = Callable[[LogEntry], bool]
"""Writes a piece of text straight to a viewer's connection; False when it cannot right now."""


def resolve(waiter: asyncio.Future[None]) -> None:
    """Wake a waiting viewer (once)."""
    if not waiter.done():
        waiter.set_result(None)


@dataclass(slots=True)
class Feed:
    """A log's entries in order, and the viewers waiting for the next one."""

    entries: list[LogEntry] = field(default_factory=list)
    waiters: list[asyncio.Future[None]] = field(default_factory=list)
    pushers: list[_Pusher] = field(default_factory=list)
    """Caught-up viewers fed directly by `add`."""
    closed: bool = False
    """No more entries will come (the session was lost or dropped)."""

    def add(self, entry: LogEntry) -> None:
        """Append `entry`: push it to the caught-up viewers, wake the waiting ones."""
        self.entries.append(entry)
        if self.pushers:
            self.pushers = [pusher for pusher in self.pushers if pusher.take(entry)]
        if self.waiters:
            self.wake()

    def wake(self) -> None:
        """Wake every viewer waiting for the next entry."""
        for waiter in self.waiters:
            resolve(waiter)
        self.waiters.clear()

    def close(self) -> None:
        """No more entries will come: every viewer, pushed or waiting, sees that."""
        self.closed = True
        for pusher in self.pushers:
            resolve(pusher.waiter)
        self.pushers.clear()
        self.wake()


class _Pusher:
    """A caught-up viewer fed by the generating task: `take` writes each text entry straight
    to it until one cannot be written now, or the end comes; then its own task takes over."""

    __slots__ = ("position", "push", "ticker", "waiter")

    def __init__(
        self, push: Push, waiter: asyncio.Future[None], position: int, ticker: _Ticker
    ) -> None:
        self.push = push
        self.waiter = waiter
        self.position = position
        """The index of the next entry the viewer has not been given."""
        self.ticker = ticker

    def take(self, entry: LogEntry) -> bool:
        """Deliver `entry`; False (and the viewer's task woken) when the viewer must go on."""
        if entry.end is None and not self.waiter.done():
            try:
                pushed = self.push(entry)
            except Exception:  # never the generation's problem: the viewer's task retries
                pushed = False
            if pushed:
                self.position += 1
                self.ticker.active()
                return True
        resolve(self.waiter)
        return False


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
    feed: Feed,
    position: int,
    keepalive: float,
    alive: Callable[[], bool] | None = None,
    push: Push | None = None,
) -> AsyncGenerator[LogEntry | None, None]:
    """The feed's entries from index `position` as they come, up to the end entry; None after
    each `keepalive` idle seconds. Stops when the feed is closed, or when `alive` (asked after
    an idle interval) says the log is gone. With `push`, entries that come while the viewer is
    caught up are pushed to it instead (see the module docstring) and not yielded here."""
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
            pusher = None
            if push is None:
                feed.waiters.append(waiter)
            else:
                pusher = _Pusher(push, waiter, position, ticker)
                feed.pushers.append(pusher)
            ticker.waiter = waiter
            try:
                await waiter
            finally:
                if pusher is not None:
                    position = pusher.position
                    if pusher in feed.pushers:
                        feed.pushers.remove(pusher)
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
