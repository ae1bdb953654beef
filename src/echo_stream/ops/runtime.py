"""What operations keep per process: metrics, limits, usage, readiness checks and the drain."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from redis.asyncio import Redis

from echo_stream.ops.counters import MemoryCounters, RedisCounters
from echo_stream.ops.drain import Drain
from echo_stream.ops.keys import KeyTable, load_keys
from echo_stream.ops.limits import Limiter
from echo_stream.ops.metrics import Metrics
from echo_stream.ops.usage import MemoryUsage, RedisUsage, UsageStore
from echo_stream.redis_client import open_redis
from echo_stream.settings import Settings

ReadinessCheck = tuple[str, Callable[[], Awaitable[None]]]
"""A named async check for `/ready`: it returns when the dependency works, raises when not."""

_PING_TIMEOUT_S = 2.0


@dataclass(slots=True)
class Operations:
    metrics: Metrics
    usage: UsageStore
    drain: Drain
    limiter: Limiter | None = None
    keys: KeyTable | None = None
    redis: Redis | None = None
    readiness: list[ReadinessCheck] = field(default_factory=list)
    """Named checks `/ready` runs; other parts (a database) append theirs in the app factory."""

    async def aclose(self) -> None:
        """Close the Redis connection, if any."""
        if self.redis is not None:
            await self.redis.aclose()


def build_operations(settings: Settings) -> Operations:
    """Metrics, the key table from the config file, and memory or Redis counters."""
    keys = load_keys(settings.echo_config) if settings.echo_config else None
    redis: Redis | None = None
    if settings.redis_url:
        redis = open_redis(
            settings.redis_url, timeout=settings.redis_timeout, decode_responses=False
        )
    prefix = settings.redis_key_prefix
    counters = RedisCounters(redis, prefix + "limits:") if redis else MemoryCounters()
    usage: UsageStore = RedisUsage(redis, prefix + "usage:") if redis else MemoryUsage()
    ops = Operations(
        metrics=Metrics(),
        usage=usage,
        drain=Drain(settings.shutdown_grace_seconds),
        limiter=Limiter(keys, counters) if keys is not None else None,
        keys=keys,
        redis=redis,
    )
    if redis is not None:
        ops.readiness.append(("redis", _redis_ping(redis)))
    return ops


def _redis_ping(redis: Redis) -> Callable[[], Awaitable[None]]:
    async def ping() -> None:
        async with asyncio.timeout(_PING_TIMEOUT_S):
            await redis.ping()

    return ping
