"""What observability costs per chunk: the same streamed answers served in-process through the
app with its request observer (request id, record, observing stage, log line, metrics) and
without it (the inner app, where no record exists and so no observing stage runs).

    .venv/bin/python -m bench.observe_cost [--requests 300] [--rounds 7]

The mock provider with no delay writes one chunk per word, the costliest case for a per-write
wrapper. CPU is `time.process_time()` around each batch; batches alternate between the two
variants and the median of the rounds is reported, which keeps a loaded machine's drift out of
the ratio better than two separate runs of the full bench would.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import time

from starlette.types import ASGIApp, Message

from bench.asgi_request import chat_scope
from echo_stream.app import build_state, create_app
from echo_stream.settings import Settings

_BODY = (
    b'{"model": "echo-mock", "stream": true, '
    b'"messages": [{"role": "user", "content": "How does streaming work?"}]}'
)


async def _one(app: ASGIApp) -> int:
    """Serve one streamed answer; returns how many body writes (chunks) it took."""
    sent = False
    writes = 0

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": _BODY, "more_body": False}
        await asyncio.Event().wait()  # never disconnects
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        nonlocal writes
        if message["type"] == "http.response.body" and message.get("body"):
            writes += 1

    scope = chat_scope()
    await app(scope, receive, send)
    return writes


async def _batch(app: ASGIApp, requests: int) -> tuple[float, int]:
    start = time.process_time()
    chunks = 0
    for _ in range(requests):
        chunks += await _one(app)
    return time.process_time() - start, chunks


async def measure(requests: int, rounds: int) -> dict[str, float]:
    """Median CPU seconds per 1,000 chunks with and without the observer."""
    settings = Settings(_env_file=None, mock_delay_ms=0, ad_injection_rate=0, log_level="info")  # type: ignore[call-arg]
    observed = create_app(settings, build_state(settings))
    bare = observed.app  # type: ignore[attr-defined]  # the app inside RequestObserver
    logging.getLogger("echo_stream.request").setLevel(logging.INFO)
    logging.getLogger("echo_stream.request").addHandler(logging.NullHandler())
    logging.getLogger("echo_stream.request").propagate = False
    await _batch(observed, 20)  # warm up both paths
    await _batch(bare, 20)
    with_obs: list[float] = []
    without: list[float] = []
    for _ in range(rounds):
        for app, into in ((observed, with_obs), (bare, without)):
            cpu, chunks = await _batch(app, requests)
            into.append(cpu / chunks * 1000)
    on, off = statistics.median(with_obs), statistics.median(without)
    return {"with_s_per_1k": on, "without_s_per_1k": off, "added_pct": (on / off - 1) * 100}


def main(argv: list[str] | None = None) -> None:
    """Print the two figures and the added percentage."""
    parser = argparse.ArgumentParser(prog="python -m bench.observe_cost")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    result = asyncio.run(measure(args.requests, args.rounds))
    print(
        f"CPU per 1,000 chunks: {result['without_s_per_1k'] * 1000:.2f} ms without the observer, "
        f"{result['with_s_per_1k'] * 1000:.2f} ms with it: {result['added_pct']:+.1f} %"
    )


if __name__ == "__main__":
    main()
