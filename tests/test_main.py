"""`python -m echo_stream` as a user runs it: honours PORT, refuses bad configuration clearly."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.live import free_port


def _env(**extra: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    return {**keep, "LOG_LEVEL": "warning", **extra}


def test_starts_on_port_with_mock_and_no_keys(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "echo_stream"],
        env=_env(HOST="127.0.0.1", PORT=str(port), MOCK_DELAY_MS="0"),
        cwd=tmp_path,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and process.poll() is None, "server did not start"
            time.sleep(0.1)
        models = httpx.get(f"http://127.0.0.1:{port}/v1/models").json()
        assert [m["id"] for m in models["data"]] == ["echo-mock"]
    finally:
        process.terminate()
        assert process.wait(timeout=15) is not None


def test_bad_config_file_stops_start_up_with_a_message(tmp_path: Path) -> None:
    config = tmp_path / "echo.yaml"
    config.write_text("models:\n  - name: x\n    provider: azure\n")
    result = subprocess.run(
        [sys.executable, "-m", "echo_stream"],
        env=_env(ECHO_CONFIG=str(config)),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert f"{config}: models entry 1 ('x'): provider" in result.stderr


def test_bad_ads_file_stops_start_up_with_a_message(tmp_path: Path) -> None:
    ads = tmp_path / "ads.yaml"
    ads.write_text(
        "ads:\n  - id: a\n    advertiser: A\n    title: T\n    body: B\n    url: ftp://x\n    keywords: [k]\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "echo_stream"],
        env=_env(ADS_FILE=str(ads)),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "ads.yaml: entry 1 (id 'a'): url" in result.stderr
