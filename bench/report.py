"""The bench's report: a side-by-side table on stdout, and the full results as JSON."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.targets import MIN_CPU_S, Check

Case = dict[str, Any]
Cell = Callable[[Case], str]
COLUMNS = ("direct", "nginx", "gateway", "litellm")


def _ttft(case: Case) -> str:
    ttft = case["result"]["ttft_ms"]
    return f"{ttft['p50']:.2f}/{ttft['p99']:.2f}"


def _rate(case: Case) -> str:
    return f"{case['result']['chunks_per_s']:,.0f}"


def _cpu(case: Case) -> str:
    value = case.get("proxy_cpu_per_1k_chunks_s")
    total = case.get("proxy_cpu_s")
    if value is not None and total is not None and total < MIN_CPU_S:
        return "n/a"  # too little CPU in the load to read per chunk (see scenarios.MIN_CPU_S)
    return "—" if value is None else f"{value:.3f}"


def _split(case: Case) -> str:
    """The proxy's user / system CPU per 1,000 chunks: its own work against the kernel's."""
    user, system, chunks = (
        case.get("proxy_user_s"),
        case.get("proxy_system_s"),
        case["result"]["content_chunks"],
    )
    if user is None or system is None or not chunks or user + system < MIN_CPU_S:
        return "—" if user is None else "n/a"
    return f"{user / chunks * 1000:.4f}/{system / chunks * 1000:.4f}"


def _slow(case: Case) -> str:
    result = case["result"]
    complete = (
        "yes"
        if result["requests_ok"] == case["load"]["requests"]
        else (f"{result['requests_ok']}/{case['load']['requests']}")
    )
    rss = case.get("proxy_peak_rss_mb")
    rss_text = "—" if rss is None else f"{rss:.0f} MB"
    return f"{complete}/{result['ttft_ms']['p99'] / 1000:.2f} s/{rss_text}"


def _req(case: Case) -> str:
    """Requests/s, TTFT p50/p99 ms, and the proxy's CPU per request in µs (when measured)."""
    result = case["result"]
    ttft = result["ttft_ms"]
    text = f"{result['requests_per_s']:,.0f}/s {ttft['p50']:.2f}/{ttft['p99']:.2f}"
    per_request = case.get("proxy_cpu_per_request_ms")
    total = case.get("proxy_cpu_s")
    if per_request is not None and total is not None:
        text += " n/a" if total < MIN_CPU_S else f" {per_request * 1000:.0f}µs"
    return text


def _storm(case: Case) -> str:
    """Completed/started, first-token p50/p99 ms, errors."""
    result = case["result"]
    ttft = result["ttft_ms"]
    return (
        f"{result['requests_ok']}/{case['load']['requests']} "
        f"{ttft['p50']:.1f}/{ttft['p99']:.1f} err {result['error_count']}"
    )


def _dirt(case: Case) -> str:
    result = case["result"]
    lost = result["lost_text_streams"] + result["chunk_count_mismatches"]
    return f"{result['error_count']}/{lost}"


# (label, "load/route" of the cases shown, how to show one case, the checks on that row)
_ROWS: list[tuple[str, str, Cell, list[str]]] = [
    (
        "TTFT 1 client p50/p99 ms",
        "ttft1/openai",
        _ttft,
        ["added TTFT p50, 1 client", "added TTFT p99, 1 client"],
    ),
    ("TTFT 10 clients p50/p99 ms", "ttft10/openai", _ttft, ["added TTFT p50, 10 clients"]),
    (
        "TTFT 10 paced clients p50/p99 ms",
        "ttft10paced/openai",
        _ttft,
        ["added TTFT p50, 10 paced clients"],
    ),
    *(
        (
            f"{kind} {n} client{'s' * (n > 1)}: rps p50/p99 ms cpu/req",
            f"{load}{n}/openai",
            _req,
            [f"short-request rps per core vs nginx, {load}{n}"],
        )
        for load, kind in (("short", "2-chunk streams,"), ("json", "non-streaming,"))
        for n in (1, 10, 64)
    ),
    (
        "storm: ok, first token p50/p99 ms, errors",
        "storm/openai",
        _storm,
        ["storm: all complete", "storm: first-token p99"],
    ),
    ("64 clients x 200 chunks: chunks/s", "throughput/openai", _rate, []),
    (
        "proxy CPU s per 1,000 chunks",
        "throughput/openai",
        _cpu,
        ["proxy CPU per 1,000 chunks, OpenAI route", "proxy CPU per 1,000 chunks vs nginx"],
    ),
    ("  of which user/system s", "throughput/openai", _split, []),
    (
        "slow streams: complete/TTFT p99/peak RSS",
        "slow/openai",
        _slow,
        ["slow streams: all complete", "slow streams: TTFT p99", "slow streams: proxy peak RSS"],
    ),
    ("Anthropic: TTFT 1 client p50/p99 ms", "ttft1/anthropic", _ttft, []),
    ("Anthropic: chunks/s", "throughput/anthropic", _rate, []),
    (
        "Anthropic: proxy CPU s / 1,000 chunks",
        "throughput/anthropic",
        _cpu,
        ["proxy CPU per 1,000 chunks, anthropic route"],
    ),
    ("Gemini: TTFT 1 client p50/p99 ms", "ttft1/gemini", _ttft, []),
    ("Gemini: chunks/s", "throughput/gemini", _rate, []),
    (
        "Gemini: proxy CPU s / 1,000 chunks",
        "throughput/gemini",
        _cpu,
        ["proxy CPU per 1,000 chunks, gemini route"],
    ),
]
_VARIANT_ROWS: list[tuple[str, str, str, Cell, list[str]]] = [
    ("ads off -> on: TTFT 1 client p50/p99 ms", "ttft1/openai", "gateway-ads", _ttft, []),
    (
        "ads off -> on: TTFT 10 clients p50/p99 ms",
        "ttft10/openai",
        "gateway-ads",
        _ttft,
        ["ads on: TTFT p50, 10 clients"],
    ),
    (
        "ads off -> on: TTFT 10 paced clients p50/p99 ms",
        "ttft10paced/openai",
        "gateway-ads",
        _ttft,
        ["ads on: TTFT p50, 10 paced clients"],
    ),
    *(
        (
            f"ads off -> on: {load}: rps p50/p99 ms cpu/req",
            f"{load}/openai",
            "gateway-ads",
            _req,
            [f"ads on: short-request rps, {load}"],
        )
        for load in ("short10", "short64", "json10", "json64")
    ),
    (
        "ads off -> on: storm",
        "storm/openai",
        "gateway-ads",
        _storm,
        ["ads on: storm first-token p99"],
    ),
    ("ads off -> on: chunks/s", "throughput/openai", "gateway-ads", _rate, []),
    (
        "ads off -> on: proxy CPU s / 1,000 chunks",
        "throughput/openai",
        "gateway-ads",
        _cpu,
        ["ad filter on: CPU per 1,000 chunks"],
    ),
    (
        "storage off -> on: TTFT 1 client p50/p99 ms",
        "ttft1/openai",
        "gateway-store",
        _ttft,
        ["storage on: TTFT p50, 1 client"],
    ),
    (
        "storage off -> on: proxy CPU s / 1,000 chunks",
        "throughput/openai",
        "gateway-store",
        _cpu,
        ["storage on: CPU per 1,000 chunks"],
    ),
    ("1 -> 2 workers: TTFT 10 clients p50/p99 ms", "ttft10/openai", "gateway-2w", _ttft, []),
    ("1 -> 2 workers: chunks/s", "throughput/openai", "gateway-2w", _rate, []),
    ("1 -> 2 workers: proxy CPU s / 1,000 chunks", "throughput/openai", "gateway-2w", _cpu, []),
    *(
        (
            f"1 -> 2 workers: {load}: rps p50/p99 ms cpu/req",
            f"{load}/openai",
            "gateway-2w",
            _req,
            [f"2 workers vs 1: short-request rps, {load}"],
        )
        for load in ("short64", "json64")
    ),
    (
        "OpenAI -> Lobe face: TTFT 1 client p50/p99 ms",
        "ttft1/openai",
        "gateway-lobe",
        _ttft,
        ["Lobe face: first event p50, 1 client"],
    ),
    ("OpenAI -> Lobe face: chunks/s", "throughput/openai", "gateway-lobe", _rate, []),
    (
        "OpenAI -> Lobe face: proxy CPU s / 1,000 chunks",
        "throughput/openai",
        "gateway-lobe",
        _cpu,
        ["Lobe face: CPU per 1,000 chunks"],
    ),
    (
        "OpenAI -> session face: TTFT 1 client p50/p99 ms",
        "ttft1/openai",
        "gateway-session",
        _ttft,
        ["session face: first event p50, 1 client"],
    ),
    (
        "OpenAI -> session face: TTFT 10 paced clients p50/p99 ms",
        "ttft10paced/openai",
        "gateway-session",
        _ttft,
        ["session face: first event p50, 10 paced clients"],
    ),
    (
        "OpenAI -> session face: TTFT 10 clients p50/p99 ms",
        "ttft10/openai",
        "gateway-session",
        _ttft,
        ["session face: first event p50, 10 clients"],
    ),
    (
        "OpenAI -> session face: proxy CPU s / 1,000 chunks",
        "throughput/openai",
        "gateway-session",
        _cpu,
        ["session face: CPU per 1,000 chunks"],
    ),
]


def _verdict(checks: dict[str, Check], names: list[str]) -> str:
    found = [checks[n] for n in names if n in checks]
    if not found:
        return ""
    parts = []
    for check in found:
        value = "—" if check.value is None else f"{check.value:.3g}"
        limit = "—" if check.limit is None else f"{check.limit:.3g}"
        parts.append(f"{check.verdict()} {value}{check.op}{limit}{check.unit}")
    return "; ".join(parts)


def table(doc: dict[str, Any]) -> str:
    """The results side by side, with each gateway target's verdict."""
    cases: dict[str, Case] = doc["cases"]
    checks = {c.name: c for c in doc["_checks"]}
    header = ("scenario", *COLUMNS, "gateway target: verdict value<=limit (or >=)")
    rows: list[tuple[str, ...]] = []
    for label, prefix, cell, names in _ROWS:
        cells = tuple(
            cell(cases[f"{prefix}/{s}"]) if f"{prefix}/{s}" in cases else "—" for s in COLUMNS
        )
        if any(c != "—" for c in cells):
            rows.append((label, *cells, _verdict(checks, names)))
    for label, prefix, variant, cell, names in _VARIANT_ROWS:
        base, other = cases.get(f"{prefix}/gateway"), cases.get(f"{prefix}/{variant}")
        if other is None:
            continue
        both = f"{cell(base) if base else '—'} -> {cell(other)}"
        rows.append((label, "", "", both, "", _verdict(checks, names)))
    dirt = tuple(_system_dirt(cases, s) for s in COLUMNS)
    rows.append(
        (
            "errors/lost chunks (all cases)",
            *dirt,
            _verdict(checks, ["no error and no lost chunk (every gateway case)"]),
        )
    )
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


_GATEWAY_VARIANTS = (
    "gateway-ads",
    "gateway-store",
    "gateway-2w",
    "gateway-lobe",
    "gateway-session",
)


def _system_dirt(cases: dict[str, Case], system: str) -> str:
    mine = [
        c
        for key, c in cases.items()
        if key.split("/")[2] == system
        or (system == "gateway" and key.split("/")[2] in _GATEWAY_VARIANTS)
    ]
    if not mine:
        return "—"
    errors = sum(c["result"]["error_count"] for c in mine)
    lost = sum(
        c["result"]["lost_text_streams"] + c["result"]["chunk_count_mismatches"] for c in mine
    )
    return f"{errors}/{lost}"


def summary(doc: dict[str, Any]) -> str:
    """The table, the loads' definitions, each target's verdict, and what was skipped."""
    out = [table(doc), "", "loads:"]
    out += [f"  {name}: {title}" for name, title in doc["loads"].items()]
    gateway_python = doc.get("machine", {}).get("gateway_python")
    if gateway_python:  # results written before the figure was recorded have none
        out += ["", f"gateways ran on {gateway_python}"]
    out += ["", "gateway targets:"]
    for check in doc["_checks"]:
        value = "—" if check.value is None else f"{check.value:.4g}"
        limit = "—" if check.limit is None else f"{check.limit:.4g}"
        note = f"  ({check.note})" if check.note else ""
        out.append(
            f"  {check.verdict():4}  {check.name}: {value} (limit {check.op} {limit} {check.unit})"
            f"{note}"
        )
    for system, reason in doc["skipped"].items():
        out.append(f"skipped {system}: {reason.splitlines()[0]}")
    for note in doc["notes"]:
        out.append(f"note: {note}")
    dirty = {key: c["result"]["errors"] for key, c in doc["cases"].items() if c["result"]["errors"]}
    for key, errors in dirty.items():
        out.append(f"errors in {key}: {errors}")
    return "\n".join(out)


def write_json(doc: dict[str, Any], out_dir: Path, stamp: str) -> Path:
    """Write ``<stamp>.json`` and ``latest.json`` under ``out_dir``; return the first."""
    out_dir.mkdir(parents=True, exist_ok=True)
    public = {k: v for k, v in doc.items() if not k.startswith("_")}
    public["checks"] = [vars(c) | {"verdict": c.verdict()} for c in doc["_checks"]]
    text = json.dumps(public, indent=2, sort_keys=False)
    path = out_dir / f"{stamp}.json"
    path.write_text(text)
    (out_dir / "latest.json").write_text(text)
    return path
