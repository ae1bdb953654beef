"""Ad-store writes off the response path: queued, and run by as few tasks as keep up.

Every response with an ad decision writes to the store (a decision, impressions). A task per
write costs more than the in-memory write itself, so writes queue here and one drainer task
runs them in order; a remote store (Redis) gets a few drainers, so its round trips overlap
while the queue is long. The queue is bounded: if the store stops answering, the oldest
writes are dropped (and counted in the log) rather than memory growing without end.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)

Work = Coroutine[Any, Any, None]

MAX_QUEUED = 10_000
_PER_DRAINER = 16
"""Queued writes per running drainer before another one starts (up to `drainers`)."""


class Bookkeeper:
    """Runs queued store writes in the background (see the module docstring)."""

    def __init__(self, drainers: int = 1, max_queued: int = MAX_QUEUED) -> None:
        self._queue: deque[Work] = deque()
        self._max_drainers = drainers
        self._max_queued = max_queued
        self._drainers: set[asyncio.Task[None]] = set()
        self.dropped = 0
        """Writes dropped because the queue was full."""

    def add(self, work: Work) -> None:
        """Queue `work`; it runs soon, after what was queued before it."""
        queue = self._queue
        if len(queue) >= self._max_queued:
            queue.popleft().close()
            self.dropped += 1
            if self.dropped % 1000 == 1:
                log.warning("ad bookkeeping is behind: %d writes dropped so far", self.dropped)
        queue.append(work)
        running = len(self._drainers)
        if running == 0 or (running < self._max_drainers and len(queue) > running * _PER_DRAINER):
            task = asyncio.ensure_future(self._drain())
            self._drainers.add(task)
            task.add_done_callback(self._drainers.discard)

    async def _drain(self) -> None:
        queue = self._queue
        while queue:
            work = queue.popleft()
            try:
                await work
            except Exception:
                log.exception("ad bookkeeping failed")

    async def settled(self) -> None:
        """Return once every queued write has run."""
        while self._drainers:
            await asyncio.wait(set(self._drainers))

    async def aclose(self, grace: float = 5.0) -> None:
        """Let the queued writes finish, for up to `grace` seconds; drop the rest."""
        if self._drainers:
            await asyncio.wait(set(self._drainers), timeout=grace)
        for task in list(self._drainers):
            task.cancel()
        while self._queue:
            self._queue.popleft().close()
