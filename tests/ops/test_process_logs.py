"""The real server process with LOG_FORMAT=json: every stderr line is one JSON object (uvicorn's
included), one line per request, and no secret shows up anywhere."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.live import free_port, wait_healthy

PROVIDER_KEY = "sk-provider-secret-0123456789"
CLIENT_KEY = "client-secret-key-42"


def test_json_logs_from_a_real_process(tmp_path: Path) -> None:
    port = free_port()
    keep = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    env = {
        **keep,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "info",
        "MOCK_DELAY_MS": "0",
        "OPENAI_API_KEY": PROVIDER_KEY,
        "ECHO_API_KEYS": CLIENT_KEY,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "echo_stream"], env=env, cwd=tmp_path, stderr=subprocess.PIPE
    )
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {CLIENT_KEY}"}
    try:
        wait_healthy(base, process)
        body = {"model": "echo-mock", "messages": [{"role": "user", "content": "hi"}]}
        assert httpx.post(base + "/v1/chat/completions", json=body, headers=auth).status_code == 200
        assert httpx.get(base + f"/v1/models?access_token={CLIENT_KEY}x").status_code == 401
    finally:
        process.terminate()
        _, err = process.communicate(timeout=30)
    text = err.decode()
    assert PROVIDER_KEY not in text and CLIENT_KEY not in text
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    loggers = {line["logger"] for line in lines}
    assert {"echo_stream", "uvicorn.error", "echo_stream.request"} <= loggers
    chat = [line for line in lines if line.get("route") == "/v1/chat/completions"]
    assert len(chat) == 1 and chat[0]["status"] == 200 and chat[0]["key_id"].startswith("key_")
    assert any("Echo Stream" in line["message"] for line in lines)  # the banner, as one object
