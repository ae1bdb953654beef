"""FastClient against aiohttp, each inside the whole gateway, in one run.

    .venv/bin/python -m bench.transport_compare            # about two minutes
    .venv/bin/python -m bench.transport_compare --quick    # a smoke run

The gateway runs as a real uvicorn process pinned to core 0, with its upstream client swapped
by `bench.gateway_client`; the fake upstream and this load generator share core 1. For each
client, alternating rounds measure the gateway process's CPU time (from /proc, whole tree):

- CPU per 1,000 streamed chunks: 10 clients, 200-chunk streams without delay;
- CPU per request: 10 clients, 1-chunk streams (connection handling, request, response head);
- added TTFT at 10 clients: p50 time to first token through the gateway minus the same load
  sent straight to the fake upstream (20 chunks, 10 ms apart).

The issue's rule: if FastClient saves less than a quarter on each of the three, replace it
with aiohttp; otherwise keep it. The verdict is printed and written with the numbers to
`bench/results/transport-<time>.json`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.loadgen import Load, LoadResult, Target, run_load
from bench.procs import (
    DRIVER_CORE,
    PROXY_CORE,
    Proc,
    Unavailable,
    cpu_seconds,
    free_port,
    pin_self,
    raise_nofile_limit,
    run_async,
    spawn,
    wait_healthy,
)
from bench.systems import REPO, WORK, child_env, start_fake_upstream
from bench.workload import StreamShape, expected_tokens, model_name

CLIENTS = ("fastclient", "aiohttp")
LONG = StreamShape(chunks=200, delay_ms=0)
SHORT = StreamShape(chunks=1, delay_ms=0)
PACED = StreamShape(chunks=20, delay_ms=10)


@dataclass(frozen=True)
class Sizes:
    chunk_requests: int
    short_requests: int
    ttft_requests: int
    rounds: int


FULL = Sizes(chunk_requests=400, short_requests=3000, ttft_requests=300, rounds=2)
QUICK = Sizes(chunk_requests=40, short_requests=200, ttft_requests=30, rounds=1)


def _target(port: int, shape: StreamShape) -> Target:
    return Target(port, "openai", model_name("openai", shape), tuple(expected_tokens(shape.chunks)))


def _check(result: LoadResult, what: str) -> None:
    if not result.clean:
        raise RuntimeError(f"{what}: unclean run: {result.errors}")


def _start_gateway(client: str, upstream_port: int, log_dir: Path) -> tuple[int, Proc]:
    port = free_port()
    upstream = f"http://127.0.0.1:{upstream_port}"
    env = child_env(
        {
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "WORKERS": "1",
            "OPENAI_API_KEY": "bench",
            "OPENAI_BASE_URL": f"{upstream}/v1",
            "AD_INJECTION_RATE": "0",
            "LOG_LEVEL": "warning",
        }
    )
    argv = [sys.executable, "-m", "bench.gateway_client", client]
    proc = spawn(
        f"gateway-{client}", argv, port=port, log_dir=log_dir, cores=PROXY_CORE, env=env, cwd=REPO
    )
    wait_healthy(proc, "/health", timeout=30)
    return port, proc


async def _cpu_per(
    pid: int, port: int, shape: StreamShape, requests: int
) -> tuple[float, int, int]:
    """Gateway CPU seconds for `requests` streams of `shape`, with chunks and requests done."""
    before = cpu_seconds(pid)
    result = await run_load(
        _target(port, shape), Load(clients=10, requests=requests, time_limit_s=120)
    )
    cpu = cpu_seconds(pid) - before
    _check(result, f"{shape}")
    return cpu, result.content_chunks, result.requests_ok


async def _ttft_p50(port: int, requests: int) -> float:
    result = await run_load(
        _target(port, PACED), Load(clients=10, requests=requests, time_limit_s=120)
    )
    _check(result, "ttft")
    return result.ttft_ms.p50


async def _measure(
    client: str, pid: int, port: int, upstream_port: int, sizes: Sizes
) -> dict[str, float]:
    await run_load(_target(port, LONG), Load(clients=10, requests=20, time_limit_s=30))  # warm-up
    cpu, chunks, _ = await _cpu_per(pid, port, LONG, sizes.chunk_requests)
    short_cpu, _, requests = await _cpu_per(pid, port, SHORT, sizes.short_requests)
    direct = await _ttft_p50(upstream_port, sizes.ttft_requests)
    through = await _ttft_p50(port, sizes.ttft_requests)
    return {
        "cpu_ms_per_1000_chunks": cpu / chunks * 1000 * 1000,
        "cpu_ms_per_request": short_cpu / requests * 1000,
        "added_ttft_ms_p50": through - direct,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    raise_nofile_limit()
    pin_self(DRIVER_CORE)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    log_dir = WORK / "logs" / f"transport-{stamp}"
    upstream = start_fake_upstream(log_dir)
    samples: dict[str, list[dict[str, float]]] = {client: [] for client in CLIENTS}
    try:
        for round_number in range(sizes.rounds):
            for client in CLIENTS if round_number % 2 == 0 else tuple(reversed(CLIENTS)):
                port, proc = _start_gateway(client, upstream.port, log_dir)
                try:
                    measured = run_async(_measure(client, proc.pid, port, upstream.port, sizes))
                finally:
                    proc.stop()
                samples[client].append(measured)
                print(
                    f"round {round_number + 1} {client:>10}: "
                    + ", ".join(f"{k} {v:.3f}" for k, v in measured.items()),
                    flush=True,
                )
    except Unavailable as exc:
        raise SystemExit(f"bench unavailable: {exc}") from exc
    finally:
        upstream.stop()
    report(samples, sizes)


def report(samples: dict[str, list[dict[str, float]]], sizes: Sizes) -> None:
    """Medians per client, the saving of FastClient on each measure, and the verdict."""
    medians = {
        client: {key: statistics.median(s[key] for s in runs) for key in runs[0]}
        for client, runs in samples.items()
    }
    savings = {
        key: 1 - medians["fastclient"][key] / medians["aiohttp"][key]
        if medians["aiohttp"][key] > 0
        else 0.0
        for key in medians["fastclient"]
    }
    keep = any(saving >= 0.25 for saving in savings.values())
    print(f"\n{'measure':<26} {'fastclient':>11} {'aiohttp':>11} {'saving':>8}")
    for key, saving in savings.items():
        fast, other = medians["fastclient"][key], medians["aiohttp"][key]
        print(f"{key:<26} {fast:>11.3f} {other:>11.3f} {saving:>7.0%}")
    verdict = "keep FastClient" if keep else "replace FastClient with aiohttp"
    print(f"\nverdict (a quarter or more saved on any measure keeps it): {verdict}")
    out = REPO / "bench" / "results" / f"transport-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(
        json.dumps(
            {
                "sizes": sizes.__dict__,
                "samples": samples,
                "medians": medians,
                "savings": savings,
                "verdict": verdict,
            },
            indent=2,
        )
    )
    print(f"written to {out.relative_to(REPO)}")


if __name__ == "__main__":
    main()
