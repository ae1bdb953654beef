"""Graceful drain with a real server process and SIGTERM: answers that finish within
SHUTDOWN_GRACE_SECONDS end normally; those still open at the end get an error event, no [DONE]."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest

from tests.live import free_port, wait_healthy

BODY = {
    "model": "echo-mock",
    "stream": True,
    "messages": [{"role": "user", "content": "Explain streaming"}],
}


def _start(tmp_path: Path, grace: str, delay_ms: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    keep = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    env = {
        **keep,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "SHUTDOWN_GRACE_SECONDS": grace,
        "MOCK_DELAY_MS": delay_ms,
        "AD_INJECTION_RATE": "0",
        "LOG_LEVEL": "warning",
    }
    process = subprocess.Popen([sys.executable, "-m", "echo_stream"], env=env, cwd=tmp_path)
    base = f"http://127.0.0.1:{port}"
    wait_healthy(base, process)
    return process, base


def _stream_after_sigterm(process: subprocess.Popen[bytes], base: str) -> list[str]:
    """Open a stream, send SIGTERM once its first chunk arrived, return every data line (the
    last one is the response's request id)."""
    lines: list[str] = []
    with httpx.stream("POST", base + "/v1/chat/completions", json=BODY, timeout=60) as response:
        assert response.status_code == 200
        request_id = response.headers["x-request-id"]
        for line in response.iter_lines():
            if line.startswith("data: "):
                if not lines:
                    threading.Timer(0.05, process.send_signal, (signal.SIGTERM,)).start()
                lines.append(line[6:])
    return [*lines, request_id]


def test_stream_still_open_at_the_end_of_grace_gets_an_error_event(tmp_path: Path) -> None:
    # The mock's answer is a few hundred words: at 100 ms a word it outlasts a 2 s grace.
    process, base = _start(tmp_path, grace="2", delay_ms="100")
    try:
        *lines, request_id = _stream_after_sigterm(process, base)
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal
    finally:
        process.kill()
    assert lines[-1] != "[DONE]" and "[DONE]" not in lines
    error = json.loads(lines[-1])["error"]
    assert error["code"] == "shutting_down" and error["request_id"] == request_id
    assert len(lines) > 2  # the answer kept streaming during the grace period


def test_stream_that_finishes_within_grace_ends_normally(tmp_path: Path) -> None:
    process, base = _start(tmp_path, grace="60", delay_ms="2")
    try:
        *lines, _ = _stream_after_sigterm(process, base)
        assert process.wait(timeout=60) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal
    finally:
        process.kill()
    assert lines[-1] == "[DONE]"
    assert all("error" not in json.loads(line) for line in lines[:-1])
    # After SIGTERM the server stops accepting new connections.
    with pytest.raises(httpx.TransportError):
        httpx.get(base + "/health", timeout=5)
