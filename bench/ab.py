"""A/B two builds of the gateway under one load, in alternating short rounds.

    .venv/bin/python -m bench.ab --b /path/to/other/checkout          # this tree (A) vs that (B)
    .venv/bin/python -m bench.ab --b ../old --load short64 --ads --rounds 12
    .venv/bin/python -m bench.ab --b-python /usr/bin/python3.11-venv/bin/python   # same code
    .venv/bin/python -m bench.ab --b-env AD_INJECTION_RATE=1      # ads off (A) against on (B)
    .venv/bin/python -m bench.ab --b ../old --env LOG_LEVEL=info  # both sides logging each request

This VM's speed drifts by a third within an hour, more than most changes are worth, so two
`bench.run`s minutes apart compare the moments as much as the code. Here both gateways run at
once, pinned to the same proxy core, and take turns (A B B A A B ...) under the same load; each
round's figures (the proxy's CPU per request and per chunk, user and system, from /proc; the
clients' time to first token, p50 and p99) are paired with its neighbour's, and what is reported
is the median of the per-pair ratios B / A beside each side's median. The other gateway idles
while one is measured, but shares its core: on a saturating load the latencies compare the
builds, not the gateway against the upstream (that is `bench.run`'s).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from bench.loadgen import run_load
from bench.procs import DRIVER_CORE, PROXY_CORE, cpu_times, pin_self, raise_nofile_limit, run_async
from bench.run import warm_up
from bench.scenarios import LoadSpec, loads_by_name
from bench.systems import REPO, WORK, System, start_fake_upstream, start_gateway, target_for
from bench.targets import MIN_CPU_S


@dataclass(frozen=True, slots=True)
class Round:
    """What one round of the load measured on one side."""

    user_s: float
    system_s: float
    requests: int
    chunks: int
    ttft_p50_ms: float
    ttft_p99_ms: float

    def figures(self) -> dict[str, float]:
        cpu = self.user_s + self.system_s
        return {
            "µs per request": cpu / self.requests * 1e6,
            "user µs per request": self.user_s / self.requests * 1e6,
            "system µs per request": self.system_s / self.requests * 1e6,
            "s per 1,000 chunks": cpu / self.chunks * 1e3,
            "TTFT p50 ms": self.ttft_p50_ms,
            "TTFT p99 ms": self.ttft_p99_ms,
        }


def _round(system: System, spec: LoadSpec, requests: int, ads: bool) -> Round:
    """One round of `spec` (cut to `requests`) through `system`; raises on any error."""
    target = target_for(
        system, "openai", spec.shape, stream=spec.stream, close=spec.fresh_connections
    )
    target = replace(target, strict_chunks=not ads)  # the ad filter adds chunks of its own
    assert system.proc is not None
    user0, sys0 = cpu_times(system.proc.pid)
    result = run_async(run_load(target, replace(spec.load(), requests=requests)))
    user1, sys1 = cpu_times(system.proc.pid)
    if not result.clean:
        raise SystemExit(f"{system.name}: errors in the load: {result.errors}")
    return Round(
        user1 - user0,
        sys1 - sys0,
        result.requests_ok,
        result.content_chunks,
        result.ttft_ms.p50,
        result.ttft_ms.p99,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--b", type=Path, help="the other checkout (B); default: this one")
    parser.add_argument("--b-python", default=sys.executable, help="B's interpreter")
    parser.add_argument("--a-python", default=sys.executable, help="A's interpreter")
    parser.add_argument("--load", default="throughput", help="a bench load (bench.scenarios)")
    parser.add_argument("--requests", type=int, help="requests per round (default: the load's)")
    parser.add_argument("--rounds", type=int, default=8, help="rounds per side")
    parser.add_argument("--ads", action="store_true", help="both with AD_INJECTION_RATE=1")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for both sides (repeatable), e.g. LOG_LEVEL=info",
    )
    parser.add_argument(
        "--b-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for B only (repeatable), e.g. AD_INJECTION_RATE=1",
    )
    args = parser.parse_args(argv)
    if args.rounds < 1 or (args.requests is not None and args.requests < 1):
        parser.error("--rounds and --requests must be at least 1")
    specs = loads_by_name()
    if args.load not in specs:
        parser.error(f"--load: one of {', '.join(sorted(specs))}")
    spec = specs[args.load]
    env = dict(_setting(parser, item) for item in args.env)
    b_env = {**env, **dict(_setting(parser, item) for item in args.b_env)}
    ad_rate = "1" if args.ads else "0"
    ads = {
        side: settings.get("AD_INJECTION_RATE", ad_rate) != "0"
        for side, settings in (("A", env), ("B", b_env))
    }
    requests = args.requests or spec.requests
    raise_nofile_limit()
    pin_self(DRIVER_CORE)
    log_dir = WORK / "logs" / "ab"
    upstream = start_fake_upstream(log_dir)
    b_src = (args.b or REPO).resolve() / "src"
    sides: dict[str, System] = {}
    try:
        assert upstream.port is not None
        for name, src, python, settings in (
            ("A", REPO / "src", args.a_python, env),
            ("B", b_src, args.b_python, b_env),
        ):
            sides[name] = start_gateway(
                f"gateway-{name}",
                upstream.port,
                log_dir,
                workers=1,
                ad_rate=ad_rate,
                cores=PROXY_CORE,
                extra_env=settings,
                src=src,
                python=python,
            )
            problem = run_async(warm_up(sides[name], {"openai"}, upstream))
            if problem:
                raise SystemExit(f"{name} failed its warm-up: {problem}")
        print(f"A: {REPO / 'src'} ({args.a_python}){_shown(env)}")
        print(f"B: {b_src} ({args.b_python}){_shown(b_env)}")
        print(f"load {spec.name}: {spec.title}; {requests} requests a round", flush=True)
        rounds: dict[str, list[Round]] = {"A": [], "B": []}
        for n in range(args.rounds):
            for name in ("A", "B") if n % 2 == 0 else ("B", "A"):
                rounds[name].append(_round(sides[name], spec, requests, ads[name]))
        _report(rounds)
    finally:
        for system in sides.values():
            system.stop()
        upstream.stop()
    return 0


def _shown(settings: dict[str, str]) -> str:
    return "".join(f" {name}={value}" for name, value in settings.items())


def _setting(parser: argparse.ArgumentParser, item: str) -> tuple[str, str]:
    name, equals, value = item.partition("=")
    if not equals or not name:
        parser.error(f"--env/--b-env {item!r}: expected NAME=VALUE")
    return name, value


def _report(rounds: dict[str, list[Round]]) -> None:
    least = min(r.user_s + r.system_s for measured in rounds.values() for r in measured)
    if least < MIN_CPU_S:
        print(
            f"warning: a round used {least:.2f} s of CPU, under the {MIN_CPU_S} s the clock-tick"
            " reading needs: raise --requests before reading the figures"
        )
    per: dict[str, dict[str, list[float]]] = {}
    for name, measured in rounds.items():
        per[name] = {}
        for one in measured:
            for figure, value in one.figures().items():
                per[name].setdefault(figure, []).append(value)
    for figure in per["A"]:
        a, b = per["A"][figure], per["B"][figure]
        ratios = sorted(y / x for x, y in zip(a, b, strict=True) if x)
        compared = (
            f"B/A median {statistics.median(ratios):.3f} (pairs {ratios[0]:.3f}-{ratios[-1]:.3f})"
            if ratios
            else "B/A n/a (A read 0 in every round)"
        )
        sides = f"A {statistics.median(a):9.4f}  B {statistics.median(b):9.4f}"
        print(f"{figure:>22}: {sides}  {compared}")


if __name__ == "__main__":
    sys.exit(main())
