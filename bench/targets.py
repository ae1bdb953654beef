"""The gateway's targets as checks: a measured value against its limit, PASS/FAIL/n/a.

``bench.scenarios.evaluate`` builds the list; the request-bound targets of issue 13 (short
requests, the connection storm, ads on vs off, workers, each face's budget) are here. ``get`` is
its lookup: ``get("short10/openai/gateway", "result", "requests_per_s")`` -> a float or None.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from bench.procs import DRIVER_CORE, PROXY_CORE

Get = Callable[..., float | None]


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
    op: str = "<="
    """How value compares with limit to pass: "<=" (at most) or ">=" (at least)."""

    def verdict(self) -> str:
        """PASS, FAIL or n/a."""
        return {True: "PASS", False: "FAIL", None: "n/a"}[self.passed]


def at_most(
    name: str, value: float | None, limit: float | None, unit: str, note: str = ""
) -> Check:
    """PASS when ``value`` ≤ ``limit``; n/a when either is missing."""
    if value is None or limit is None:
        return Check(name, value, limit, unit, None, note or "not measured")
    return Check(name, value, limit, unit, value <= limit, note)


def at_least(
    name: str, value: float | None, limit: float | None, unit: str, note: str = ""
) -> Check:
    """PASS when ``value`` ≥ ``limit``; n/a when either is missing."""
    if value is None or limit is None:
        return Check(name, value, limit, unit, None, note or "not measured", ">=")
    return Check(name, value, limit, unit, value >= limit, note, ">=")


CPU_RESOLUTION_S = 2.0 / os.sysconf("SC_CLK_TCK")
"""CPU time is read in clock ticks before and after a load: each reading may be one tick off."""
MIN_CPU_S = 10 * CPU_RESOLUTION_S
"""Below this much CPU in a load, a per-chunk figure is more than 10 % reading error: n/a."""


def cpu_per_1k(get: Get, key: str) -> tuple[float | None, str]:
    """A case's CPU per 1,000 chunks, or None with a reason when too small to measure."""
    total = get(key, "proxy_cpu_s")
    value = get(key, "proxy_cpu_per_1k_chunks_s")
    if value is not None and total is not None and total < MIN_CPU_S:
        return None, (
            f"below the measurement's resolution: {total:.3f} s of CPU in the load, read to "
            f"±{CPU_RESOLUTION_S:.2f} s (needs ≥ {MIN_CPU_S:.1f} s; run the full bench)"
        )
    return value, ""


def per_core(get: Get, key: str) -> tuple[float | None, str]:
    """A case's requests per proxy CPU-second, or None with a reason when too small to read."""
    total = get(key, "proxy_cpu_s")
    if total is not None and total < MIN_CPU_S:
        return None, f"below the measurement's resolution: {total:.3f} s of CPU in {key}"
    return get(key, "proxy_requests_per_cpu_s"), ""


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def _scaled(value: float | None, factor: float) -> float | None:
    return None if value is None else value * factor


REQUEST_LOADS = ("short10", "short64", "json10", "json64")
"""The short-request loads the throughput targets look at (10 and 64 clients)."""


def stream_checks(get: Get) -> list[Check]:
    """Added TTFT (gateway - direct) at 1 and 10 clients; proxy CPU per chunk on each route."""

    def added(load: str, stat: str) -> float | None:
        gateway = get(f"{load}/openai/gateway", "result", "ttft_ms", stat)
        direct = get(f"{load}/openai/direct", "result", "ttft_ms", stat)
        return None if gateway is None or direct is None else gateway - direct

    checks = [
        at_most("added TTFT p50, 1 client", added("ttft1", "p50"), 1.0, "ms"),
        at_most("added TTFT p99, 1 client", added("ttft1", "p99"), 3.0, "ms"),
        at_most(
            "added TTFT p50, 10 clients",
            added("ttft10", "p50"),
            0.5,
            "ms",
            "issue 13's limit (was 3 ms); back to back, the driver's core saturates (README)",
        ),
        at_most(
            "added TTFT p50, 10 paced clients",
            added("ttft10paced", "p50"),
            0.5,
            "ms",
            "the same limit on the paced load (requests spread out, below saturation)",
        ),
    ]
    cpu_openai, why = cpu_per_1k(get, "throughput/openai/gateway")
    checks.append(at_most("proxy CPU per 1,000 chunks, OpenAI route", cpu_openai, 0.05, "s", why))
    for route in ("anthropic", "gemini"):
        value, why = cpu_per_1k(get, f"throughput/{route}/gateway")
        limit = None if cpu_openai is None else 1.5 * cpu_openai
        checks.append(
            at_most(
                f"proxy CPU per 1,000 chunks, {route} route",
                value,
                limit,
                "s",
                why or "limit: 1.5x the OpenAI route's measured figure",
            )
        )
    ads_off = cpu_openai
    ads_on, why = cpu_per_1k(get, "throughput/openai/gateway-ads")
    checks.append(
        at_most(
            "ad filter on: CPU per 1,000 chunks",
            ads_on,
            None if ads_off is None else 1.1 * ads_off,
            "s",
            why or "limit: ad filter off + 10%",
        )
    )
    return checks


def request_checks(get: Get) -> list[Check]:
    """Short-request throughput against nginx, CPU per chunk against nginx, the storm."""
    checks = []
    for load in REQUEST_LOADS:
        gateway, why = per_core(get, f"{load}/openai/gateway")
        nginx, nginx_why = per_core(get, f"{load}/openai/nginx")
        checks.append(
            at_least(
                f"short-request rps per core vs nginx, {load}",
                _ratio(gateway, nginx),
                0.5,
                "x nginx",
                why
                or nginx_why
                or "requests per proxy CPU-second, gateway / nginx (nginx does not saturate its "
                "core here: the driver's core is the limit, so measured rps would flatter us)",
            )
        )
    cpu, why = cpu_per_1k(get, "throughput/openai/gateway")
    nginx_cpu, nginx_why = cpu_per_1k(get, "throughput/openai/nginx")
    checks.append(
        at_most(
            "proxy CPU per 1,000 chunks vs nginx",
            cpu,
            _scaled(nginx_cpu, 1.2),
            "s",
            why or nginx_why or "limit: 1.2x nginx's figure measured here",
        )
    )
    wanted = get("storm/openai/gateway", "load", "requests")
    ok = get("storm/openai/gateway", "result", "requests_ok")
    checks.append(
        at_most(
            "storm: all complete",
            None if ok is None or wanted is None else wanted - ok,
            0.0,
            "incomplete",
        )
    )
    checks.append(
        at_most(
            "storm: first-token p99",
            get("storm/openai/gateway", "result", "ttft_ms", "p99"),
            _scaled(get("storm/openai/nginx", "result", "ttft_ms", "p99"), 1.5),
            "ms",
            "limit: 1.5x nginx's p99 measured here",
        )
    )
    return checks


def ads_checks(get: Get) -> list[Check]:
    """Ads on (rate 1) against off: each request-bound figure within 10 %."""

    def on_off(key: str, *path: str) -> tuple[float | None, float | None]:
        return get(f"{key}/gateway-ads", *path), get(f"{key}/gateway", *path)

    checks = []
    for load, clients in (("ttft10", "10 clients"), ("ttft10paced", "10 paced clients")):
        on, off = on_off(f"{load}/openai", "result", "ttft_ms", "p50")
        checks.append(
            at_most(f"ads on: TTFT p50, {clients}", on, _scaled(off, 1.1), "ms", "limit: +10%")
        )
    on, off = on_off("storm/openai", "result", "ttft_ms", "p99")
    checks.append(
        at_most("ads on: storm first-token p99", on, _scaled(off, 1.1), "ms", "limit: off + 10%")
    )
    for load in REQUEST_LOADS:
        on, off = on_off(f"{load}/openai", "result", "requests_per_s")
        checks.append(
            at_least(
                f"ads on: short-request rps, {load}", on, _scaled(off, 0.9), "rps", "limit: -10%"
            )
        )
    return checks


def workers_checks(get: Get, cores_2w: str) -> list[Check]:
    """Two workers against one on short requests; n/a when the driver shares their cores."""
    shared = DRIVER_CORE in cores_2w.split(",") or PROXY_CORE not in cores_2w.split(",")
    checks = []
    for load in ("short64", "json64"):
        ratio = _ratio(
            get(f"{load}/openai/gateway-2w", "result", "requests_per_s"),
            get(f"{load}/openai/gateway", "result", "requests_per_s"),
        )
        check = at_least(f"2 workers vs 1: short-request rps, {load}", ratio, 1.6, "x 1 worker")
        if shared and ratio is not None:
            check.passed = None
            check.note = (
                f"machine-limited: the 2 workers run on cores {cores_2w}, and the load generator "
                f"and fake upstream share core {DRIVER_CORE} with one of them; ratio reported only"
            )
        checks.append(check)
        # What the machine does allow: whether a second worker keeps each core as productive.
        # Linear scaling with cores needs just that (workers share nothing but the kernel's
        # accept queue), so requests per CPU-second of 2 workers against 1 is the measurable part.
        efficiency = _ratio(
            get(f"{load}/openai/gateway-2w", "proxy_requests_per_cpu_s"),
            get(f"{load}/openai/gateway", "proxy_requests_per_cpu_s"),
        )
        checks.append(
            at_least(
                f"2 workers vs 1: requests per CPU-second, {load}",
                efficiency,
                0.9,
                "x 1 worker",
                "per-core efficiency kept: throughput then scales with the cores given",
            )
        )
    return checks


def face_checks(get: Get) -> list[Check]:
    """Session and Lobe faces against the OpenAI endpoint of the same gateway, same run."""
    checks = []
    for face, system, loads in (
        ("session face", "gateway-session", ("ttft1", "ttft10paced", "ttft10")),
        ("Lobe face", "gateway-lobe", ("ttft1",)),
    ):
        budget = "limit: the OpenAI endpoint + 20%" + (
            "" if system == "gateway-session" else " (our budget)"
        )
        for load in loads:
            clients = {"ttft10": "10 clients", "ttft10paced": "10 paced clients"}.get(
                load, "1 client"
            )
            checks.append(
                at_most(
                    f"{face}: first event p50, {clients}",
                    get(f"{load}/openai/{system}", "result", "ttft_ms", "p50"),
                    _scaled(get(f"{load}/openai/gateway", "result", "ttft_ms", "p50"), 1.2),
                    "ms",
                    budget,
                )
            )
        face_cpu, why = cpu_per_1k(get, f"throughput/openai/{system}")
        openai_cpu, openai_why = cpu_per_1k(get, "throughput/openai/gateway")
        checks.append(
            at_most(
                f"{face}: CPU per 1,000 chunks",
                face_cpu,
                _scaled(openai_cpu, 1.2),
                "s",
                why or openai_why or budget,
            )
        )
    return checks


REFERENCE_NGINX_SLOW_TTFT_P99_S = 1.5
"""The issue's nginx figure, used only when nginx is not installed here."""


def store_checks(get: Get) -> list[Check]:
    """Storage on (SQLite, `X-Conversation-Id: new`) against the same gateway with it off."""
    ttft_off = get("ttft1/openai/gateway", "result", "ttft_ms", "p50")
    ttft_on = get("ttft1/openai/gateway-store", "result", "ttft_ms", "p50")
    cpu_off = get("throughput/openai/gateway", "proxy_cpu_per_1k_chunks_s")
    cpu_on = get("throughput/openai/gateway-store", "proxy_cpu_per_1k_chunks_s")
    return [
        at_most(
            "storage on: TTFT p50, 1 client",
            ttft_on,
            None if ttft_off is None else ttft_off + 1.0,
            "ms",
            "limit: storage off + 1 ms",
        ),
        at_most(
            "storage on: CPU per 1,000 chunks",
            cpu_on,
            None if cpu_off is None else 1.1 * cpu_off,
            "s",
            "limit: storage off + 10%",
        ),
    ]


def slow_checks(get: Get, quick: bool) -> list[Check]:
    sent = get("slow/openai/gateway", "result", "requests_sent")
    ok = get("slow/openai/gateway", "result", "requests_ok")
    wanted = get("slow/openai/gateway", "load", "requests")
    complete = None if ok is None else float(ok == wanted and sent == wanted)
    checks = [
        at_most(
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
        at_most("slow streams: TTFT p99", p99, None if nginx is None else 1.5 * nginx, "ms", note)
    )
    rss = get("slow/openai/gateway", "proxy_peak_rss_mb")
    checks.append(at_most("slow streams: proxy peak RSS", rss, 150.0, "MB"))
    return checks
