"""One behavioural suite for every `AdStore`, run against memory and the local Redis.

The Redis variant needs the server at 127.0.0.1:6379. Without it those tests are skipped, except
under CI (CI=true), where they fail: CI must exercise the store the replicas share.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from uuid import uuid4

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from echo_stream.ads.redis_store import RedisAdStore
from echo_stream.ads.store import (
    PLACED,
    AdCounters,
    AdStats,
    AdStore,
    Impression,
    MemoryAdStore,
    make_ad_store,
)
from echo_stream.ads.timeline import TimelinePoint, bucket_of

REDIS_URL = "redis://127.0.0.1:6379/0"
REDIS_UNREACHABLE = "Redis not reachable at 127.0.0.1:6379 (start it: see README)"
T0 = 1_700_000_000.0
HOUR = 3600.0


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    async def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Backend:
    """A store under test, and how to let its own clock (click expiry) move on."""

    store: AdStore
    pass_time: Callable[[float], Awaitable[None]]
    now: Callable[[], float] = time.time
    """The store's own clock (it dates decisions and clicks)."""


def impression(
    ad_id: str = "ad-1", *, user: str = "alice", at: float = T0, url: str | None = None
) -> Impression:
    return Impression(
        id=uuid4().hex,
        ad_id=ad_id,
        user_key=user,
        url=url or f"https://example.com/{ad_id}",
        at=at,
    )


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture
async def redis_client() -> AsyncIterator[Redis]:
    """A raw client for the local Redis; skips (fails under CI) when it is not running."""
    client = Redis.from_url(REDIS_URL, decode_responses=True, socket_connect_timeout=1)
    try:
        await client.ping()
    except (RedisConnectionError, RedisTimeoutError, OSError):
        await client.aclose()
        if _in_ci():
            pytest.fail(f"{REDIS_UNREACHABLE}; CI must run the Redis tests", pytrace=False)
        pytest.skip(REDIS_UNREACHABLE)
    yield client
    await client.aclose()


@pytest.fixture
def redis_prefix() -> str:
    return f"test:{uuid4().hex}:"


@pytest.fixture
async def redis_stores(
    redis_client: Redis, redis_prefix: str
) -> AsyncIterator[Callable[[], RedisAdStore]]:
    """Makes stores sharing one unique prefix (like workers of one deployment); cleans it up."""
    stores: list[RedisAdStore] = []

    def make() -> RedisAdStore:
        store = RedisAdStore.from_url(REDIS_URL, prefix=redis_prefix)
        stores.append(store)
        return store

    yield make
    if stores:
        await stores[0].reset()
    for store in stores:
        await store.close()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "memory":
        clock = FakeClock()
        yield Backend(MemoryAdStore(clock=clock), clock.advance, clock)
    else:
        make: Callable[[], RedisAdStore] = request.getfixturevalue("redis_stores")
        yield Backend(make(), asyncio.sleep)


# --- the delivery log ----------------------------------------------------------------------


async def test_recent_ads_of_an_unknown_user_is_empty(backend: Backend) -> None:
    assert await backend.store.recent_ads("nobody", HOUR, T0) == []


async def test_recent_ads_are_oldest_first_and_keep_repeats(backend: Backend) -> None:
    store = backend.store
    for offset, ad_id in [(0, "a"), (10, "b"), (20, "a")]:
        await store.record_impression(impression(ad_id, at=T0 + offset), click_ttl_s=60)

    assert await store.recent_ads("alice", HOUR, T0 + 30) == ["a", "b", "a"]


async def test_recent_ads_are_ordered_by_delivery_time_not_arrival(backend: Backend) -> None:
    store = backend.store
    await store.record_impression(impression("late", at=T0 + 5), click_ttl_s=60)
    await store.record_impression(impression("early", at=T0 + 1), click_ttl_s=60)

    assert await store.recent_ads("alice", HOUR, T0 + 10) == ["early", "late"]


async def test_recent_ads_drop_deliveries_older_than_the_window(backend: Backend) -> None:
    store = backend.store
    for offset, ad_id in [(0, "old"), (30, "edge"), (45, "new")]:
        await store.record_impression(impression(ad_id, at=T0 + offset), click_ttl_s=60)

    # window 60 s at T0+90: "old" (90 s ago) is out, "edge" (exactly 60 s ago) is out too.
    assert await store.recent_ads("alice", 60, T0 + 90) == ["new"]
    assert await store.recent_ads("alice", 60.5, T0 + 90) == ["edge", "new"]
    assert await store.recent_ads("alice", 1, T0 + 90) == []
    assert await store.recent_ads("alice", HOUR, T0 + 90) == ["old", "edge", "new"]


async def test_recent_ads_are_per_user(backend: Backend) -> None:
    store = backend.store
    await store.record_impression(impression("a", user="alice"), click_ttl_s=60)
    await store.record_impression(impression("b", user="bob"), click_ttl_s=60)

    assert await store.recent_ads("alice", HOUR, T0) == ["a"]
    assert await store.recent_ads("bob", HOUR, T0) == ["b"]


async def test_ad_ids_with_colons_survive_the_log(backend: Backend) -> None:
    await backend.store.record_impression(impression("acme:spring:v2"), click_ttl_s=60)

    assert await backend.store.recent_ads("alice", HOUR, T0) == ["acme:spring:v2"]


async def test_the_log_forgets_deliveries_beyond_the_longest_window(backend: Backend) -> None:
    store = backend.store
    day = 24 * HOUR  # the default max_window_s
    await store.record_impression(impression("yesterday", at=T0), click_ttl_s=60)
    await store.record_impression(impression("today", at=T0 + day + 1), click_ttl_s=60)

    assert await store.recent_ads("alice", 10 * day, T0 + day + 2) == ["today"]


# --- impressions, budgets and clicks -------------------------------------------------------


async def test_impressions_count_per_ad(backend: Backend) -> None:
    store = backend.store
    for ad_id in ["a", "a", "b"]:
        await store.record_impression(impression(ad_id), click_ttl_s=60)

    assert await store.impressions("a") == 2
    assert await store.impressions("b") == 1
    assert await store.impressions("never-shown") == 0


async def test_exhausted_lists_ads_at_or_over_budget(backend: Backend) -> None:
    store = backend.store
    for ad_id in ["a", "a", "b", "c", "c", "c"]:
        await store.record_impression(impression(ad_id), click_ttl_s=60)

    budgets = {"a": 2, "b": 5, "c": 2, "unseen": 1, "free": 0}
    assert await store.exhausted(budgets) == {"a", "c", "free"}
    assert await store.exhausted({}) == set()


async def test_a_click_resolves_the_url_and_counts_once(backend: Backend) -> None:
    store = backend.store
    imp = impression("a", url="https://advertiser.example/landing?x=1")
    await store.record_impression(imp, click_ttl_s=60)

    assert await store.record_click(imp.id) == "https://advertiser.example/landing?x=1"
    assert await store.record_click(imp.id) == "https://advertiser.example/landing?x=1"
    assert (await store.stats()).ads["a"] == AdCounters(impressions=1, clicks=1)


async def test_clicks_on_different_impressions_of_an_ad_all_count(backend: Backend) -> None:
    store = backend.store
    first, second = impression("a"), impression("a", user="bob")
    for imp in (first, second):
        await store.record_impression(imp, click_ttl_s=60)
        await store.record_click(imp.id)

    assert (await store.stats()).ads["a"] == AdCounters(impressions=2, clicks=2)


async def test_an_unknown_impression_resolves_to_nothing(backend: Backend) -> None:
    assert await backend.store.record_click("no-such-impression") is None
    assert (await backend.store.stats()).ads == {}


async def test_an_impression_is_forgotten_after_its_click_ttl(backend: Backend) -> None:
    store = backend.store
    lasting, fleeting = impression("a"), impression("b")
    await store.record_impression(lasting, click_ttl_s=60)
    await store.record_impression(fleeting, click_ttl_s=0.05)

    await backend.pass_time(0.2)

    assert await store.record_click(fleeting.id) is None
    assert await store.record_click(lasting.id) == lasting.url
    stats = await store.stats()
    assert stats.ads["b"] == AdCounters(impressions=1, clicks=0)
    assert stats.ads["a"] == AdCounters(impressions=1, clicks=1)


# --- decisions and stats -------------------------------------------------------------------


async def test_decisions_give_the_fill_rate(backend: Backend) -> None:
    store = backend.store
    for outcome in [PLACED, PLACED, PLACED, "rate", "sensitive_topic", "rate", "frequency_cap"]:
        await store.record_decision(outcome)
    await store.record_decision("below_min_relevance")

    stats = await store.stats()
    assert stats.decisions == {
        PLACED: 3,
        "rate": 2,
        "sensitive_topic": 1,
        "frequency_cap": 1,
        "below_min_relevance": 1,
    }
    assert stats.responses == 8
    assert stats.fill_rate == 3 / 8


async def test_decisions_counted_together_add_up_like_one_at_a_time(backend: Backend) -> None:
    store = backend.store
    if bucket_of(backend.now() + 5) != bucket_of(backend.now()):
        await backend.pass_time(6)  # keep the whole test inside one minute of the store's clock
    await store.record_decision(PLACED, 3)
    await store.record_decision("rate", 5)
    await store.record_decision(PLACED)

    stats = await store.stats()
    assert stats.decisions == {PLACED: 4, "rate": 5}
    assert stats.responses == 9
    [minute] = [p for p in await store.timeline(2, backend.now()) if p.responses]
    assert (minute.responses, minute.placed) == (9, 4)


async def test_stats_to_dict_is_json_ready(backend: Backend) -> None:
    store = backend.store
    clicked = impression("b")
    for imp in [impression("a"), clicked, impression("b"), impression("b"), impression("b")]:
        await store.record_impression(imp, click_ttl_s=60)
    await store.record_click(clicked.id)
    await store.record_decision(PLACED)
    await store.record_decision("client_disconnected")

    as_dict = (await store.stats()).to_dict()

    assert as_dict == {
        "ads": {
            "a": {"impressions": 1, "clicks": 0, "ctr": 0.0},
            "b": {"impressions": 4, "clicks": 1, "ctr": 0.25},
        },
        "decisions": {"client_disconnected": 1, PLACED: 1},
        "fill_rate": 0.5,
        "responses": 2,
    }
    assert json.loads(json.dumps(as_dict)) == as_dict


async def test_reset_forgets_everything(backend: Backend) -> None:
    store = backend.store
    imp = impression("a")
    await store.record_impression(imp, click_ttl_s=60)
    await store.record_decision(PLACED)

    await store.reset()

    assert await store.recent_ads("alice", HOUR, T0) == []
    assert await store.impressions("a") == 0
    assert await store.record_click(imp.id) is None
    assert await store.stats() == AdStats(ads={}, decisions={})


# --- Redis only: sharing, isolation, key hygiene ----------------------------------------------


@pytest.mark.redis
async def test_workers_sharing_a_prefix_see_each_others_state(
    redis_stores: Callable[[], RedisAdStore],
) -> None:
    worker_1, worker_2 = redis_stores(), redis_stores()
    imp = impression("a")
    await worker_1.record_impression(imp, click_ttl_s=60)
    await worker_2.record_impression(impression("a", at=T0 + 1), click_ttl_s=60)
    await worker_1.record_decision(PLACED)
    await worker_2.record_decision("rate")

    assert await worker_2.record_click(imp.id) == imp.url
    assert await worker_1.recent_ads("alice", HOUR, T0 + 2) == ["a", "a"]
    assert await worker_2.exhausted({"a": 2}) == {"a"}
    for worker in (worker_1, worker_2):
        stats = await worker.stats()
        assert stats.ads == {"a": AdCounters(impressions=2, clicks=1)}
        assert stats.fill_rate == 0.5


@pytest.mark.redis
async def test_concurrent_clicks_from_many_workers_count_once(
    redis_stores: Callable[[], RedisAdStore],
) -> None:
    workers = [redis_stores() for _ in range(3)]
    imp = impression("a")
    await workers[0].record_impression(imp, click_ttl_s=60)

    urls = await asyncio.gather(*(workers[i % 3].record_click(imp.id) for i in range(30)))

    assert set(urls) == {imp.url}
    assert (await workers[1].stats()).ads["a"].clicks == 1


@pytest.mark.redis
async def test_reset_leaves_other_prefixes_alone(redis_client: Redis, redis_prefix: str) -> None:
    # A prefix with glob characters: reset must match it literally, not as a pattern.
    owner = f"test:{uuid4().hex}"
    store = RedisAdStore(
        Redis.from_url(REDIS_URL, decode_responses=True), prefix=f"{owner}:[ads]*:"
    )
    neighbours = [f"{owner}:a*:impressions", f"{owner}:s:x", f"{owner}:[ads]*", redis_prefix + "x"]
    try:
        for key in neighbours:
            await redis_client.set(key, "keep")
        await store.record_impression(impression("a"), click_ttl_s=60)
        await store.record_decision(PLACED)

        await store.reset()

        assert await redis_client.mget(neighbours) == ["keep"] * len(neighbours)
        assert await store.stats() == AdStats(ads={}, decisions={})
        assert await redis_client.exists(f"{owner}:[ads]*:impressions") == 0
    finally:
        await redis_client.delete(*neighbours)
        await store.close()


@pytest.mark.redis
async def test_every_key_is_under_the_prefix_and_per_event_keys_expire(
    redis_client: Redis, redis_stores: Callable[[], RedisAdStore], redis_prefix: str
) -> None:
    store = redis_stores()
    imp = impression("a")
    await store.record_impression(imp, click_ttl_s=60)
    await store.record_click(imp.id)
    await store.record_decision(PLACED)

    keys = {k async for k in redis_client.scan_iter(match=f"{redis_prefix}*")}

    minutes = {key for key in keys if key.startswith(f"{redis_prefix}minute:")}
    assert keys - minutes == {
        f"{redis_prefix}{name}"
        for name in ["impressions", "clicks", "decisions", "recent:alice", f"imp:{imp.id}"]
    }
    assert 1 <= len(minutes) <= 3  # delivery, click and decision minutes
    for key in minutes:
        assert 0 < await redis_client.pttl(key) <= (24 * 3600 + 60) * 1000
    assert 0 < await redis_client.pttl(f"{redis_prefix}imp:{imp.id}") <= 60_000
    assert 0 < await redis_client.pttl(f"{redis_prefix}recent:alice") <= 24 * 3_600_000


# --- counters over time ------------------------------------------------------------------


async def test_the_timeline_counts_each_minute_oldest_first(backend: Backend) -> None:
    store = backend.store
    if bucket_of(backend.now() + 5) != bucket_of(backend.now()):
        await backend.pass_time(6)  # keep the whole test inside one minute of the store's clock
    now = backend.now()
    shown = impression("a", at=now)
    await store.record_impression(shown, click_ttl_s=HOUR)
    await store.record_impression(impression("b", at=now - 120), click_ttl_s=HOUR)
    await store.record_click(shown.id)
    await store.record_decision(PLACED)
    await store.record_decision("rate")

    points = await store.timeline(5, now)

    assert [p.start for p in points] == [bucket_of(now) - 60 * back for back in (4, 3, 2, 1, 0)]
    assert points[-1] == TimelinePoint(
        bucket_of(now), responses=2, placed=1, impressions=1, clicks=1
    )
    assert points[2] == TimelinePoint(bucket_of(now) - 120, impressions=1)
    assert points[0] == TimelinePoint(bucket_of(now) - 240)
    assert points[-1].to_dict()["clicks"] == 1


async def test_a_repeated_click_counts_once_in_the_timeline(backend: Backend) -> None:
    store = backend.store
    shown = impression("a", at=backend.now())
    await store.record_impression(shown, click_ttl_s=HOUR)
    await store.record_click(shown.id)
    await store.record_click(shown.id)
    points = await store.timeline(3, backend.now() + 60)
    assert sum(p.clicks for p in points) == 1


# --- the parts without a backend -----------------------------------------------------------


def test_counters_and_stats_are_zero_when_empty() -> None:
    assert AdCounters().ctr == 0.0
    assert AdStats(ads={}, decisions={}).fill_rate == 0.0
    assert AdStats(ads={}, decisions={}).to_dict() == {
        "ads": {},
        "decisions": {},
        "fill_rate": 0.0,
        "responses": 0,
    }


async def test_make_ad_store_picks_memory_without_a_redis_url() -> None:
    assert isinstance(make_ad_store(None), MemoryAdStore)


async def test_make_ad_store_picks_redis_with_a_url_and_does_no_io() -> None:
    store = make_ad_store("redis://127.0.0.1:1/0", prefix="echo:test:")
    assert isinstance(store, RedisAdStore)
    await store.close()
