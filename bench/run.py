"""Run the Echo Stream bench: direct upstream, nginx, the gateway and LiteLLM side by side.

    .venv/bin/python -m bench.run                 # everything (a few minutes)
    .venv/bin/python -m bench.run --quick         # small loads, direct + gateway only (< 60 s)
    .venv/bin/python -m bench.run --scenarios ttft1,throughput --no-litellm

The proxy under test runs on core 0; this process (the load generator) and the fake upstream
run on core 1. Results go to bench/results/<timestamp>.json and bench/results/latest.json.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.loadgen import Load, run_load
from bench.procs import (
    DRIVER_CORE,
    PROXY_CORE,
    Proc,
    RssSampler,
    Unavailable,
    cpu_seconds,
    cpu_times,
    pin_self,
    raise_nofile_limit,
    rss_bytes,
    run_async,
)
from bench.report import summary, write_json
from bench.rounds import combine
from bench.scenarios import GATEWAYS, SYSTEMS, Case, build_scenarios, evaluate
from bench.session import run_session_load
from bench.systems import REPO, WORK, System, start_fake_upstream, start_system, target_for
from bench.workload import Route, StreamShape, model_name

_MB = 1024 * 1024


async def _measure(case: Case, system: System, upstream: Proc) -> dict[str, Any]:
    """Drive one case's load through ``system``; the load plus proxy CPU and memory."""
    spec = case.load
    target = target_for(
        system, case.route, spec.shape, stream=spec.stream, close=spec.fresh_connections
    )
    pid = system.proc.pid if system.proc is not None else None
    sampler = RssSampler(pid) if pid is not None and spec.sample_rss else None
    proxy_times_before = cpu_times(pid) if pid is not None else (0.0, 0.0)
    upstream_cpu_before = cpu_seconds(upstream.pid)
    if sampler is not None:
        sampler.start()
    load = spec.load()
    if system.name == "gateway-session":  # the session face: POST /init-stream + GET /stream/{id}
        result = await run_session_load(system.port, upstream.port, spec.shape, load)
    else:
        result = await run_load(target, load)
    peak = await sampler.stop() if sampler is not None else None
    proxy_user = proxy_system = proxy_cpu = None
    if pid is not None:
        user, system_time = cpu_times(pid)
        proxy_user = user - proxy_times_before[0]
        proxy_system = system_time - proxy_times_before[1]
        proxy_cpu = proxy_user + proxy_system
    chunks = result.content_chunks
    return {
        "system": system.name,
        "route": case.route,
        "load": {
            "name": spec.name,
            "clients": spec.clients,
            "requests": spec.requests,
            "chunks": spec.shape.chunks,
            "delay_ms": spec.shape.delay_ms,
            "time_limit_s": spec.time_limit_s,
            "stream": spec.stream,
            "fresh_connections": spec.fresh_connections,
        },
        "client_format": target.fmt,
        "model": target.model,
        "proxy_cores": system.cores,
        "result": result.to_json(),
        "proxy_cpu_s": proxy_cpu,
        # The kernel's share (system calls, loopback TCP) against the process's own work.
        "proxy_user_s": proxy_user,
        "proxy_system_s": proxy_system,
        "proxy_cpu_per_1k_chunks_s": (
            proxy_cpu / chunks * 1000 if proxy_cpu is not None and chunks else None
        ),
        "proxy_requests_per_cpu_s": (
            result.requests_ok / proxy_cpu if proxy_cpu else None
        ),  # what one core of the proxy serves, whether or not the load saturated it
        "proxy_cpu_per_request_ms": (
            proxy_cpu / result.requests_ok * 1000
            if proxy_cpu is not None and result.requests_ok
            else None
        ),
        "proxy_peak_rss_mb": peak / _MB if peak is not None else None,
        "proxy_rss_after_mb": rss_bytes(pid) / _MB if pid is not None else None,
        "upstream_cpu_s": cpu_seconds(upstream.pid) - upstream_cpu_before,
    }


async def warm_up(system: System, routes: set[Route], upstream: Proc) -> str | None:
    """A few unmeasured streams per route (imports, pools, caches); the first error, if any."""
    if system.name == "gateway-session":
        result = await run_session_load(
            system.port, upstream.port, StreamShape(20, 0), Load(4, 24, 30)
        )
        if result.errors:
            return f"session: {next(iter(result.errors))}"
    for route in sorted(routes):
        target = target_for(system, route, StreamShape(20, 0))
        result = await run_load(target, Load(clients=4, requests=24, time_limit_s=30))
        if result.errors:
            return f"{route}: {next(iter(result.errors))}"
    return None


def _one_line(case: Case, data: dict[str, Any]) -> str:
    result = data["result"]
    ttft = result["ttft_ms"]
    cpu = data["proxy_cpu_per_1k_chunks_s"]
    rss = data["proxy_peak_rss_mb"]
    parts = [
        f"{case.key:32}",
        f"ok {result['requests_ok']}/{result['requests_sent']}",
        f"ttft p50 {ttft['p50']:.2f} p99 {ttft['p99']:.2f} ms",
        f"{result['chunks_per_s']:,.0f} chunks/s",
        f"{result['requests_per_s']:,.0f} req/s",
    ]
    if cpu is not None:
        user, system_time = data.get("proxy_user_s"), data.get("proxy_system_s")
        split = f" ({100 * user / (user + system_time):.0f} % user)" if user and system_time else ""
        parts.append(f"cpu/1k {cpu:.3f} s{split}")
    if data["proxy_cpu_per_request_ms"] is not None:
        parts.append(f"cpu/req {data['proxy_cpu_per_request_ms'] * 1000:.0f} µs")
    if rss is not None:
        parts.append(f"peak rss {rss:.0f} MB")
    if not result["clean"]:
        parts.append(
            f"ERRORS {result['error_count']} LOST {result['lost_text_streams']} "
            f"MISMATCHED {result['chunk_count_mismatches']}"
        )
    return "  ".join(parts)


def _selected_cases(
    args: argparse.Namespace,
) -> tuple[list[Case], dict[str, str], dict[str, list[str]]]:
    """The cases to measure (each once, by system, then by load), skipped systems, and
    scenario -> case keys."""
    scenarios = build_scenarios(args.quick)
    names = list(scenarios) if not args.scenarios else args.scenarios.split(",")
    unknown = [n for n in names if n not in scenarios]
    if unknown:
        sys.exit(f"unknown scenarios {unknown}; choose from {', '.join(scenarios)}")
    skipped: dict[str, str] = {}
    if args.quick or args.no_nginx:
        skipped["nginx"] = "not run (--quick or --no-nginx)"
    if args.quick or args.no_litellm:
        skipped["litellm"] = "not run (--quick or --no-litellm)"
    if args.systems:
        for system in set(SYSTEMS) - set(args.systems.split(",")):
            skipped.setdefault(system, "not selected (--systems)")
    unique: dict[str, Case] = {}
    for name in names:
        for case in scenarios[name].cases:
            if case.system not in skipped:
                unique.setdefault(case.key, case)
    # Each system measures its loads in one order, those of 1,000 connections (slow, storm)
    # last: a load run after one of them meets a process that has just held 1,000 connections,
    # and two systems compared on a load (ads off and on, say) must meet it in the same state.
    loads = list(dict.fromkeys(c.load.name for c in unique.values()))
    ordered = sorted(
        unique.values(),
        key=lambda c: (
            SYSTEMS.index(c.system),
            c.load.clients >= 1000,
            loads.index(c.load.name),
        ),
    )
    chosen = {n: [c.key for c in scenarios[n].cases if c.system not in skipped] for n in names}
    return ordered, skipped, chosen


def _one_round(
    cases: list[Case],
    skipped: dict[str, str],
    notes: list[str],
    runs: dict[str, list[dict[str, Any]]],
    upstream: Proc,
    log_dir: Path,
    models: set[str],
    gateway_python: str,
) -> None:
    """Start each system in turn, measure its cases once into `runs`, stop it."""
    for name in SYSTEMS:
        mine = [c for c in cases if c.system == name]
        if not mine or name in skipped:
            continue
        try:
            system = start_system(name, upstream.port, log_dir, models, gateway_python)
        except Unavailable as exc:
            print(f"skipping {name}: {exc}", flush=True)
            skipped[name] = str(exc)
            if name == "gateway":  # its variants would fail the same way
                for variant in GATEWAYS:
                    skipped.setdefault(variant, f"gateway did not start: {exc}")
            continue
        notes.extend(system.notes)
        print(f"{name} on 127.0.0.1:{system.port} (cores {system.cores or 'any'})", flush=True)
        try:
            problem = run_async(warm_up(system, {c.route for c in mine}, upstream))
            if problem:
                notes.append(f"{name} warm-up saw errors: {problem}")
            for case in mine:
                result = run_async(_measure(case, system, upstream))
                runs.setdefault(case.key, []).append(result)
                print("  " + _one_line(case, result), flush=True)
                time.sleep(0.3)
        finally:
            system.stop()


def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    """Start everything, measure every selected case, stop everything; the results document."""
    machine = _machine(args.gateway_python)  # first: a --gateway-python that cannot run stops here
    cases, skipped, scenarios = _selected_cases(args)
    loads = {c.load.name: c.load.title for c in cases}
    stamp = time.strftime("%Y%m%d-%H%M%S")
    log_dir = WORK / "logs" / stamp
    notes: list[str] = []
    runs: dict[str, list[dict[str, Any]]] = {}
    models = {model_name(c.route, c.load.shape) for c in cases}
    models |= {model_name(r, StreamShape(20, 0)) for r in ("openai", "anthropic", "gemini")}
    upstream = start_fake_upstream(log_dir)
    print(
        f"fake upstream on 127.0.0.1:{upstream.port} (core {DRIVER_CORE}); logs in {log_dir}",
        flush=True,
    )
    try:
        for round_number in range(args.repeat):
            if args.repeat > 1:
                print(f"round {round_number + 1} of {args.repeat}", flush=True)
            _one_round(cases, skipped, notes, runs, upstream, log_dir, models, args.gateway_python)
    finally:
        upstream.stop()
    results = {key: combine(rounds) for key, rounds in runs.items()}
    return {
        "stamp": stamp,
        "quick": args.quick,
        "repeat": args.repeat,
        "machine": machine,
        "loads": loads,
        "scenarios": scenarios,
        "pinning": {
            "proxy_core": PROXY_CORE,
            "driver_core": DRIVER_CORE,
            "gateway-2w": f"{PROXY_CORE},{DRIVER_CORE} (unpinned)",
        },
        "skipped": skipped,
        "notes": list(dict.fromkeys(notes)),
        "cases": results,
        "_checks": evaluate(results, args.quick),
    }


def _machine(gateway_python: str) -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    nginx = ""
    with contextlib.suppress(OSError):
        nginx = subprocess.run(
            ["nginx", "-v"], capture_output=True, text=True, check=False
        ).stderr.strip()
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "gateway_python": _interpreter(gateway_python),
        "nginx": nginx,
    }


def _interpreter(python: str) -> str:
    """`python`'s path, version and build, as the gateways' results were measured on."""
    probe = "import platform; print(platform.python_version(), *platform.python_build())"
    try:
        found = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise SystemExit(f"--gateway-python {python}: cannot run it ({exc})") from exc
    return f"{python}: {found.stdout.strip()}"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; exit status 1 when any gateway case had errors or lost chunks."""
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small loads; direct + gateway only")
    parser.add_argument("--scenarios", default="", help="comma-separated subset of scenarios")
    parser.add_argument("--systems", default="", help="comma-separated subset of systems")
    parser.add_argument("--no-litellm", action="store_true")
    parser.add_argument("--no-nginx", action="store_true")
    parser.add_argument(
        "--gateway-python",
        default=sys.executable,
        help="the interpreter that runs the gateways (default: this one), e.g. an optimised "
        "(PGO/LTO) build's venv like the Docker image's",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="rounds of every system; each figure is the median of its rounds (bench/rounds.py)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="results directory (default bench/results; bench/.work/results for --quick, "
        "so a smoke run never overwrites the committed latest.json)",
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.out is None:
        args.out = REPO / "bench" / (".work/results" if args.quick else "results")
    raise_nofile_limit()
    if not pin_self(DRIVER_CORE):
        print(f"note: cannot pin the load generator to core {DRIVER_CORE}", flush=True)
    doc = run_bench(args)
    path = write_json(doc, args.out, doc["stamp"])
    print()
    print(summary(doc))
    print(f"\nresults: {path}")
    failed = [c for c in doc["_checks"] if c.name.startswith("no error") and c.passed is False]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
