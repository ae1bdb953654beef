"""Where one request's microseconds go: short streams served in-process, profiled by area.

    .venv/bin/python -m bench.request_profile [--requests 3000] [--chunks 1] [--ads]
        [--no-network]

The app is the real one (observer, fast path, pipeline, FastClient) called straight through ASGI,
without uvicorn, one request after another; the upstream is the bench's fake (a subprocess on
core 1, this process pinned to core 0). It prints the CPU per request measured without a
profiler (median of rounds), then a cProfile of the same requests with its own time summed by
area of the code, as shares: cProfile slows small functions more than large ones, so read the
shares as where to look, and the unprofiled figure as the cost.

`--no-network` answers from memory instead (`bench.canned_upstream`: the same stream, one read
per event, no sockets): the gateway's own Python above the transport, a steadier figure for
comparing changes there.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import statistics
import time
from collections import Counter
from typing import Any

import uvloop

from bench import canned_upstream
from bench.asgi_request import serve_chat
from bench.procs import PROXY_CORE
from bench.systems import WORK, start_fake_upstream

_UNUSED_PORT = 9
"""With --no-network the upstream URL is never dialled (the discard port, should it be)."""

AREAS: tuple[tuple[str, str], ...] = (
    ("echo_stream/api/observe", "observer: request id, record, log line, metrics, usage"),
    ("echo_stream/ops/", "observer: request id, record, log line, metrics, usage"),
    ("prometheus_client", "observer: request id, record, log line, metrics, usage"),
    ("echo_stream/api/", "edge: fast path, key, body, validation, handler"),
    ("echo_stream/protocol", "edge: fast path, key, body, validation, handler"),
    ("pydantic", "edge: fast path, key, body, validation, handler"),
    ("starlette", "edge: fast path, key, body, validation, handler"),
    ("echo_stream/routing", "routing and the ad decision"),
    ("echo_stream/ads/", "routing and the ad decision"),
    ("echo_stream/providers/transport", "upstream HTTP: pool, request, response parsing"),
    ("httptools", "upstream HTTP: pool, request, response parsing"),
    ("echo_stream/providers/", "provider: request body, SSE and JSON decoding, events"),
    ("echo_stream/streaming/sse", "provider: request body, SSE and JSON decoding, events"),
    ("orjson", "provider: request body, SSE and JSON decoding, events"),
    ("echo_stream/streaming/chunks", "OpenAI chunk encoding"),
    ("echo_stream/streaming/", "pipeline and response: first-token guard, disconnect watch"),
    ("uvloop", "socket I/O: uvloop transports (system calls)"),
    ("asyncio", "asyncio: tasks, futures, timeouts"),
    ("_weakrefset", "asyncio: tasks, futures, timeouts"),
    ("contextlib", "asyncio: tasks, futures, timeouts"),
)


def _body(chunks: int) -> bytes:
    return (
        b'{"model": "gpt-bench-c%d-d0", "stream": true, '
        b'"messages": [{"role": "user", "content": "Say hello."}]}' % chunks
    )


async def _one(app: Any, body: bytes) -> None:
    status = await serve_chat(app, body, [(b"authorization", b"Bearer bench")])
    if status != 200:
        raise RuntimeError(f"the gateway answered {status}")
    # Let the request's background work run (the ad bookkeeping's writes, say), as a server's
    # loop would between requests; with `--no-network` nothing above ever suspends.
    await asyncio.sleep(0)


async def _lifespan(app: Any) -> tuple[asyncio.Queue[dict[str, str]], asyncio.Future[None]]:
    queue: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    started = asyncio.get_running_loop().create_future()

    async def send(message: dict[str, Any]) -> None:
        if not started.done():
            if message["type"].endswith("failed"):
                started.set_exception(RuntimeError(message.get("message", "start-up failed")))
            else:
                started.set_result(None)

    await queue.put({"type": "lifespan.startup"})
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}}
    task = asyncio.ensure_future(app(scope, queue.get, send))
    await started
    return queue, task


def area_of(filename: str, name: str) -> str:
    """The area of the code a profiled function belongs to (builtins by their owner's name)."""
    where = name if filename == "~" else filename
    for marker, area in AREAS:
        if marker in where:
            return area
    return "other (builtins, the driver)"


async def measure(args: argparse.Namespace, upstream_port: int) -> None:
    """Print the CPU per request and the profile's shares by area."""
    if args.no_network:
        canned_upstream.install()
    os.environ.update(
        {
            "OPENAI_API_KEY": "bench",
            "OPENAI_BASE_URL": f"http://127.0.0.1:{upstream_port}/v1",
            "AD_INJECTION_RATE": "1" if args.ads else "0",
            "LOG_LEVEL": "warning",
            "DATA_DIR": str(WORK / "request-profile-data"),
        }
    )
    from echo_stream.app import build_state, create_app  # after the environment is set
    from echo_stream.settings import Settings

    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    app = create_app(settings, build_state(settings))
    queue, lifespan = await _lifespan(app)
    body = _body(args.chunks)
    for _ in range(300):  # warm-up: imports, pools, caches
        await _one(app, body)
    rounds = []
    for _ in range(args.rounds):
        start = time.process_time()
        for _ in range(args.requests):
            await _one(app, body)
        rounds.append((time.process_time() - start) / args.requests * 1e6)
    print(
        f"CPU per request, {args.chunks}-chunk stream, ads {'on' if args.ads else 'off'}"
        f"{', no network' if args.no_network else ''}: "
        f"{statistics.median(rounds):.0f} us (median of {args.rounds} rounds: "
        f"{', '.join(f'{r:.0f}' for r in rounds)})"
    )
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(args.requests):
        await _one(app, body)
    profile.disable()
    await queue.put({"type": "lifespan.shutdown"})
    await lifespan
    stats = pstats.Stats(profile)
    by_area: Counter[str] = Counter()
    for (filename, _line, name), row in stats.stats.items():  # type: ignore[attr-defined]
        by_area[area_of(filename, name)] += row[2]  # own time
    total = sum(by_area.values())
    print("profiled own time by area (shares of the profiled total):")
    for area, seconds in by_area.most_common():
        print(f"  {100 * seconds / total:5.1f} %  {area}")
    if args.top:
        print()
        stats.sort_stats("tottime").print_stats(args.top)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench.request_profile", description=__doc__)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--chunks", type=int, default=1)
    parser.add_argument("--ads", action="store_true", help="AD_INJECTION_RATE=1")
    parser.add_argument("--top", type=int, default=0, help="also print the top N functions")
    parser.add_argument(
        "--no-network", action="store_true", help="answer from memory (bench.canned_upstream)"
    )
    args = parser.parse_args(argv)
    os.sched_setaffinity(0, {int(PROXY_CORE)})
    if args.no_network:
        uvloop.run(measure(args, _UNUSED_PORT))
        return
    upstream = start_fake_upstream(WORK / "logs" / "request-profile")
    try:
        uvloop.run(measure(args, upstream.port))
    finally:
        upstream.stop()


if __name__ == "__main__":
    main()
