"""`python -m bench.ab`: two gateways under one load in alternating rounds, end to end.

No timing is asserted: the test checks that both sides serve every request of every round
(`bench.ab` exits non-zero on any error) and that each figure is reported with its ratio.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from bench.ab import Round, _report

REPO = Path(__file__).resolve().parent.parent


def _ab(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench.ab", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_two_gateways_take_turns_and_every_figure_is_compared() -> None:
    run = _ab("--load", "short10", "--requests", "40", "--rounds", "2", "--ads")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "40 requests a round" in run.stdout
    for figure in ("µs per request", "user µs", "system µs", "s per 1,000 chunks"):
        line = next(line for line in run.stdout.splitlines() if figure in line)
        # 40 short requests are a tick or two of CPU: a side may read 0 in every round
        assert ("B/A median" in line and "(pairs " in line) or "B/A n/a" in line
    for figure in ("TTFT p50 ms", "TTFT p99 ms"):  # timed by the clients: always a value
        line = next(line for line in run.stdout.splitlines() if figure in line)
        assert "B/A median" in line and "(pairs " in line
    # 40 short requests use far less CPU than a tick-based reading can tell apart
    assert "warning: a round used" in run.stdout


def test_an_unknown_load_is_refused_with_the_known_ones() -> None:
    run = _ab("--load", "nope")
    assert run.returncode == 2
    assert "--load: one of" in run.stderr and "throughput" in run.stderr


def test_bad_arguments_are_refused_before_anything_starts() -> None:
    for args in (("--rounds", "0"), ("--requests", "0"), ("--b-env", "AD_INJECTION_RATE")):
        run = _ab(*args)
        assert run.returncode == 2, args
        assert "must be at least 1" in run.stderr or "expected NAME=VALUE" in run.stderr
        assert "A: " not in run.stdout


def test_a_figure_that_read_zero_on_a_side_is_reported_not_divided(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # a short load's system time often reads 0 clock ticks: no ratio, but the rest still compares
    quiet = Round(user_s=0.01, system_s=0.0, requests=40, chunks=80, ttft_p50_ms=1, ttft_p99_ms=2)
    busier = Round(user_s=0.02, system_s=0.0, requests=40, chunks=80, ttft_p50_ms=2, ttft_p99_ms=2)
    _report({"A": [quiet, quiet], "B": [busier, quiet]})
    lines = {line.split(":")[0].strip(): line for line in capsys.readouterr().out.splitlines()}
    assert "B/A n/a (A read 0 in every round)" in lines["system µs per request"]
    assert "B/A median 1.500 (pairs 1.000-2.000)" in lines["user µs per request"]
    assert "B/A median 1.500" in lines["TTFT p50 ms"]
