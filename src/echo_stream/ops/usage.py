"""Usage per client key, model and day (UTC): requests, input and output tokens.

In memory, or in Redis hashes (one per day, kept 400 days) shared by every worker and replica.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis

_KEEP_S = 400 * 24 * 3600
_FIELDS = ("requests", "input_tokens", "output_tokens")


@dataclass(frozen=True, slots=True, order=True)
class UsageRow:
    """One key's use of one model on one day."""

    day: str
    key_id: str
    model: str
    requests: int
    input_tokens: int
    output_tokens: int


class UsageStore(Protocol):
    async def record(
        self, day: str, key: str, model: str, input_tokens: int, output_tokens: int
    ) -> None:
        """Add one request and its tokens."""
        ...

    async def rows(self, day: str) -> list[UsageRow]:
        """Everything recorded for `day` (`YYYY-MM-DD`)."""
        ...


class MemoryUsage:
    """This process's usage only."""

    def __init__(self) -> None:
        self._days: dict[str, dict[tuple[str, str], list[int]]] = defaultdict(dict)

    async def record(
        self, day: str, key: str, model: str, input_tokens: int, output_tokens: int
    ) -> None:
        counts = self._days[day].setdefault((key, model), [0, 0, 0])
        counts[0] += 1
        counts[1] += input_tokens
        counts[2] += output_tokens

    async def rows(self, day: str) -> list[UsageRow]:
        found = self._days.get(day, {})
        return sorted(UsageRow(day, k, m, *counts) for (k, m), counts in found.items())


class RedisUsage:
    """Usage in one Redis hash per day: field `key|model|counter`."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    async def record(
        self, day: str, key: str, model: str, input_tokens: int, output_tokens: int
    ) -> None:
        name = f"{self._prefix}{day}"
        base = f"{key}|{model}|"
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hincrby(name, base + "requests", 1)
            if input_tokens:
                pipe.hincrby(name, base + "input_tokens", input_tokens)
            if output_tokens:
                pipe.hincrby(name, base + "output_tokens", output_tokens)
            pipe.expire(name, _KEEP_S)
            await pipe.execute()

    async def rows(self, day: str) -> list[UsageRow]:
        raw: dict[bytes | str, bytes | str] = await self._redis.hgetall(f"{self._prefix}{day}")
        table: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
        for field, value in raw.items():
            text = field.decode() if isinstance(field, bytes) else field
            key, _, rest = text.partition("|")
            model, _, counter = rest.rpartition("|")
            if counter in _FIELDS:
                table[(key, model)][counter] = int(value)
        return sorted(
            UsageRow(day, key, model, *(counts.get(name, 0) for name in _FIELDS))
            for (key, model), counts in table.items()
        )
