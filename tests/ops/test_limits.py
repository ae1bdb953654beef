"""Per-key limits: the config section, the counters (memory and Redis), OpenAI's 429 and headers
through the real SDK, and two processes sharing one Redis."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import httpx
import openai
import pytest

from echo_stream.config_file import ConfigError
from echo_stream.ops.counters import MemoryCounters, RedisCounters
from echo_stream.ops.keys import load_keys
from echo_stream.ops.limits import KeyRateLimited, Limiter
from echo_stream.ops.record import key_id
from tests.conftest import make_app
from tests.live import free_port
from tests.ops.redis_env import REDIS_URL, redis_prefix_fixture  # noqa: F401

MESSAGES = [{"role": "user", "content": "Hello"}]


def _config(tmp_path: Path, body: str) -> str:
    path = tmp_path / "echo.yaml"
    path.write_text(textwrap.dedent(body))
    return str(path)


def test_keys_section_names_keys_by_variable_or_hash(tmp_path: Path) -> None:
    path = _config(
        tmp_path,
        """
        keys:
          - {name: team-a, key_env: TEAM_A_KEY, rpm: 2, tpm: 100}
          - {name: team-b, key_id: key_0123456789ab, user_rpm: 1}
          - {name: others, default: true, rpm: 50}
        """,
    )
    table = load_keys(path, {"TEAM_A_KEY": "sk-team-a"})
    assert table is not None
    assert table.lookup(key_id("sk-team-a")).name == "team-a"  # type: ignore[union-attr]
    assert table.lookup("key_0123456789ab").name == "team-b"  # type: ignore[union-attr]
    assert table.lookup("key_ffffffffffff").name == "others"  # type: ignore[union-attr]
    assert table.lookup(None).name == "others"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("keys: {a: 1}", "'keys:' must be a list"),
        (
            "keys:\n  - {name: a, rpm: 1}",
            "keys entry 1 ('a'): give exactly one of key_env or key_id",
        ),
        ("keys:\n  - {name: a, key_env: NOPE_NOT_SET}", "the variable NOPE_NOT_SET is not set"),
        ("keys:\n  - {name: a, key_id: k, rpm: 0}", "keys entry 1: rpm"),
        ("keys:\n  - {name: a, key_id: k, rmp: 5}", "keys entry 1: rmp"),
        ("keys:\n  - {name: a, key_id: k}\n  - {name: b, key_id: k}", "the same key as entry 'a'"),
    ],
)
def test_bad_keys_section_is_refused_clearly(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_keys(_config(tmp_path, body), {})


def test_file_without_keys_has_no_table(tmp_path: Path) -> None:
    assert load_keys(_config(tmp_path, "models:\n  - {name: m, provider: mock}\n"), {}) is None


async def _limiter(
    tmp_path: Path, counters: MemoryCounters | RedisCounters, rpm: int = 2
) -> Limiter:
    path = _config(
        tmp_path,
        f"keys:\n  - {{name: team, key_id: key_aaaaaaaaaaaa, rpm: {rpm}, tpm: 10, user_rpm: 1}}\n",
    )
    table = load_keys(path, {})
    assert table is not None
    return Limiter(table, counters)


async def test_requests_per_minute_then_429_with_openai_headers(tmp_path: Path) -> None:
    limiter = await _limiter(tmp_path, MemoryCounters())
    headers = dict(await limiter.admit("key_aaaaaaaaaaaa", None))
    assert headers[b"x-ratelimit-limit-requests"] == b"2"
    assert headers[b"x-ratelimit-remaining-requests"] == b"1"
    assert headers[b"x-ratelimit-limit-tokens"] == b"10"
    await limiter.admit("key_aaaaaaaaaaaa", None)
    with pytest.raises(KeyRateLimited) as caught:
        await limiter.admit("key_aaaaaaaaaaaa", None)
    error = caught.value
    assert error.status == 429 and error.type == "requests" and error.code == "rate_limit_exceeded"
    assert 1 <= int(error.headers["Retry-After"]) <= 60
    assert error.headers["x-ratelimit-remaining-requests"] == "0"
    assert "requests per min (RPM): Limit 2" in error.message


async def test_tokens_spent_close_the_minute(tmp_path: Path) -> None:
    limiter = await _limiter(tmp_path, MemoryCounters())
    await limiter.admit("key_aaaaaaaaaaaa", None)
    await limiter.spend("key_aaaaaaaaaaaa", None, 10)
    with pytest.raises(KeyRateLimited) as caught:
        await limiter.admit("key_aaaaaaaaaaaa", None)
    assert caught.value.type == "tokens"


async def test_per_user_limit_inside_a_key(tmp_path: Path) -> None:
    limiter = await _limiter(tmp_path, MemoryCounters(), rpm=10)
    await limiter.admit("key_aaaaaaaaaaaa", "alice")
    with pytest.raises(KeyRateLimited, match="user 'alice'"):
        await limiter.admit("key_aaaaaaaaaaaa", "alice")
    await limiter.admit("key_aaaaaaaaaaaa", "bob")  # bob has his own minute


async def test_unlisted_keys_are_not_limited(tmp_path: Path) -> None:
    limiter = await _limiter(tmp_path, MemoryCounters())
    for _ in range(5):
        assert await limiter.admit("key_bbbbbbbbbbbb", None) == []


@pytest.mark.redis
async def test_redis_counters_are_shared(tmp_path: Path, redis_prefix: str) -> None:
    from redis.asyncio import Redis

    first, second = Redis.from_url(REDIS_URL), Redis.from_url(REDIS_URL)
    try:
        one = await _limiter(tmp_path, RedisCounters(first, redis_prefix))
        two = await _limiter(tmp_path, RedisCounters(second, redis_prefix))
        await one.admit("key_aaaaaaaaaaaa", None)
        await two.admit("key_aaaaaaaaaaaa", None)
        with pytest.raises(KeyRateLimited):
            await one.admit("key_aaaaaaaaaaaa", None)
    finally:
        await first.aclose()
        await second.aclose()


def test_sdk_sees_429_with_retry_after_and_headers_on_success(
    tmp_path: Path, server: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIMITED_KEY", "sk-limited-key-1")
    path = _config(tmp_path, "keys:\n  - {name: small, key_env: LIMITED_KEY, rpm: 1}\n")
    base = server(make_app(echo_config=path, echo_api_keys="sk-limited-key-1"))
    client = openai.OpenAI(base_url=base + "/v1", api_key="sk-limited-key-1", max_retries=0)
    ok = client.chat.completions.with_raw_response.create(model="echo-mock", messages=MESSAGES)
    assert ok.headers["x-ratelimit-limit-requests"] == "1"
    assert ok.headers["x-ratelimit-remaining-requests"] == "0"
    assert ok.parse().choices[0].message.content
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="echo-mock", messages=MESSAGES, stream=True)
    response = caught.value.response
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["x-ratelimit-reset-requests"].endswith("s")
    body = response.json()["error"]
    assert body["type"] == "requests" and body["code"] == "rate_limit_exceeded"
    assert body["request_id"] == response.headers["x-request-id"]


_SERVER = """
import sys, uvicorn
from echo_stream.app import create_app
from echo_stream.settings import Settings
settings = Settings(_env_file=None, mock_delay_ms=0, ad_injection_rate=0)
uvicorn.run(create_app(settings), host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


@pytest.mark.redis
def test_two_processes_share_one_limit_through_redis(
    tmp_path: Path, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _config(tmp_path, "keys:\n  - {name: shared, key_env: SHARED_KEY, rpm: 3}\n")
    env = {
        "PATH": "/usr/bin:/bin",
        "SHARED_KEY": "sk-shared-key-1",
        "ECHO_API_KEYS": "sk-shared-key-1",
        "ECHO_CONFIG": path,
        "REDIS_URL": REDIS_URL,
        "REDIS_KEY_PREFIX": redis_prefix,
    }
    ports = [free_port(), free_port()]
    processes = [
        subprocess.Popen([sys.executable, "-c", _SERVER, str(port)], env=env, cwd=tmp_path)
        for port in ports
    ]
    try:
        for port in ports:
            _wait_until_up(port, processes)
        headers = {"Authorization": "Bearer sk-shared-key-1"}
        body = {"model": "echo-mock", "messages": MESSAGES}
        statuses = [
            httpx.post(
                f"http://127.0.0.1:{ports[n % 2]}/v1/chat/completions",
                json=body,
                headers=headers,
                timeout=30,
            ).status_code
            for n in range(5)
        ]
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=20)
    # Alone, each process would let 3 of its own through (all 5). Shared, 3 pass per minute;
    # a minute boundary between two requests can let one more through, never all five.
    assert 3 <= statuses.count(200) <= 4
    assert set(statuses) == {200, 429}


def _wait_until_up(port: int, processes: list[subprocess.Popen[bytes]]) -> None:
    import time

    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "server did not start"
        assert all(p.poll() is None for p in processes), "a server exited"
        time.sleep(0.1)


async def test_with_the_counters_store_down_requests_are_admitted_unmetered(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from echo_stream.redis_client import open_redis

    dead = open_redis(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5, decode_responses=False)
    limiter = await _limiter(tmp_path, RedisCounters(dead, "echo:test:"), rpm=1)
    for _ in range(3):  # over the limit of 1, yet admitted: Redis cannot count
        assert await limiter.admit("key_aaaaaaaaaaaa", None) == []
    assert "key limits not checked" in caplog.text
    await dead.aclose()
