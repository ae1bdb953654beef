"""`RedisAdStore`: the ad engine's shared state in Redis, shared by every worker and replica.

Key layout, all under the store's prefix (default "echo:ads:"):

    {prefix}impressions        hash    ad id -> impressions delivered
    {prefix}clicks             hash    ad id -> impressions clicked (each at most once)
    {prefix}decisions          hash    outcome -> responses
    {prefix}recent:{user_key}  zset    member "{impression id}:{ad id}", score = delivery time;
                                       trimmed to max_window_s on every write, expires with it
    {prefix}imp:{impression}   hash    ad, url, clicked (set by the first click); expires after
                                       the click TTL
    {prefix}minute:{start}     hash    responses, placed, impressions, clicks of the minute that
                                       starts at unix time {start}; expires after a day

Every method is a single round trip: several commands go in one pipeline, and a click (resolve,
mark clicked, count) is one Lua script so that concurrent clicks on one impression count once.
The counters never expire; `reset` deletes the prefix's keys with SCAN, never KEYS or FLUSHDB.

Failing soft: every call has a connect and a socket timeout (`timeout`, default 1 s), is not
retried by the client, and is bounded as a whole; a Redis that is down or frozen makes a method
raise `StoreUnavailable` (a 503) within about that time instead of hanging, and `ping` says
False. The ad engine treats a failing store as "no ad", so chat keeps working.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from echo_stream.ads.store import DEFAULT_MAX_WINDOW_S, PLACED, AdCounters, AdStats, Impression
from echo_stream.ads.timeline import RETENTION_S, TimelinePoint, bucket_of, buckets_until
from echo_stream.errors import StoreUnavailable
from echo_stream.redis_client import open_redis

T = TypeVar("T")
DEFAULT_TIMEOUT_S = 1.0

# KEYS[1] the impression hash, KEYS[2] the clicks hash, KEYS[3] this minute's bucket;
# ARGV[1] the bucket's TTL in ms. Returns the URL, or nil when unknown.
_CLICK_SCRIPT = """
local target = redis.call('HMGET', KEYS[1], 'ad', 'url')
if not target[2] then
  return false
end
if redis.call('HSETNX', KEYS[1], 'clicked', '1') == 1 then
  redis.call('HINCRBY', KEYS[2], target[1], 1)
  redis.call('HINCRBY', KEYS[3], 'clicks', 1)
  redis.call('PEXPIRE', KEYS[3], ARGV[1])
end
return target[2]
"""

_RESET_BATCH = 500


def _milliseconds(seconds: float) -> int:
    # Redis wants whole milliseconds, and a TTL of 0 would be an error rather than "expired".
    return max(1, math.ceil(seconds * 1000))


def _scan_pattern(prefix: str) -> str:
    """A SCAN MATCH pattern for every key starting with `prefix`, whatever it contains."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", prefix) + "*"


class RedisAdStore:
    """An `AdStore` in Redis, so that caps, budgets and clicks hold across processes."""

    def __init__(
        self,
        client: Redis,
        *,
        prefix: str = "echo:ads:",
        max_window_s: float = DEFAULT_MAX_WINDOW_S,
        timeout: float = DEFAULT_TIMEOUT_S,
        track_clicks: bool = True,
    ) -> None:
        """Use `client` (which must decode responses); the store closes it on `close`."""
        if max_window_s <= 0:
            raise ValueError(f"max_window_s must be positive, got {max_window_s}")
        self._redis = client
        self._timeout = timeout
        self._track_clicks = track_clicks
        self._prefix = prefix
        self._max_window_s = max_window_s
        self._impressions_key = f"{prefix}impressions"
        self._clicks_key = f"{prefix}clicks"
        self._decisions_key = f"{prefix}decisions"
        self._click = client.register_script(_CLICK_SCRIPT)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "echo:ads:",
        max_window_s: float = DEFAULT_MAX_WINDOW_S,
        timeout: float = DEFAULT_TIMEOUT_S,
        track_clicks: bool = True,
    ) -> RedisAdStore:
        """A store with its own connection pool to `url`; it connects on first use."""
        client = open_redis(url, timeout=timeout)
        return cls(
            client,
            prefix=prefix,
            max_window_s=max_window_s,
            timeout=timeout,
            track_clicks=track_clicks,
        )

    async def _call(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Run one round trip, bounded in time; any failure is `StoreUnavailable`."""
        try:
            # The socket timeouts bound each read and connect; this bounds the whole call
            # (a connect plus a command), whatever the client does inside.
            async with asyncio.timeout(self._timeout * 2 + 0.1):
                return await operation()
        except (RedisError, OSError, TimeoutError) as exc:
            raise StoreUnavailable(f"the ad store (Redis) is unavailable: {exc!r}") from exc

    async def ping(self) -> bool:
        """Whether Redis answers within the store's timeout."""
        try:
            return bool(await self._call(self._redis.ping))
        except StoreUnavailable:
            return False

    def _recent_key(self, user_key: str) -> str:
        return f"{self._prefix}recent:{user_key}"

    def _impression_key(self, impression_id: str) -> str:
        return f"{self._prefix}imp:{impression_id}"

    def _minute_key(self, at: float) -> str:
        return f"{self._prefix}minute:{bucket_of(at)}"

    async def recent_ads(self, user_key: str, window_s: float, now: float) -> list[str]:
        members = await self._call(
            lambda: self._redis.zrangebyscore(
                self._recent_key(user_key), f"({now - window_s!r}", "+inf"
            )
        )
        # Impression ids are URL-safe base64, so the first colon ends them; ad ids may hold more.
        return [str(member).split(":", 1)[1] for member in members]

    async def record_impression(self, imp: Impression, *, click_ttl_s: float) -> None:
        recent_key = self._recent_key(imp.user_key)
        impression_key = self._impression_key(imp.id)

        async def write() -> None:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hincrby(self._impressions_key, imp.ad_id, 1)
                pipe.zadd(recent_key, {f"{imp.id}:{imp.ad_id}": imp.at})
                pipe.zremrangebyscore(recent_key, "-inf", imp.at - self._max_window_s)
                pipe.pexpire(recent_key, _milliseconds(self._max_window_s))
                if self._track_clicks and click_ttl_s > 0:  # else no redirect will ask for it
                    pipe.hset(impression_key, mapping={"ad": imp.ad_id, "url": imp.url})
                    pipe.pexpire(impression_key, _milliseconds(click_ttl_s))
                pipe.hincrby(self._minute_key(imp.at), "impressions", 1)
                pipe.pexpire(self._minute_key(imp.at), _milliseconds(RETENTION_S))
                await pipe.execute()

        await self._call(write)

    async def record_click(self, impression_id: str) -> str | None:
        minute_key = self._minute_key(time.time())
        keys = [self._impression_key(impression_id), self._clicks_key, minute_key]
        url = await self._call(lambda: self._click(keys=keys, args=[_milliseconds(RETENTION_S)]))
        return None if url is None else str(url)

    async def impressions(self, ad_id: str) -> int:
        count = await self._call(lambda: self._redis.hget(self._impressions_key, ad_id))
        return int(count or 0)

    async def exhausted(self, budgets: Mapping[str, int]) -> set[str]:
        if not budgets:
            return set()
        ad_ids = list(budgets)
        counts = await self._call(lambda: self._redis.hmget(self._impressions_key, ad_ids))
        return {
            ad_id
            for ad_id, count in zip(ad_ids, counts, strict=True)
            if int(count or 0) >= budgets[ad_id]
        }

    async def record_decision(self, outcome: str, count: int = 1) -> None:
        minute_key = self._minute_key(time.time())

        async def write() -> None:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hincrby(self._decisions_key, outcome, count)
                pipe.hincrby(minute_key, "responses", count)
                if outcome == PLACED:
                    pipe.hincrby(minute_key, "placed", count)
                pipe.pexpire(minute_key, _milliseconds(RETENTION_S))
                await pipe.execute()

        await self._call(write)

    async def stats(self) -> AdStats:
        async def read() -> list[dict[str, str]]:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hgetall(self._impressions_key)
                pipe.hgetall(self._clicks_key)
                pipe.hgetall(self._decisions_key)
                return list(await pipe.execute())

        impressions, clicks, decisions = await self._call(read)
        ads = {
            ad_id: AdCounters(int(impressions.get(ad_id, 0)), int(clicks.get(ad_id, 0)))
            for ad_id in impressions.keys() | clicks.keys()
        }
        return AdStats(ads=ads, decisions={k: int(v) for k, v in decisions.items()})

    async def timeline(self, minutes: int, now: float) -> list[TimelinePoint]:
        starts = buckets_until(now, minutes)

        async def read() -> list[dict[str, str]]:
            async with self._redis.pipeline(transaction=False) as pipe:
                for start in starts:
                    pipe.hgetall(f"{self._prefix}minute:{start}")
                return list(await pipe.execute())

        buckets = await self._call(read)
        return [
            TimelinePoint.from_counts(start, counts)
            for start, counts in zip(starts, buckets, strict=True)
        ]

    async def reset(self) -> None:
        batch: list[str] = []
        async for key in self._redis.scan_iter(match=_scan_pattern(self._prefix), count=1000):
            batch.append(key)
            if len(batch) >= _RESET_BATCH:
                await self._redis.unlink(*batch)
                batch.clear()
        if batch:
            await self._redis.unlink(*batch)

    async def close(self) -> None:
        await self._redis.aclose()
