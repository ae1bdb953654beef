"""Two gateway processes on one PostgreSQL continue one conversation between them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from tests.databases import create_pg_database, drop_pg_database
from tests.live import free_port

KEY = {"Authorization": "Bearer scale-key"}


@contextmanager
def gateways(database: str, tmp: str, count: int) -> Iterator[list[str]]:
    """`count` processes of `python -m echo_stream`, started together on free ports."""
    processes: list[subprocess.Popen[bytes]] = []
    bases: list[str] = []
    try:
        for _ in range(count):
            port = free_port()
            env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
            env.update(HOST="127.0.0.1", PORT=str(port), DATABASE_URL=database,
                       ECHO_API_KEYS="scale-key", MOCK_DELAY_MS="0", AD_INJECTION_RATE="0",
                       DATA_DIR=tmp, LOG_LEVEL="warning")  # fmt: skip
            processes.append(
                subprocess.Popen([sys.executable, "-m", "echo_stream"], env=env, cwd=tmp)
            )
            bases.append(f"http://127.0.0.1:{port}")
        for process, base in zip(processes, bases, strict=True):
            _wait_ready(process, base)
        yield bases
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_ready(process: subprocess.Popen[bytes], base: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(base + "/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the gateway at {base} did not start")
        time.sleep(0.1)


@pytest.mark.postgres
def test_two_gateways_share_one_conversation(tmp_path: object) -> None:
    database = create_pg_database()
    try:
        # Started together on an empty database: both migrate it, one waiting for the other.
        with gateways(database, str(tmp_path), 2) as (one, two):
            first = httpx.post(one + "/chat", json={"prompt": "Started on one", "stream": False},
                               headers=KEY, timeout=60)  # fmt: skip
            assert first.status_code == 200, first.text
            cid = first.json()["conversation_id"]
            with httpx.stream(
                "POST",
                two + "/chat",
                headers=KEY,
                timeout=60,
                json={"prompt": "Continued on two", "conversation_id": cid},
            ) as r:
                body = r.read().decode()  # fmt: skip
            assert r.status_code == 200 and '"type":"done"' in body
            for base in (one, two):
                stored = httpx.get(f"{base}/v1/conversations/{cid}", headers=KEY, timeout=30).json()
                assert [(m["role"], m["status"]) for m in stored["messages"]] == [
                    ("user", "complete"), ("assistant", "complete"),
                    ("user", "complete"), ("assistant", "complete"),
                ]  # fmt: skip
                assert stored["messages"][2]["content"] == "Continued on two"
            assert (
                httpx.delete(f"{two}/v1/conversations/{cid}", headers=KEY, timeout=30).status_code
                == 204
            )
            assert (
                httpx.get(f"{one}/v1/conversations/{cid}", headers=KEY, timeout=30).status_code
                == 404
            )
    finally:
        drop_pg_database(database)
