"""Scale-out: two gateway processes on the local Redis serve one session between them.

`/init-stream` on the first, the stream on the second, then a reconnect to the first mid-answer
with `Last-Event-ID`; the answer arrives whole with no duplicate, and n8n is called back once.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import jwt
import pytest

from tests.live import free_port
from tests.sessions.conftest import REDIS_URL
from tests.sessions.fakes import SECRET, fake_n8n, read_stream, text_of

pytestmark = pytest.mark.redis


@contextmanager
def gateway_process(env: dict[str, str], cwd: Path) -> Iterator[str]:
    """`python -m echo_stream` on a free port; yields its URL; stopped (by its own pid) after."""
    port = free_port()
    full_env = {
        k: v
        for k, v in os.environ.items()
        if not k.endswith("_API_KEY") and k not in ("REDIS_URL", "ECHO_API_KEYS")
    }
    full_env.update(env, HOST="127.0.0.1", PORT=str(port), LOG_LEVEL="warning")
    log = (cwd / f"gateway-{port}.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "echo_stream"], env=full_env, cwd=cwd, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((cwd / f"gateway-{port}.log").read_text())
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        log.close()


def test_init_on_one_stream_on_another_reconnect_to_the_first_one_callback(
    redis_prefix: str, tmp_path: Path
) -> None:
    with fake_n8n(running_attempts=2) as n8n:
        env = {
            "REDIS_URL": REDIS_URL,
            "REDIS_KEY_PREFIX": redis_prefix,
            "JWT_SECRET": SECRET,
            "N8N_ALLOWED_ORIGINS": n8n.url,
            "N8N_PRIVATE_HOSTS": "127.0.0.1",
            "N8N_CALLBACK_RETRY_SECONDS": "20",
            "AD_INJECTION_RATE": "0",
            "MOCK_DELAY_MS": "15",
            "STREAM_SESSION_TTL": "30",
        }
        with gateway_process(env, tmp_path) as first, gateway_process(env, tmp_path) as second:
            token = jwt.encode({"exp": int(time.time()) + 60}, SECRET, algorithm="HS256")
            init = httpx.post(
                first + "/init-stream",
                json={
                    "n8nToken": token,
                    "resumeUrl": n8n.resume_url(execution=77),
                    "prompt": "scale out",
                    "chatId": "c-9",
                },
                timeout=30,
            )
            assert init.status_code == 200, init.text
            url_first = init.json()["streamUrl"]
            url_second = url_first.replace(first, second)
            assert url_second != url_first

            part = read_stream(url_second, limit=8)  # attach on the second, then drop
            assert part.status == 200 and len(part.events) == 8
            rest = read_stream(url_first, last_event_id=part.last_event_id)
            assert rest.status == 200
            assert rest.events[-1].data == "[DONE]"
            ids = [e.id for e in part.events + rest.events]
            assert len(ids) == len(set(ids))

            calls = n8n.wait_for(3)
            time.sleep(1.0)  # a second callback, if any, would arrive now
            assert read_stream(url_first).status == 204
            assert read_stream(url_second).status == 204
        calls = list(n8n.requests)
        delivered = [c for c in calls if c["status"] == 200]
        assert len(delivered) == 1, calls
        assert [c["status"] for c in calls] == [409, 409, 200]
        payload = delivered[0]["json"]
        assert payload["chatId"] == "c-9" and payload["status"] == "complete"
        assert payload["answer"] == text_of(part.events) + text_of(rest.events)
        assert payload["tokens_estimated"] is False
