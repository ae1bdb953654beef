"""Redis for the session tests: a unique key prefix per test, every key under it deleted after."""

from __future__ import annotations

import os
from collections.abc import Iterator
from uuid import uuid4

import pytest
from redis import Redis
from redis.exceptions import RedisError

REDIS_URL = "redis://127.0.0.1:6379/0"


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A fresh prefix on the local Redis; skips (fails under CI) when Redis is not running."""
    client = Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except (RedisError, OSError):
        client.close()
        reason = "Redis not reachable at 127.0.0.1:6379"
        if _in_ci():
            pytest.fail(f"{reason}; CI must run the Redis tests", pytrace=False)
        pytest.skip(reason)
    prefix = f"test:i9:{uuid4().hex}:"
    try:
        yield prefix
    finally:
        keys = list(client.scan_iter(match=prefix + "*", count=500))
        if keys:
            client.delete(*keys)
        client.close()
