"""With WORKERS > 1, /metrics sums every worker's figures (prometheus-client multi-process)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.live import free_port, wait_healthy


def test_metrics_are_summed_over_workers(tmp_path: Path) -> None:
    port = free_port()
    metrics_dir = tmp_path / "metrics"
    keep = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    env = {
        **keep,
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "WORKERS": "2",
        "METRICS_OPEN": "true",
        "MOCK_DELAY_MS": "0",
        "LOG_LEVEL": "warning",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    process = subprocess.Popen([sys.executable, "-m", "echo_stream"], env=env, cwd=tmp_path)
    base = f"http://127.0.0.1:{port}"
    body = {"model": "echo-mock", "messages": [{"role": "user", "content": "hi"}]}
    try:
        wait_healthy(base, process, timeout=60)
        for _ in range(20):  # a new connection each time, so both workers take some
            with httpx.Client() as client:
                assert client.post(base + "/v1/chat/completions", json=body).status_code == 200
        pattern = r'echo_requests_total\{model="echo-mock",provider="mock",route="/v1/chat/completions",status="200"\} (\d+)'
        deadline = time.monotonic() + 20
        while True:
            found = re.search(pattern, httpx.get(base + "/metrics").text)
            if (found and found.group(1) == "20") or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert found is not None and found.group(1) == "20"
        assert len({p.stem.rsplit("_", 1)[-1] for p in metrics_dir.glob("counter_*.db")}) >= 2
    finally:
        process.terminate()
        process.wait(timeout=60)
