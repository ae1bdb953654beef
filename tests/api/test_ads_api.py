"""Ads as a user and an operator see them: the click redirect, the stats report, Redis sharing."""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from collections.abc import Callable, Iterator

import httpx
import openai
import pytest
import redis

from tests.conftest import make_app

CLICK = re.compile(r"\[link\](http://[^\[]+/v1/ads/click/([A-Za-z0-9_-]+))\[/link\]")
MESSAGES = [{"role": "user", "content": "hello there"}]


def _ask(base: str, user: str | None = None, key: str = "client") -> str:
    client = openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0)
    extra = {"user": user} if user else {}
    return "".join(
        chunk.choices[0].delta.content or ""
        for chunk in client.chat.completions.create(
            model="echo-mock", messages=MESSAGES, stream=True, **extra
        )  # type: ignore[call-overload]
        if chunk.choices
    )


def _stats(base: str, key: str = "admin-key") -> httpx.Response:
    return httpx.get(base + "/v1/ads/stats", headers={"Authorization": f"Bearer {key}"})


def _wait_for(predicate: Callable[[], bool], seconds: float = 3.0) -> bool:
    async def poll() -> bool:
        for _ in range(int(seconds / 0.02)):
            if predicate():
                return True
            await asyncio.sleep(0.02)
        return predicate()

    return asyncio.run(poll())


def test_click_redirects_and_is_counted(server: Callable[..., str]) -> None:
    base = server(
        make_app(ad_injection_rate=1.0, ad_track_clicks=True, echo_admin_keys="admin-key")
    )
    text = _ask(base)
    match = CLICK.search(text)
    assert match, text
    link, impression_id = match.groups()
    assert len(impression_id) >= 20
    assert _wait_for(lambda: _stats(base).json()["ads"] != {})
    response = httpx.get(link, follow_redirects=False)
    assert response.status_code == 302
    assert response.headers["location"].startswith("https://echo-ai.example/")
    httpx.get(link, follow_redirects=False)  # a second click on the same impression counts once
    stats = _stats(base).json()
    ad = next(iter(stats["ads"].values()))
    assert (ad["impressions"], ad["clicks"], ad["ctr"]) == (1, 1, 1.0)
    assert stats["decisions"] == {"placed": 1} and stats["fill_rate"] == 1.0
    assert httpx.get(base + "/v1/ads/click/not-a-real-id").status_code == 404


def test_stats_need_the_admin_key(server: Callable[..., str]) -> None:
    base = server(make_app(ad_injection_rate=1.0, echo_admin_keys="admin-key"))
    assert _stats(base, key="wrong").status_code == 401
    assert httpx.get(base + "/v1/ads/stats").status_code == 401
    disabled = server(make_app(ad_injection_rate=1.0))
    assert _stats(disabled).status_code == 401


def test_links_point_at_the_advertiser_without_click_tracking(server: Callable[..., str]) -> None:
    text = _ask(server(make_app(ad_injection_rate=1.0)))
    assert "[link]https://echo-ai.example/" in text
    assert "/v1/ads/click/" not in text


def test_ad_free_keys_and_rate_zero(server: Callable[..., str]) -> None:
    base = server(make_app(ad_injection_rate=1.0, ad_free_keys="vip"))
    assert "[ad]" not in _ask(base, key="vip")
    assert "[ad]" in _ask(base, key="someone")
    assert "[ad]" not in _ask(server(make_app(ad_injection_rate=0.0)))


@pytest.fixture
def redis_url() -> Iterator[str]:
    """The local Redis under a unique key prefix (skipped without Redis, required in CI)."""
    client = redis.Redis(host="127.0.0.1", port=6379)
    try:
        client.ping()
    except redis.ConnectionError:
        if os.environ.get("CI"):
            pytest.fail("CI needs Redis at 127.0.0.1:6379")
        pytest.skip("Redis not reachable at 127.0.0.1:6379 (start it: see README)")
    prefix = f"test:{uuid.uuid4().hex}:"
    yield prefix
    for key in client.scan_iter(match=prefix + "*"):
        client.delete(key)


@pytest.mark.redis
def test_two_workers_share_caps_and_counters_through_redis(
    server: Callable[..., str], redis_url: str
) -> None:
    options = {
        "ad_injection_rate": 1.0,
        "redis_url": "redis://127.0.0.1:6379/0",
        "redis_key_prefix": redis_url,
        "ad_cap_per_window": 2,
        "echo_admin_keys": "admin-key",
    }
    first, second = server(make_app(**options)), server(make_app(**options))
    assert "[ad]" in _ask(first, user="carol")
    assert _wait_for(lambda: _stats(second).json()["responses"] == 1)
    assert "[ad]" in _ask(second, user="carol")
    assert _wait_for(lambda: _stats(first).json()["responses"] == 2)
    assert "[ad]" not in _ask(first, user="carol"), "the cap is shared by both workers"
    assert _wait_for(lambda: _stats(second).json()["decisions"].get("frequency_cap") == 1)
    stats = _stats(second).json()
    assert sum(ad["impressions"] for ad in stats["ads"].values()) == 2


def _timeline(base: str, query: str = "", key: str = "admin-key") -> httpx.Response:
    return httpx.get(base + "/v1/ads/timeline" + query, headers={"Authorization": f"Bearer {key}"})


def test_the_timeline_reports_the_last_minutes_to_admins_only(server: Callable[..., str]) -> None:
    base = server(
        make_app(ad_injection_rate=1.0, ad_track_clicks=True, echo_admin_keys="admin-key")
    )
    link = CLICK.search(_ask(base))
    assert link
    assert _wait_for(lambda: _stats(base).json()["responses"] == 1)
    httpx.get(link.group(1), follow_redirects=False)
    body = _timeline(base, "?minutes=5").json()
    assert body["bucket_seconds"] == 60 and len(body["points"]) == 5
    starts = [point["start"] for point in body["points"]]
    assert starts == sorted(starts) and starts[1] - starts[0] == 60
    totals = {
        name: sum(point[name] for point in body["points"])
        for name in ("responses", "placed", "impressions", "clicks")
    }
    assert totals == {"responses": 1, "placed": 1, "impressions": 1, "clicks": 1}
    assert len(_timeline(base).json()["points"]) == 60
    assert _timeline(base, key="wrong").status_code == 401
    assert _timeline(base, "?minutes=0").status_code == 400
    assert _timeline(base, "?minutes=100000").status_code == 400
