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


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def _scaled(value: float | None, factor: float) -> float | None:
    return None if value is None else value * factor


REQUEST_LOADS = ("short10", "short64", "json10", "json64")
"""The short-request loads the throughput targets look at (10 and 64 clients)."""


def request_checks(get: Get) -> list[Check]:
    """Short-request throughput against nginx, CPU per chunk against nginx, the storm."""
    checks = []
    for load in REQUEST_LOADS:
        gateway = get(f"{load}/openai/gateway", "result", "requests_per_s")
        nginx = get(f"{load}/openai/nginx", "result", "requests_per_s")
        checks.append(
            at_least(
                f"short-request rps vs nginx, {load}",
                _ratio(gateway, nginx),
                0.5,
                "x nginx",
                "gateway rps / nginx rps, each proxy on one core (nginx may be driver-bound)",
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

    on, off = on_off("ttft10/openai", "result", "ttft_ms", "p50")
    checks = [
        at_most("ads on: TTFT p50, 10 clients", on, _scaled(off, 1.1), "ms", "limit: ads off + 10%")
    ]
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
    return checks


def face_checks(get: Get) -> list[Check]:
    """Session and Lobe faces against the OpenAI endpoint of the same gateway, same run."""
    checks = []
    for face, system, load in (
        ("session face", "gateway-session", "ttft10"),
        ("Lobe face", "gateway-lobe", "ttft1"),
    ):
        clients = "10 clients" if load == "ttft10" else "1 client"
        checks.append(
            at_most(
                f"{face}: first event p50, {clients}",
                get(f"{load}/openai/{system}", "result", "ttft_ms", "p50"),
                _scaled(get(f"{load}/openai/gateway", "result", "ttft_ms", "p50"), 1.2),
                "ms",
                "limit: the OpenAI endpoint + 20%"
                + ("" if system == "gateway-session" else " (our budget)"),
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
                why
                or openai_why
                or "limit: the OpenAI endpoint + 20%"
                + ("" if system == "gateway-session" else " (our budget)"),
            )
        )
    return checks
