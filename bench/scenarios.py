"""What the bench measures: load patterns, the scenarios built from them, and the gateway's targets.

A *case* is one load pattern on one route through one system; scenarios are lists of cases, and a
case shared by two scenarios (the gateway's OpenAI throughput, say) is measured once per run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from bench.workload import Route, StreamShape

SYSTEMS = (
    "direct",
    "nginx",
    "gateway",
    "gateway-ads",
    "gateway-store",
    "gateway-2w",
    "gateway-lobe",
    "litellm",
)
"""In run order: each system is started once, measured on all its cases, and stopped."""

PROXIES = SYSTEMS[1:]
GATEWAYS = ("gateway", "gateway-ads", "gateway-store", "gateway-2w", "gateway-lobe")


@dataclass(frozen=True)
class LoadSpec:
    """A load pattern: who sends how much, and what the upstream streams back."""

    name: str
    title: str
    clients: int
    requests: int
    shape: StreamShape
    time_limit_s: float
    measure_cpu: bool = False
    sample_rss: bool = False


def _loads(quick: bool) -> dict[str, LoadSpec]:
    if quick:
        return {
            "ttft1": LoadSpec("ttft1", "TTFT, 1 client", 1, 20, StreamShape(20, 0), 10),
            "ttft10": LoadSpec("ttft10", "TTFT, 10 clients", 10, 60, StreamShape(20, 0), 10),
            "throughput": LoadSpec(
                "throughput",
                "throughput, 16 clients x 50-chunk streams",
                16,
                48,
                StreamShape(50, 0),
                10,
                measure_cpu=True,
            ),
            "slow": LoadSpec(
                "slow",
                "100 concurrent slow streams (10 chunks 20 ms apart)",
                100,
                100,
                StreamShape(10, 20),
                15,
                sample_rss=True,
            ),
        }
    return {
        "ttft1": LoadSpec(
            "ttft1",
            "TTFT, 1 client (300 requests, 20-chunk streams)",
            1,
            300,
            StreamShape(20, 0),
            30,
        ),
        "ttft10": LoadSpec(
            "ttft10",
            "TTFT, 10 clients (1,000 requests, 20-chunk streams)",
            10,
            1000,
            StreamShape(20, 0),
            30,
        ),
        "throughput": LoadSpec(
            "throughput",
            "64 clients x 200-chunk streams (640 requests)",
            64,
            640,
            StreamShape(200, 0),
            30,
            measure_cpu=True,
        ),
        "slow": LoadSpec(
            "slow",
            "1,000 concurrent streams, 40 chunks 50 ms apart",
            1000,
            1000,
            StreamShape(40, 50),
            120,
            sample_rss=True,
        ),
    }


@dataclass(frozen=True)
class Case:
    """One load pattern on one route through one system."""

    load: LoadSpec
    route: Route
    system: str

    @property
    def key(self) -> str:
        """A stable id, used in the JSON and to measure shared cases once."""
        return f"{self.load.name}/{self.route}/{self.system}"


@dataclass(frozen=True)
class Scenario:
    """A named group of cases that the report shows together."""

    name: str
    title: str
    cases: tuple[Case, ...]


def build_scenarios(quick: bool) -> dict[str, Scenario]:
    """Every scenario, in report order, for the full or the quick bench."""
    loads = _loads(quick)
    every = ("direct", "nginx", "gateway", "litellm")

    def cases(load: str, routes: tuple[Route, ...], systems: tuple[str, ...]) -> tuple[Case, ...]:
        return tuple(Case(loads[load], r, s) for r in routes for s in systems)

    openai: tuple[Route, ...] = ("openai",)
    others: tuple[Route, ...] = ("anthropic", "gemini")
    found = [
        Scenario("ttft1", "TTFT with 1 client", cases("ttft1", openai, every)),
        Scenario("ttft10", "TTFT with 10 clients", cases("ttft10", openai, every)),
        Scenario("throughput", "throughput and proxy CPU", cases("throughput", openai, every)),
        Scenario("slow", "many concurrent slow streams", cases("slow", openai, every)),
        Scenario(
            "routes",
            "Anthropic and Gemini upstream routes",
            cases("ttft1", others, ("direct", "gateway", "litellm"))
            + cases("throughput", others, ("direct", "gateway", "litellm")),
        ),
        Scenario(
            "ads",
            "ad filter off vs on",
            cases("ttft1", openai, ("gateway", "gateway-ads"))
            + cases("throughput", openai, ("gateway", "gateway-ads")),
        ),
        Scenario(
            "store",
            "conversation storage off vs on (SQLite)",
            cases("ttft1", openai, ("direct", "gateway", "gateway-store"))
            + cases("throughput", openai, ("gateway", "gateway-store")),
        ),
        Scenario(
            "workers",
            "1 pinned worker vs 2 unpinned workers",
            cases("ttft10", openai, ("gateway", "gateway-2w"))
            + cases("throughput", openai, ("direct", "gateway", "gateway-2w")),
        ),
        Scenario(
            "lobe",
            "OpenAI face vs Lobe face (POST /api/chat), same gateway and upstream",
            cases("ttft1", openai, ("gateway", "gateway-lobe"))
            + cases("throughput", openai, ("gateway", "gateway-lobe")),
        ),
    ]
    return {s.name: s for s in found}


@dataclass
class Check:
    """One gateway target: the measured value against its limit."""

    name: str
    value: float | None
    limit: float | None
    unit: str
    passed: bool | None
    """None when the bench could not measure it (the system or a reference was skipped)."""
    note: str = ""

    def verdict(self) -> str:
        """PASS, FAIL or n/a."""
        return {True: "PASS", False: "FAIL", None: "n/a"}[self.passed]


def _at_most(
    name: str, value: float | None, limit: float | None, unit: str, note: str = ""
) -> Check:
    if value is None or limit is None:
        return Check(name, value, limit, unit, None, note or "not measured")
    return Check(name, value, limit, unit, value <= limit, note)


CPU_RESOLUTION_S = 2.0 / os.sysconf("SC_CLK_TCK")
"""CPU time is read in clock ticks before and after a load: each reading may be one tick off."""
MIN_CPU_S = 10 * CPU_RESOLUTION_S
"""Below this much CPU in a load, a per-chunk figure is more than 10 % reading error: n/a."""


def _cpu_per_1k(get: Any, key: str) -> tuple[float | None, str]:
    """A case's CPU per 1,000 chunks, or None with a reason when too small to measure."""
    total = get(key, "proxy_cpu_s")
    value = get(key, "proxy_cpu_per_1k_chunks_s")
    if value is not None and total is not None and total < MIN_CPU_S:
        return None, (
            f"below the measurement's resolution: {total:.3f} s of CPU in the load, read to "
            f"±{CPU_RESOLUTION_S:.2f} s (needs ≥ {MIN_CPU_S:.1f} s; run the full bench)"
        )
    return value, ""


REFERENCE_NGINX_SLOW_TTFT_P99_S = 1.5
"""The issue's nginx figure, used only when nginx is not installed here."""


def evaluate(cases: dict[str, dict[str, Any]], quick: bool) -> list[Check]:
    """The issue's targets for the gateway, from the measured cases (keyed by Case.key)."""

    def get(key: str, *path: str) -> float | None:
        node: Any = cases.get(key)
        for part in path:
            if not isinstance(node, dict) or node.get(part) is None:
                return None
            node = node[part]
        return float(node)

    def added(load: str, stat: str) -> float | None:
        gateway = get(f"{load}/openai/gateway", "result", "ttft_ms", stat)
        direct = get(f"{load}/openai/direct", "result", "ttft_ms", stat)
        return None if gateway is None or direct is None else gateway - direct

    checks = [
        _at_most("added TTFT p50, 1 client", added("ttft1", "p50"), 1.0, "ms"),
        _at_most("added TTFT p99, 1 client", added("ttft1", "p99"), 3.0, "ms"),
        _at_most("added TTFT p50, 10 clients", added("ttft10", "p50"), 3.0, "ms"),
    ]
    cpu_openai, why = _cpu_per_1k(get, "throughput/openai/gateway")
    checks.append(_at_most("proxy CPU per 1,000 chunks, OpenAI route", cpu_openai, 0.05, "s", why))
    for route in ("anthropic", "gemini"):
        value, why = _cpu_per_1k(get, f"throughput/{route}/gateway")
        limit = None if cpu_openai is None else 1.5 * cpu_openai
        checks.append(
            _at_most(
                f"proxy CPU per 1,000 chunks, {route} route",
                value,
                limit,
                "s",
                why or "limit: 1.5x the OpenAI route's measured figure",
            )
        )
    ads_off = cpu_openai
    ads_on, why = _cpu_per_1k(get, "throughput/openai/gateway-ads")
    checks.append(
        _at_most(
            "ad filter on: CPU per 1,000 chunks",
            ads_on,
            None if ads_off is None else 1.1 * ads_off,
            "s",
            why or "limit: ad filter off + 10%",
        )
    )
    checks.extend(_store_checks(get))
    checks.extend(_slow_checks(get, quick))
    dirty = [
        key
        for key, case in cases.items()
        if key.split("/")[2] in GATEWAYS and not case.get("result", {}).get("clean", False)
    ]
    measured = [key for key in cases if key.split("/")[2] in GATEWAYS]
    checks.append(
        Check(
            "no error and no lost chunk (every gateway case)",
            float(len(dirty)),
            0.0,
            "dirty cases",
            (not dirty) if measured else None,
            ", ".join(dirty),
        )
    )
    return checks


def _store_checks(get: Any) -> list[Check]:
    """Storage on (SQLite, `X-Conversation-Id: new`) against the same gateway with it off."""
    ttft_off = get("ttft1/openai/gateway", "result", "ttft_ms", "p50")
    ttft_on = get("ttft1/openai/gateway-store", "result", "ttft_ms", "p50")
    cpu_off = get("throughput/openai/gateway", "proxy_cpu_per_1k_chunks_s")
    cpu_on = get("throughput/openai/gateway-store", "proxy_cpu_per_1k_chunks_s")
    return [
        _at_most(
            "storage on: TTFT p50, 1 client",
            ttft_on,
            None if ttft_off is None else ttft_off + 1.0,
            "ms",
            "limit: storage off + 1 ms",
        ),
        _at_most(
            "storage on: CPU per 1,000 chunks",
            cpu_on,
            None if cpu_off is None else 1.1 * cpu_off,
            "s",
            "limit: storage off + 10%",
        ),
    ]


def _slow_checks(get: Any, quick: bool) -> list[Check]:
    sent = get("slow/openai/gateway", "result", "requests_sent")
    ok = get("slow/openai/gateway", "result", "requests_ok")
    wanted = get("slow/openai/gateway", "load", "requests")
    complete = None if ok is None else float(ok == wanted and sent == wanted)
    checks = [
        _at_most(
            "slow streams: all complete",
            None if complete is None else 1 - complete,
            0.0,
            "incomplete",
        )
    ]
    p99 = get("slow/openai/gateway", "result", "ttft_ms", "p99")
    nginx = get("slow/openai/nginx", "result", "ttft_ms", "p99")
    note = "limit: 1.5x nginx's p99 measured here"
    if nginx is None and not quick:
        nginx, note = REFERENCE_NGINX_SLOW_TTFT_P99_S * 1000, "limit: 1.5x the issue's nginx 1.5 s"
    checks.append(
        _at_most("slow streams: TTFT p99", p99, None if nginx is None else 1.5 * nginx, "ms", note)
    )
    rss = get("slow/openai/gateway", "proxy_peak_rss_mb")
    checks.append(_at_most("slow streams: proxy peak RSS", rss, 150.0, "MB"))
    return checks
