"""A low-overhead HTTP/1.1 streaming load generator on raw asyncio protocols.

Each of N clients holds one keep-alive connection and sends its requests one after another until
the run has sent M in all or its time is up. Per request it records the time to the first
*content* event, the whole stream's time, how many content chunks arrived and whether their text
is exactly what the fake upstream sent. It speaks the OpenAI, Anthropic and Gemini stream formats
(see ``bench.wire``), so "direct" runs can talk to the fake upstream's native endpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import resource
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, cast

from bench.wire import Exchange, Format, StreamStats, build_request

_CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True)
class Target:
    """Where to send requests and in which format: ``openai`` for proxies, native for direct."""

    port: int
    fmt: Format
    model: str
    expected: tuple[str, ...]
    api_key: str = "bench"
    strict_chunks: bool = True
    """False when the proxy may add chunks (the ad filter): then only lost text counts."""
    headers: tuple[tuple[str, str], ...] = ()
    """Extra request headers (e.g. the conversation-storage opt-in)."""


@dataclass(frozen=True)
class Load:
    """A load pattern: ``clients`` concurrent, ``requests`` in all, bounded by ``time_limit_s``."""

    clients: int
    requests: int
    time_limit_s: float
    grace_s: float = 15.0
    """After the time limit no request starts; in-flight ones get this long to finish."""
    fresh_connections: bool = False
    """One request per connection: each request opens its own and closes it after (a storm)."""
    pause_s: float = 0.0
    """Each client waits this long on average (uniformly 0.5-1.5x) between its requests, so that
    requests arrive spread out, not back to back (a paced load, below saturation)."""


@dataclass
class Summary:
    """Percentiles of a list of milliseconds."""

    n: int
    p50: float
    p90: float
    p99: float
    max: float
    mean: float

    @staticmethod
    def of(values: list[float]) -> Summary:
        """Nearest-rank percentiles of ``values`` (all zero when empty)."""
        if not values:
            return Summary(0, 0.0, 0.0, 0.0, 0.0, 0.0)
        ordered = sorted(values)

        def rank(q: float) -> float:
            return ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.5) - 1))]

        return Summary(
            len(ordered), rank(0.5), rank(0.9), rank(0.99), ordered[-1], sum(ordered) / len(ordered)
        )


@dataclass
class LoadResult:
    """What a load run measured."""

    requests_sent: int = 0
    requests_ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    lost_text_streams: int = 0
    chunk_count_mismatches: int = 0
    content_chunks: int = 0
    expected_chunks_per_stream: int = 0
    wall_s: float = 0.0
    chunks_per_s: float = 0.0
    requests_per_s: float = 0.0
    """Completed requests per second of wall time."""
    loadgen_cpu_s: float = 0.0
    ttft_ms: Summary = field(default_factory=lambda: Summary.of([]))
    stream_ms: Summary = field(default_factory=lambda: Summary.of([]))

    @property
    def error_count(self) -> int:
        """Requests that failed outright (HTTP error, broken stream, no end marker, unfinished)."""
        return sum(self.errors.values())

    @property
    def clean(self) -> bool:
        """No error, no lost text, no unexpected chunk count."""
        return not (self.error_count or self.lost_text_streams or self.chunk_count_mismatches)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        data = asdict(self)
        data["error_count"] = self.error_count
        data["clean"] = self.clean
        return data


class _Connection(asyncio.Protocol):
    """One keep-alive client connection; feeds received bytes to the current exchange."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.exchange: Exchange | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        exchange = self.exchange
        if exchange is None:
            self.close()  # bytes outside any response: the connection cannot be trusted
            return
        exchange.feed(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.exchange is not None:
            self.exchange.eof()

    def send(self, request: bytes) -> None:
        assert self.transport is not None
        self.transport.write(request)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class _Run:
    """Shared state of one load run."""

    def __init__(self, target: Target, load: Load) -> None:
        self.target = target
        self.load = load
        self.request = build_request(
            target.fmt, target.port, target.model, target.api_key, target.headers
        )
        self.sent = 0
        self.stop_at = 0.0
        self.result = LoadResult(expected_chunks_per_stream=len(target.expected))
        self.errors: Counter[str] = Counter()
        self.ttft: list[float] = []
        self.stream: list[float] = []
        self.expected_text = "".join(target.expected)

    async def client(self) -> None:
        loop = asyncio.get_running_loop()
        conn: _Connection | None = None
        try:
            while self.sent < self.load.requests and time.perf_counter() < self.stop_at:
                self.sent += 1
                started = time.perf_counter()
                if conn is None or conn.closed:
                    conn = await self.connect()
                    if conn is None:
                        continue
                exchange = Exchange(self.target.fmt, loop.create_future(), started)
                conn.exchange = exchange
                conn.send(self.request)
                stats = await exchange.future
                conn.exchange = None
                if not exchange.keep_alive or self.load.fresh_connections:
                    conn.close()
                self.record(stats)
                if self.load.pause_s:
                    await asyncio.sleep(self.load.pause_s * (0.5 + random.random()))
        finally:
            if conn is not None:
                conn.close()

    async def connect(self) -> _Connection | None:
        """A new connection to the target, or None (the failure counted as an error)."""
        loop = asyncio.get_running_loop()
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(_Connection, "127.0.0.1", self.target.port),
                _CONNECT_TIMEOUT,
            )
        except (OSError, TimeoutError) as exc:
            self.errors[f"connect: {type(exc).__name__}: {exc}"[:120]] += 1
            await asyncio.sleep(0.01)
            return None
        return conn

    def record(self, stats: StreamStats) -> None:
        if stats.error is not None:
            self.errors[stats.error[:160]] += 1
            return
        result = self.result
        result.requests_ok += 1
        result.content_chunks += stats.chunks
        if stats.first_content_at:
            self.ttft.append((stats.first_content_at - stats.started_at) * 1000)
        self.stream.append((stats.ended_at - stats.started_at) * 1000)
        text = "".join(stats.parts)
        if self.target.strict_chunks:
            if text != self.expected_text:
                result.lost_text_streams += 1
            if stats.chunks != len(self.target.expected):
                result.chunk_count_mismatches += 1
        elif not _in_order(self.target.expected, text):
            result.lost_text_streams += 1


def _in_order(tokens: tuple[str, ...], text: str) -> bool:
    """Every token appears in ``text``, in order (other text may sit between them)."""
    position = 0
    for tok in tokens:
        found = text.find(tok, position)
        if found < 0:
            return False
        position = found + len(tok)
    return True


async def run_load(target: Target, load: Load) -> LoadResult:
    """Drive ``load`` against ``target`` and summarise it."""
    run = _Run(target, load)
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    run.stop_at = started + load.time_limit_s
    tasks = [asyncio.create_task(run.client()) for _ in range(min(load.clients, load.requests))]
    done, pending = await asyncio.wait(tasks, timeout=load.time_limit_s + load.grace_s)
    for task in pending:
        task.cancel()
    for task in pending:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    for task in done:
        if task.exception() is not None:
            run.errors[f"client crashed: {task.exception()!r}"[:160]] += 1
    wall = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    result = run.result
    result.requests_sent = run.sent
    unfinished = run.sent - result.requests_ok - sum(run.errors.values())
    if unfinished > 0:
        run.errors["unfinished at the time limit"] += unfinished
    result.errors = dict(run.errors.most_common())
    result.wall_s = wall
    result.chunks_per_s = result.content_chunks / wall if wall else 0.0
    result.requests_per_s = result.requests_ok / wall if wall else 0.0
    result.loadgen_cpu_s = (cpu_after.ru_utime + cpu_after.ru_stime) - (
        cpu_before.ru_utime + cpu_before.ru_stime
    )
    result.ttft_ms = Summary.of(run.ttft)
    result.stream_ms = Summary.of(run.stream)
    return result
