"""What the bench measures: load patterns, the scenarios built from them, and the gateway's targets.

A *case* is one load pattern on one route through one system; scenarios are lists of cases, and a
case shared by two scenarios (the gateway's OpenAI throughput, say) is measured once per run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.loadgen import Load
from bench.targets import (
    Check,
    ads_checks,
    face_checks,
    request_checks,
    slow_checks,
    store_checks,
    stream_checks,
    workers_checks,
)
from bench.workload import Route, StreamShape

SYSTEMS = (
    "direct",
    "nginx",
    "gateway",
    "gateway-ads",
    "gateway-store",
    "gateway-2w",
    "gateway-lobe",
    "gateway-session",
    "litellm",
)
"""In run order: each system is started once, measured on all its cases, and stopped."""

PROXIES = SYSTEMS[1:]
GATEWAYS = (
    "gateway",
    "gateway-ads",
    "gateway-store",
    "gateway-2w",
    "gateway-lobe",
    "gateway-session",
)
WORKERS_2W_CORES = "0,1"
"""Where the `gateway-2w` system runs (both cores of a 2-core machine; see systems.py)."""


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
    stream: bool = True
    """False: non-streaming requests (`"stream": false`, one JSON answer; OpenAI route only)."""
    fresh_connections: bool = False
    """One request per new connection (the connection storm)."""
    pause_ms: float = 0.0
    """A paced load: each client's mean pause between requests (see loadgen.Load.pause_s)."""

    def load(self) -> Load:
        """What the load generator runs for this pattern."""
        return Load(
            self.clients,
            self.requests,
            self.time_limit_s,
            fresh_connections=self.fresh_connections,
            pause_s=self.pause_ms / 1000,
        )


SHORT = StreamShape(2, 0)
"""A short answer: 2 content chunks (the issue's "1-3 chunks"), no delay."""


def _request_loads(quick: bool) -> dict[str, LoadSpec]:
    """Short streams and non-streaming requests at 1, 10 and 64 clients; the storm."""
    counts = {1: 20, 10: 100, 64: 128} if quick else {1: 1000, 10: 8000, 64: 10000}
    limit = 10 if quick else 20
    loads = {}
    for clients, requests in counts.items():
        loads[f"short{clients}"] = LoadSpec(
            f"short{clients}",
            f"{clients} client(s), {requests:,} 2-chunk streams",
            clients,
            requests,
            SHORT,
            limit,
        )
        loads[f"json{clients}"] = LoadSpec(
            f"json{clients}",
            f"{clients} client(s), {requests:,} non-streaming requests (2-chunk answers)",
            clients,
            requests,
            SHORT,
            limit,
            stream=False,
        )
    loads["ttft10paced"] = LoadSpec(
        "ttft10paced",
        "TTFT, 10 paced clients (20-chunk streams, ~20 ms pauses: below the driver's saturation)",
        10,
        60 if quick else 1000,
        StreamShape(20, 0),
        30,
        pause_ms=20,
    )
    storm = 100 if quick else 1000
    loads["storm"] = LoadSpec(
        "storm",
        f"connection storm: {storm:,} new connections at once, one 20-chunk stream each",
        storm,
        storm,
        StreamShape(20, 0),
        60,
        fresh_connections=True,
    )
    return loads


def _loads(quick: bool) -> dict[str, LoadSpec]:
    return _stream_loads(quick) | _request_loads(quick)


def _stream_loads(quick: bool) -> dict[str, LoadSpec]:
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


_OPENAI: tuple[Route, ...] = ("openai",)
_OTHERS: tuple[Route, ...] = ("anthropic", "gemini")
_EVERY = ("direct", "nginx", "gateway", "litellm")
_THREE = ("direct", "nginx", "gateway")
_WITH_ADS = (*_THREE, "gateway-ads")
_ADS = ("gateway", "gateway-ads")
_2W = ("gateway", "gateway-2w")
Part = tuple[str, tuple[str, ...], tuple[Route, ...]]
"""A load, the systems it runs through, on which routes."""


def _requests(kind: str) -> tuple[Part, ...]:
    """A request-bound kind (``short``, ``json``) at 1, 10 and 64 clients; ads on at 10 and 64."""
    return (
        (f"{kind}1", _THREE, _OPENAI),
        (f"{kind}10", _WITH_ADS, _OPENAI),
        (f"{kind}64", _WITH_ADS, _OPENAI),
    )


_SCENARIOS: tuple[tuple[str, str, tuple[Part, ...]], ...] = (
    ("ttft1", "TTFT with 1 client", (("ttft1", _EVERY, _OPENAI),)),
    (
        "ttft10",
        "TTFT with 10 clients, back to back and paced",
        (("ttft10", _EVERY, _OPENAI), ("ttft10paced", _THREE, _OPENAI)),
    ),
    ("throughput", "throughput and proxy CPU", (("throughput", _EVERY, _OPENAI),)),
    ("slow", "many concurrent slow streams", (("slow", _EVERY, _OPENAI),)),
    (
        "routes",
        "Anthropic and Gemini upstream routes",
        (
            ("ttft1", ("direct", "gateway", "litellm"), _OTHERS),
            ("throughput", ("direct", "gateway", "litellm"), _OTHERS),
        ),
    ),
    ("short", "short streams (2 chunks) at 1, 10, 64 clients", _requests("short")),
    ("nonstream", "non-streaming requests at 1, 10, 64 clients", _requests("json")),
    (
        "storm",
        "connection storm: new connections at once, one stream each",
        (("storm", _WITH_ADS, _OPENAI),),
    ),
    (
        "ads",
        "ad filter off vs on",
        tuple((load, _ADS, _OPENAI) for load in ("ttft1", "ttft10", "ttft10paced", "throughput")),
    ),
    (
        "store",
        "conversation storage off vs on (SQLite)",
        (
            ("ttft1", ("direct", "gateway", "gateway-store"), _OPENAI),
            ("throughput", ("gateway", "gateway-store"), _OPENAI),
        ),
    ),
    (
        "workers",
        "1 pinned worker vs 2 unpinned workers",
        (
            ("ttft10", _2W, _OPENAI),
            ("throughput", ("direct", *_2W), _OPENAI),
            ("short64", _2W, _OPENAI),
            ("json64", _2W, _OPENAI),
        ),
    ),
    (
        "lobe",
        "OpenAI face vs Lobe face (POST /api/chat), same gateway and upstream",
        tuple((load, ("gateway", "gateway-lobe"), _OPENAI) for load in ("ttft1", "throughput")),
    ),
    (
        "session",
        "OpenAI face vs session face (POST /init-stream + GET /stream/{id}), same gateway",
        tuple(
            (load, ("gateway", "gateway-session"), _OPENAI)
            for load in ("ttft1", "ttft10", "ttft10paced", "throughput")
        ),
    ),
)


def build_scenarios(quick: bool) -> dict[str, Scenario]:
    """Every scenario, in report order, for the full or the quick bench."""
    loads = _loads(quick)
    return {
        name: Scenario(
            name,
            title,
            tuple(
                Case(loads[load], route, system)
                for load, systems, routes in parts
                for route in routes
                for system in systems
            ),
        )
        for name, title, parts in _SCENARIOS
    }


def evaluate(cases: dict[str, dict[str, Any]], quick: bool) -> list[Check]:
    """The issue's targets for the gateway, from the measured cases (keyed by Case.key)."""

    def get(key: str, *path: str) -> float | None:
        node: Any = cases.get(key)
        for part in path:
            if not isinstance(node, dict) or node.get(part) is None:
                return None
            node = node[part]
        return float(node)

    checks = stream_checks(get)
    checks.extend(request_checks(get))
    checks.extend(ads_checks(get))
    checks.extend(workers_checks(get, WORKERS_2W_CORES))
    checks.extend(face_checks(get))
    checks.extend(store_checks(get))
    checks.extend(slow_checks(get, quick))
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


def loads_by_name() -> dict[str, LoadSpec]:
    """Every full-size load of the scenarios, by name (for tools that run one load)."""
    return {c.load.name: c.load for s in build_scenarios(quick=False).values() for c in s.cases}
