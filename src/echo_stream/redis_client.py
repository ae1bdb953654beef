"""The one way the gateway opens Redis: every connect and read bounded, no silent client retries.

Ads, key limits, usage and session streams all share a Redis when `REDIS_URL` is set. Each opens
its own pool through `open_redis`, so a Redis that is down or frozen costs a request at most
`REDIS_TIMEOUT` per round trip (a blocking stream read: its wait plus that), never a hang.
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff


def open_redis(
    url: str, *, timeout: float, read_timeout: float | None = None, decode_responses: bool = True
) -> Redis:
    """A client on its own pool; it connects on first use. `read_timeout` (default `timeout`)
    must exceed the longest blocking command the caller sends."""
    return Redis.from_url(
        url,
        decode_responses=decode_responses,
        socket_timeout=read_timeout or timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )
