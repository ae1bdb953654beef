"""Stores fail soft and stay bounded: a Redis that is down or frozen gives `StoreUnavailable`
(a 503 on the ad endpoints) within a bounded time while chat keeps answering; the in-memory
store holds a bounded number of click targets and users."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import httpx
import pytest

from echo_stream.ads.redis_store import RedisAdStore
from echo_stream.ads.store import Impression, MemoryAdStore
from echo_stream.errors import StoreUnavailable
from tests.conftest import make_app


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _frozen_redis() -> tuple[asyncio.Server, int]:
    """Accepts connections and reads, but never answers (a Redis stopped with SIGSTOP)."""

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(65536):
            pass

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


@pytest.fixture(params=["down", "frozen"])
async def dead_redis_url(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    if request.param == "down":
        yield f"redis://127.0.0.1:{_closed_port()}/0"
        return
    server, port = await _frozen_redis()
    yield f"redis://127.0.0.1:{port}/0"
    server.close()


async def test_every_call_fails_as_store_unavailable_in_bounded_time(dead_redis_url: str) -> None:
    store = RedisAdStore.from_url(dead_redis_url, prefix="i7-failsoft:", timeout=0.2)
    imp = Impression("imp1", "ad1", "u", "https://example.com", 1.0)
    try:
        async with asyncio.timeout(20):  # a hang fails the test; no timing is asserted
            assert await store.ping() is False
            for call in (
                store.record_click("imp1"),
                store.stats(),
                store.recent_ads("u", 60, 2.0),
                store.record_impression(imp, click_ttl_s=60),
                store.record_decision("placed"),
                store.exhausted({"ad1": 3}),
            ):
                with pytest.raises(StoreUnavailable):
                    await call
    finally:
        await store.close()


async def test_ad_endpoints_answer_503_json_and_chat_keeps_working(dead_redis_url: str) -> None:
    app = make_app(
        redis_url=dead_redis_url,
        redis_timeout=0.2,
        ad_injection_rate=1.0,
        echo_admin_keys="admin-k",
        ad_track_clicks=True,
        ad_cap_per_window=3,
    )
    transport = httpx.ASGITransport(app=app)
    async with (
        asyncio.timeout(30),
        httpx.AsyncClient(transport=transport, base_url="http://gw") as client,
    ):
        click = await client.get("/v1/ads/click/some-impression")
        stats = await client.get("/v1/ads/stats", headers={"authorization": "Bearer admin-k"})
        chat = await client.post(
            "/v1/chat/completions",
            json={"model": "echo-mock", "messages": [{"role": "user", "content": "hello"}]},
        )
    for response in (click, stats):
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "store_unavailable"
    assert chat.status_code == 200
    assert chat.json()["choices"][0]["message"]["content"]


async def test_memory_store_ping_is_true() -> None:
    assert await MemoryAdStore().ping() is True


# --- bounded memory ----------------------------------------------------------------------------


def _imp(number: int, user: str = "u", at: float = 1000.0) -> Impression:
    return Impression(f"imp{number}", "ad1", user, "https://example.com/a", at)


async def test_no_click_targets_are_kept_when_tracking_is_off() -> None:
    store = MemoryAdStore(track_clicks=False)
    for number in range(100):
        await store.record_impression(_imp(number), click_ttl_s=3600)
    assert store.sizes()["click_targets"] == 0
    assert await store.record_click("imp5") is None
    assert await store.impressions("ad1") == 100


async def test_click_targets_are_bounded_by_count_oldest_first() -> None:
    store = MemoryAdStore(max_click_targets=10)
    for number in range(50):
        await store.record_impression(_imp(number), click_ttl_s=3600)
    assert store.sizes()["click_targets"] == 10
    assert await store.record_click("imp39") is None
    assert await store.record_click("imp49") == "https://example.com/a"


async def test_click_targets_expire_by_age() -> None:
    now = [0.0]
    store = MemoryAdStore(clock=lambda: now[0])
    await store.record_impression(_imp(1), click_ttl_s=10)
    now[0] = 11.0
    await store.record_impression(_imp(2), click_ttl_s=10)
    assert store.sizes()["click_targets"] == 1
    assert await store.record_click("imp1") is None


async def test_users_and_their_logs_are_bounded() -> None:
    store = MemoryAdStore(max_users=100, max_log_entries=5)
    for number in range(1000):
        await store.record_impression(_imp(number, user=f"user{number}"), click_ttl_s=0)
    for number in range(20):
        await store.record_impression(_imp(number, user="busy", at=1000.0 + number), click_ttl_s=0)
    sizes = store.sizes()
    assert sizes["users"] <= 100
    assert len(await store.recent_ads("busy", 3600, 2000.0)) == 5
    assert await store.recent_ads("user0", 3600, 2000.0) == []  # pruned, least recent first
