"""Memory of the in-memory ad store under a long single-worker run: RSS every N requests.

Drives the whole app in this process (raw ASGI calls, no sockets) with the offline mock model,
ads on every answer, click tracking on and a distinct `user` per request: the worst case for the
store's click targets and per-user logs. After warm-up (the caps reached) RSS must stay flat.

    .venv/bin/python -m bench.ad_memory --requests 100000 --every 10000
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import resource
import sys
import time
from typing import Any

import orjson

from bench.asgi_request import serve_chat
from echo_stream.ads.store import MemoryAdStore
from echo_stream.app import build_state, create_app
from echo_stream.settings import Settings


def rss_mb() -> float:
    """Resident set size now, from /proc (ru_maxrss would only give the peak)."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


async def one_request(app: Any, number: int) -> None:
    body = orjson.dumps(
        {
            "model": "echo-mock",
            "messages": [{"role": "user", "content": f"Tell me about travel plans {number}"}],
            "user": f"user-{number}",
        }
    )
    status = await serve_chat(app, body)
    if status != 200:
        raise RuntimeError(f"request {number} answered {status}")


async def run(requests: int, every: int, ads: bool) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        mock_delay_ms=0,
        ad_injection_rate=1.0 if ads else 0.0,
        ad_track_clicks=True,
        min_response_length=0,
        ad_seed=1,
    )
    state = build_state(settings)
    app = create_app(settings, state)
    store = state.ads.store if state.ads is not None else None
    print(f"{'requests':>9} {'rss MB':>8} {'blocks':>9} {'targets':>8} {'users':>7} {'req/s':>7}")
    started = time.perf_counter()
    for number in range(1, requests + 1):
        await one_request(app, number)
        if number % every == 0:
            await asyncio.sleep(0.01)  # let background bookkeeping finish
            gc.collect()
            sizes = store.sizes() if isinstance(store, MemoryAdStore) else {}
            rate = number / (time.perf_counter() - started)
            print(
                f"{number:>9} {rss_mb():>8.1f} {sys.getallocatedblocks():>9} "
                f"{sizes.get('click_targets', 0):>8} "
                f"{sizes.get('users', 0):>7} {rate:>7.0f}",
                flush=True,
            )
    if state.ads is not None:
        await state.ads.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--every", type=int, default=10_000)
    parser.add_argument("--no-ads", action="store_true", help="the same run with ads off")
    args = parser.parse_args()
    asyncio.run(run(args.requests, args.every, not args.no_ads))


if __name__ == "__main__":
    main()
