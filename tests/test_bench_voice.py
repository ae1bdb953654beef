"""Smoke test of the voice bench: it runs end to end and reports every figure (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_voice_bench_quick_run_reports_every_figure() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.voice", "--requests", "2", "--no-save",
         "--tts-latency-ms", "50", "--token-delay-ms", "2"],
        cwd=REPO, capture_output=True, text=True, timeout=240, check=True,
    )  # fmt: skip
    report = json.loads(done.stdout)
    fixed = report["stream"]["fixed"]
    for name in ("first_text_ms", "first_audio_ms", "first_segment_text_ms"):
        assert {"p50", "p90", "min", "max"} <= set(fixed[name])
        assert set(report["stream"]["offline"][name]) == set(fixed[name])
    assert "first_audio_excess_ms" in fixed
    # The fake TTS's latency is a floor for the first audio, whatever the machine's load.
    assert fixed["first_audio_ms"]["min"] >= 50
    assert report["offline_voice"]["segments"] >= 4 and report["offline_voice"]["rtf"] > 0
