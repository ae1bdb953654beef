"""One behavioural suite for both session stores (memory, and the local Redis)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from echo_stream.sessions.models import Session
from echo_stream.sessions.redis_store import RedisSessionStore
from echo_stream.sessions.store import MemorySessionStore, SessionStore
from tests.sessions.conftest import REDIS_URL


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[SessionStore]:
    if request.param == "memory":
        yield MemorySessionStore()
        return
    prefix: str = request.getfixturevalue("redis_prefix")
    redis_store = RedisSessionStore.from_url(REDIS_URL, prefix=prefix)
    yield redis_store
    await redis_store.aclose()


def _session(session_id: str = "s1") -> Session:
    return Session(
        id=session_id,
        token_hash="h" * 64,
        prompt="Hi",
        model="echo-mock",
        max_tokens=100,
        resume_url="http://n8n:5678/webhook-waiting/1",
        user_id=7,
        chat_id="c1",
        created_at=1.5,
    )


async def test_a_session_round_trips(store: SessionStore) -> None:
    assert await store.view("s1") is None
    await store.create(_session(), ttl=30)
    view = await store.view("s1")
    assert view is not None
    assert view.session == _session()
    assert view.started is None and not view.finished


async def test_claims_are_won_once(store: SessionStore) -> None:
    await store.create(_session(), ttl=30)
    assert await store.claim("s1", "start", "run", 60)
    assert not await store.claim("s1", "start", "expired", 60)
    assert await store.claim("s1", "callback", "claimed", 60)
    assert not await store.claim("s1", "callback", "claimed", 60)
    assert not await store.claim("unknown", "start", "run", 60)
    view = await store.view("s1")
    assert view is not None and view.started == "run"


async def test_the_log_resumes_after_any_event_with_no_gap_or_duplicate(
    store: SessionStore,
) -> None:
    await store.create(_session(), ttl=30)
    await store.claim("s1", "start", "run", 60)
    pieces = ["Hello", ", ", "world\n", "", "  two  ", "ünïcode ✓"]
    ids = [await store.append("s1", piece) for piece in pieces]
    assert len(set(ids)) == len(ids)
    assert all(store.valid_event_id(i) for i in ids)
    end_id = await store.finish("s1", {"status": "complete", "error": None}, ttl=30)
    everything = await store.read("s1", None, 0)
    assert [e.text for e in everything[:-1]] == pieces
    assert everything[-1].id == end_id and everything[-1].end == {
        "status": "complete",
        "error": None,
    }
    for position, entry in enumerate(everything):
        rest = await store.read("s1", entry.id, 0)
        assert rest == everything[position + 1 :]
    view = await store.view("s1")
    assert view is not None and view.finished


async def test_a_reader_waits_for_the_next_event(store: SessionStore) -> None:
    await store.create(_session(), ttl=30)
    await store.claim("s1", "start", "run", 60)
    first = await store.append("s1", "a")
    waiting = asyncio.ensure_future(store.read("s1", first, 10))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await store.append("s1", "b")
    entries = await asyncio.wait_for(waiting, 10)
    assert [e.text for e in entries] == ["b"]


async def test_a_read_with_nothing_new_returns_empty_after_the_wait(store: SessionStore) -> None:
    await store.create(_session(), ttl=30)
    await store.claim("s1", "start", "run", 60)
    last = await store.append("s1", "a")
    assert await store.read("s1", last, 0.05) == []
    assert await store.read("missing", None, 0) == []


async def test_appending_to_an_unknown_session_fails(store: SessionStore) -> None:
    with pytest.raises(KeyError):
        await store.append("missing", "x")
    with pytest.raises(KeyError):
        await store.finish("missing", {"status": "complete"}, ttl=1)


async def test_event_id_shapes(store: SessionStore) -> None:
    await store.create(_session(), ttl=30)
    await store.claim("s1", "start", "run", 60)
    good = await store.append("s1", "a")
    assert store.valid_event_id(good)
    for bad in ("", "abc", "1-2-3", "1; DROP", "9" * 50, "-1"):
        assert not store.valid_event_id(bad)


async def test_memory_sessions_expire_at_their_ttl() -> None:
    clock = Clock()
    store = MemorySessionStore(clock=clock)
    await store.create(_session("a"), ttl=60)
    await store.create(_session("b"), ttl=60)
    assert await store.claim("b", "start", "run", 600)
    clock.now += 61
    assert await store.view("a") is None  # nobody came: gone at the TTL
    assert await store.view("b") is not None  # generating: kept for the longest run
    await store.finish("b", {"status": "complete"}, ttl=60)
    clock.now += 61
    assert await store.view("b") is None


@pytest.mark.redis
async def test_redis_keys_carry_the_ttl_and_stay_under_the_prefix(redis_prefix: str) -> None:
    store = RedisSessionStore.from_url(REDIS_URL, prefix=redis_prefix)
    raw = Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        await store.create(_session(), ttl=30)
        assert 0 < await raw.pttl(redis_prefix + "s1") <= 30_000
        await store.claim("s1", "start", "run", 600)
        await store.append("s1", "x")
        hash_ttl = await raw.pttl(redis_prefix + "s1")
        log_ttl = await raw.pttl(redis_prefix + "s1:log")
        assert 30_000 < hash_ttl <= 600_000 and 30_000 < log_ttl <= 600_000
        await store.finish("s1", {"status": "complete"}, ttl=20)
        assert 0 < await raw.pttl(redis_prefix + "s1:log") <= 20_000
        keys = [k async for k in raw.scan_iter(match=redis_prefix + "*")]
        assert sorted(keys) == [redis_prefix + "s1", redis_prefix + "s1:log"]
        # Two processes' stores see the same session.
        other = RedisSessionStore.from_url(REDIS_URL, prefix=redis_prefix)
        assert [e.text for e in await other.read("s1", None, 0)][:1] == ["x"]
        await other.aclose()
    finally:
        await raw.aclose()
        await store.aclose()


async def test_attach_claims_start_once_and_only_for_the_right_token(store: SessionStore) -> None:
    assert await store.attach("missing", "h" * 64, 60) == (None, False)
    await store.create(_session(), ttl=30)
    view, won = await store.attach("s1", "x" * 64, 60)  # wrong token: seen, not started
    assert view is not None and view.session == _session() and not won
    view, won = await store.attach("s1", "h" * 64, 60)
    assert view is not None and view.started is None and won  # the view from before the claim
    view, won = await store.attach("s1", "h" * 64, 60)
    assert view is not None and view.started == "run" and not won
    assert not await store.claim("s1", "start", "expired", 60)


async def test_attach_never_starts_a_finished_or_expired_session(store: SessionStore) -> None:
    await store.create(_session("a"), ttl=30)
    assert await store.claim("a", "start", "expired", 30)
    await store.finish("a", {"status": "expired"}, ttl=30)
    view, won = await store.attach("a", "h" * 64, 60)
    assert view is not None and view.finished and not won
