"""Rounds of one bench case combined (`bench.rounds`): medians of figures, failures never hidden."""

from __future__ import annotations

from bench.rounds import combine


def _round(ttft_p50: float, cpu: float | None, errors: dict[str, int], lost: int) -> dict:
    error_count = sum(errors.values())
    return {
        "system": "gateway",
        "result": {
            "requests_ok": 100 - error_count,
            "errors": errors,
            "error_count": error_count,
            "lost_text_streams": lost,
            "chunk_count_mismatches": 0,
            "clean": not (error_count or lost),
            "ttft_ms": {"n": 100, "p50": ttft_p50, "p99": ttft_p50 * 3},
        },
        "proxy_cpu_s": cpu,
    }


def test_one_round_is_itself() -> None:
    only = _round(1.0, 0.5, {}, 0)
    assert combine([only]) is only


def test_figures_are_medians_and_failures_add_up() -> None:
    rounds = [
        _round(1.0, 0.50, {}, 0),
        _round(9.0, 0.70, {"HTTP 502": 2}, 0),
        _round(2.0, None, {"HTTP 502": 1, "reset": 1}, 1),
    ]
    combined = combine(rounds)
    result = combined["result"]
    assert result["ttft_ms"]["p50"] == 2.0 and result["ttft_ms"]["p99"] == 6.0
    assert combined["proxy_cpu_s"] == 0.6  # the rounds that read it
    assert result["errors"] == {"HTTP 502": 3, "reset": 1}
    assert result["error_count"] == 4 and result["lost_text_streams"] == 1
    assert result["clean"] is False
    assert combined["system"] == "gateway" and combined["rounds"] == 3
