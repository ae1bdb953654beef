"""Counters per fixed time window, in memory or in Redis (shared by workers and replicas)."""

from __future__ import annotations

import time
from typing import Protocol

from redis.asyncio import Redis


class WindowCounters(Protocol):
    """Integer counters that start again at zero in each window of `window_s` seconds."""

    async def add(self, name: str, amount: int, window_s: int) -> int:
        """Add `amount` to `name` in the current window; returns the new total."""
        ...

    async def get(self, name: str, window_s: int) -> int:
        """The current window's total for `name`."""
        ...


def window_index(window_s: int, now: float | None = None) -> int:
    """Which window `now` falls in."""
    return int((time.time() if now is None else now) // window_s)


def window_reset_s(window_s: int, now: float | None = None) -> float:
    """Seconds until the current window ends."""
    moment = time.time() if now is None else now
    return window_s - moment % window_s


class MemoryCounters:
    """One process's counters; old windows are dropped as new ones start."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, int, int], int] = {}

    async def add(self, name: str, amount: int, window_s: int) -> int:
        index = window_index(window_s)
        key = (name, window_s, index)
        if key not in self._counts and len(self._counts) > 10_000:
            self._counts = {k: v for k, v in self._counts.items() if k[2] >= index}
        total = self._counts.get(key, 0) + amount
        self._counts[key] = total
        return total

    async def get(self, name: str, window_s: int) -> int:
        return self._counts.get((name, window_s, window_index(window_s)), 0)


class RedisCounters:
    """Counters in Redis: `INCRBY` on a key per window that expires after it."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    def _key(self, name: str, window_s: int) -> str:
        return f"{self._prefix}{name}:{window_s}:{window_index(window_s)}"

    async def add(self, name: str, amount: int, window_s: int) -> int:
        key = self._key(name, window_s)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.incrby(key, amount)
            pipe.expire(key, window_s * 2)
            total, _ = await pipe.execute()
        return int(total)

    async def get(self, name: str, window_s: int) -> int:
        value = await self._redis.get(self._key(name, window_s))
        return int(value or 0)
