"""Time budgets for a whole answer and for the silence between its chunks (a pipeline stage).

A per-chunk `asyncio.timeout` would cost a timer per chunk. Instead one lazy watchdog timer is
armed for the earliest possible expiry; each wait for the next event only records when it
started. When the timer fires it checks the real deadline and either re-arms or cancels the
waiting task, which the stage turns into `UpstreamTimeout`. Only time spent waiting on the
upstream counts against the between-chunks budget (a slow client is not the upstream's fault),
and it starts after the first event: the wait for the first token is bounded by the total.
"""

from __future__ import annotations

import asyncio
from contextlib import aclosing

from echo_stream.errors import UpstreamTimeout
from echo_stream.events import EventStream


class _Watchdog:
    __slots__ = ("deadline", "fired", "gap", "handle", "loop", "since", "task", "waiting")

    def __init__(self, total: float, gap: float) -> None:
        self.loop = asyncio.get_running_loop()
        self.task = asyncio.current_task()
        self.deadline = self.loop.time() + total
        self.gap = gap
        self.since: float | None = None
        """When the current wait for an event began; None before the first event."""
        self.waiting = False
        self.fired: str | None = None
        self.handle = self.loop.call_at(self.deadline, self.check)

    def next_check(self, now: float) -> float:
        gap_end = (self.since if self.waiting and self.since is not None else now) + self.gap
        return min(self.deadline, gap_end)

    def rearm(self) -> None:
        self.handle.cancel()
        self.handle = self.loop.call_at(self.next_check(self.loop.time()), self.check)

    def check(self) -> None:
        now = self.loop.time()
        if self.waiting and self.task is not None:
            if now >= self.deadline:
                self.fired = "total"
            elif self.since is not None and now - self.since >= self.gap:
                self.fired = "gap"
            if self.fired:
                self.task.cancel()
                return
        self.handle = self.loop.call_at(self.next_check(now), self.check)


async def within_budget(events: EventStream, total: float, gap: float) -> EventStream:
    """Fail with `UpstreamTimeout` after `total` seconds, or `gap` seconds without an event."""
    watch = _Watchdog(total, gap)
    try:
        async with aclosing(events):
            while True:
                watch.waiting = True
                try:
                    event = await anext(events)
                except StopAsyncIteration:
                    return
                except asyncio.CancelledError:
                    if watch.fired and watch.task is not None and watch.task.uncancel() == 0:
                        raise _timeout(watch.fired, total, gap) from None
                    raise
                finally:
                    watch.waiting = False
                if watch.since is None:
                    # From now on the between-chunks budget applies: re-arm for it.
                    watch.rearm()
                yield event
                watch.since = watch.loop.time()
                if watch.since >= watch.deadline:
                    raise _timeout("total", total, gap)
    finally:
        watch.handle.cancel()


def _timeout(which: str | None, total: float, gap: float) -> UpstreamTimeout:
    if which == "gap":
        return UpstreamTimeout(f"no chunk arrived for {gap:g} s (between-chunks timeout)")
    return UpstreamTimeout(f"the answer took longer than {total:g} s (total timeout)")
