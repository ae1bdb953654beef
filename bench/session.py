"""Session-stream scenario: the n8n face against the OpenAI endpoint, same gateway, same run.

    .venv/bin/python -m bench.session --quick      # a few seconds
    .venv/bin/python -m bench.session              # more streams, two alternating rounds
    .venv/bin/python -m bench.session --redis      # also a gateway on the local Redis store

One gateway process (pinned to core 0, the fake upstream and this driver on core 1) serves both
loads, alternately: OpenAI `POST /v1/chat/completions` streams (the ordinary load generator) and
session streams (`POST /init-stream`, then `GET /stream/{id}` read as EventSource text). Both
stream the same fake upstream answer (`gpt-bench-c200-d0`: all at once, so bursts arrive
together; and `gpt-bench-c200-d2`: 2 ms apart, one event per chunk). Reported per load:

- time to first event: request sent -> first content event (for a session: the GET, which starts
  generation; sessions are driven by a raw httptools client on keep-alive connections, like the
  load generator's, and the init round trip is shown apart);
- gateway CPU per 1,000 upstream chunks: the gateway's utime+stime over the load, divided by the
  content chunks the upstream streamed (the session face merges a burst into one event, so
  upstream chunks are the fair unit);
- the session/OpenAI ratio, against the issue's 20 % target.

Each session's callback goes to the fake upstream, which answers 200 like n8n's Wait node: the
callback's cost is part of the session's. On a shared, loaded machine the figures are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httptools
import jwt

from bench.loadgen import Load, LoadResult, Summary, Target, run_load
from bench.procs import (
    DRIVER_CORE,
    PROXY_CORE,
    cpu_seconds,
    pin_self,
    raise_nofile_limit,
    run_async,
)
from bench.systems import (
    REPO,
    SESSION_SECRET,
    WORK,
    System,
    session_env,
    start_fake_upstream,
    start_gateway,
)
from bench.workload import StreamShape, expected_tokens, model_name

SECRET = SESSION_SECRET


@dataclass
class SessionLoad:
    """What the session clients measured."""

    ttfe_ms: list[float] = field(default_factory=list)
    init_ms: list[float] = field(default_factory=list)
    errors: int = 0
    lost_text: int = 0
    events: int = 0
    failures: list[str] = field(default_factory=list)


class _EventReader:
    """One response of a raw HTTP/1.1 GET, parsed with httptools (as cheap as the OpenAI load
    generator's reader): the plain-text EventSource data until `[DONE]`."""

    def __init__(self) -> None:
        self.events = 0
        self.status = 0
        self.complete = False
        self.text: list[str] = []
        self.first = 0.0
        self._buffer = b""
        self.parser = httptools.HttpResponseParser(self)

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        self._buffer += body
        while b"\n\n" in self._buffer:
            block, self._buffer = self._buffer.split(b"\n\n", 1)
            lines = [line[6:] for line in block.split(b"\n") if line.startswith(b"data: ")]
            piece = b"\n".join(lines).decode()
            if not lines or piece == "[DONE]":
                continue
            if not self.first:
                self.first = time.perf_counter()
            self.text.append(piece)
            self.events += 1

    def on_message_complete(self) -> None:
        self.complete = True


class _JsonReader:
    """One JSON response, parsed with httptools."""

    def __init__(self) -> None:
        self.status = 0
        self.body = b""
        self.complete = False
        self.parser = httptools.HttpResponseParser(self)

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.complete = True


class _StreamConnection:
    """A keep-alive connection that GETs session streams one after another, like a load client."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._io: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def get(self, target: str) -> _EventReader:
        """Read one stream to its end."""
        if self._io is None:
            self._io = await asyncio.open_connection("127.0.0.1", self.port)
        reader, writer = self._io
        head = f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n"
        writer.write(head.encode())
        response = _EventReader()
        while not response.complete:
            data = await reader.read(65536)
            if not data:
                self.close()
                break
            response.parser.feed_data(data)
        return response

    async def post_json(self, target: str, payload: dict[str, Any]) -> tuple[int, Any]:
        """POST a JSON body; the status and the parsed reply."""
        if self._io is None:
            self._io = await asyncio.open_connection("127.0.0.1", self.port)
        reader, writer = self._io
        body = json.dumps(payload).encode()
        head = (
            f"POST {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        writer.write(head.encode() + body)
        response = _JsonReader()
        while not response.complete:
            data = await reader.read(65536)
            if not data:
                self.close()
                return 0, None
            response.parser.feed_data(data)
        return response.status, json.loads(response.body)

    def close(self) -> None:
        """Close the connection (the next GET opens another)."""
        if self._io is not None:
            self._io[1].close()
            self._io = None


def _p(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.5) - 1))]


_TOKEN: tuple[float, str] = (0.0, "")


def _token() -> str:
    """A JWT for /init-stream, signed afresh every minute (the driver's own CPU is kept down
    so that it does not inflate the times it measures)."""
    global _TOKEN
    now = time.time()
    if now - _TOKEN[0] > 60:
        _TOKEN = (now, jwt.encode({"exp": int(now) + 300}, SECRET, algorithm="HS256"))
    return _TOKEN[1]


async def _one_session(
    connection: _StreamConnection,
    resume: str,
    model: str,
    expected: str,
    out: SessionLoad,
) -> None:
    token = _token()
    started = time.perf_counter()
    status, reply = await connection.post_json(
        "/init-stream",
        {"n8nToken": token, "resumeUrl": resume, "prompt": "Say hello.", "model": model},
    )
    if status != 200:
        out.errors += 1
        return
    out.init_ms.append((time.perf_counter() - started) * 1000)
    target = "/" + reply["streamUrl"].split("://", 1)[1].split("/", 1)[1]
    sent = time.perf_counter()
    response = await connection.get(target)
    if response.status != 200 or not response.complete:
        out.errors += 1
        return
    out.events += response.events
    text, first = "".join(response.text), response.first
    out.ttfe_ms.append((first - sent) * 1000 if first else 0.0)
    if text != expected:
        out.lost_text += 1


async def _session_load(
    port: int,
    resume: str,
    shape: StreamShape,
    clients: int,
    streams: int,
    out: SessionLoad | None = None,
    pause_s: float = 0.0,
) -> SessionLoad:
    """`streams` sessions over `clients` connections; with `pause_s`, each client pauses that
    long on average (0.5-1.5x) between sessions, as the load generator's paced loads do."""
    out = SessionLoad() if out is None else out
    model = model_name("openai", shape)
    expected = "".join(expected_tokens(shape.chunks))
    queue = iter(range(streams))

    async def worker() -> None:
        connection = _StreamConnection(port)
        try:
            for _ in queue:
                if pause_s:
                    await asyncio.sleep(pause_s * (0.5 + random.random()))
                try:
                    await _one_session(connection, resume, model, expected, out)
                except (OSError, ValueError) as exc:  # a broken connection or reply
                    out.errors += 1
                    out.failures.append(f"{type(exc).__name__}: {exc}"[:120])
                    connection.close()
        finally:
            connection.close()

    await asyncio.gather(*(worker() for _ in range(clients)))
    return out


def resume_url(upstream_port: int) -> str:
    """The sessions' callback URL: the fake upstream, which accepts it as n8n's Wait node does."""
    return f"http://127.0.0.1:{upstream_port}/webhook-waiting/1"


async def run_session_load(
    port: int, upstream_port: int, shape: StreamShape, load: Load
) -> LoadResult:
    """``load`` as session streams, summarised like a load generator run (for ``bench.run``).

    Time to first token is the time to the first event after the GET; content chunks are the
    upstream's (the face may merge a burst into one event).
    """
    out = SessionLoad()
    cpu_before = time.process_time()
    started = time.perf_counter()
    work = _session_load(
        port, resume_url(upstream_port), shape, load.clients, load.requests, out, load.pause_s
    )
    timed_out = False
    try:
        await asyncio.wait_for(work, load.time_limit_s + load.grace_s)
    except TimeoutError:
        timed_out = True
    wall = time.perf_counter() - started
    done = len(out.ttfe_ms)
    errors = dict(Counter(out.failures).most_common())
    if out.errors > len(out.failures):
        errors["session failed (init or stream status)"] = out.errors - len(out.failures)
    if timed_out:
        errors["unfinished at the time limit"] = load.requests - done - out.errors
    result = LoadResult(
        requests_sent=load.requests if timed_out else done + out.errors,
        requests_ok=done,
        errors=errors,
        lost_text_streams=out.lost_text,
        content_chunks=done * shape.chunks,
        expected_chunks_per_stream=shape.chunks,
        wall_s=wall,
        chunks_per_s=done * shape.chunks / wall,
        requests_per_s=done / wall,
        loadgen_cpu_s=time.process_time() - cpu_before,
        ttft_ms=Summary.of(out.ttfe_ms),
    )
    return result


def _cpu(system: System) -> float:
    assert system.proc is not None
    return cpu_seconds(system.proc.pid)


async def _measure(
    system: System, resume: str, shape: StreamShape, clients: int, streams: int
) -> dict[str, Any]:
    before = _cpu(system)
    target = Target(
        system.port, "openai", model_name("openai", shape), tuple(expected_tokens(shape.chunks))
    )
    openai = await run_load(target, Load(clients, streams, 60))
    openai_cpu = _cpu(system) - before
    before = _cpu(system)
    session = await _session_load(system.port, resume, shape, clients, streams)
    session_cpu = _cpu(system) - before
    ok_sessions = len(session.ttfe_ms) - session.lost_text
    return {
        "openai": {
            "streams_ok": openai.requests_ok,
            "errors": openai.error_count,
            "ttft_ms_p50": openai.ttft_ms.p50,
            "ttft_ms_p90": openai.ttft_ms.p90,
            "cpu_per_1k_chunks_s": openai_cpu / max(1, openai.requests_ok * shape.chunks) * 1000,
        },
        "session": {
            "streams_ok": ok_sessions,
            "errors": session.errors,
            "lost_text": session.lost_text,
            "events_per_stream": session.events / max(1, len(session.ttfe_ms)),
            "ttfe_ms_p50": _p(session.ttfe_ms, 0.5),
            "ttfe_ms_p90": _p(session.ttfe_ms, 0.9),
            "init_ms_p50": _p(session.init_ms, 0.5),
            "cpu_per_1k_chunks_s": session_cpu / max(1, ok_sessions * shape.chunks) * 1000,
        },
    }


def _start(name: str, upstream_port: int, log_dir: Path, extra: dict[str, str]) -> System:
    env = {**session_env(upstream_port), **extra}
    return start_gateway(
        name, upstream_port, log_dir, workers=1, ad_rate="0", cores=PROXY_CORE, extra_env=env
    )


def _line(name: str, r: dict[str, Any]) -> str:
    o, s = r["openai"], r["session"]
    ttft = s["ttfe_ms_p50"] / o["ttft_ms_p50"] if o["ttft_ms_p50"] else float("nan")
    cpu = s["cpu_per_1k_chunks_s"] / o["cpu_per_1k_chunks_s"] if o["cpu_per_1k_chunks_s"] else 0
    return (
        f"{name:<14} first event p50 {o['ttft_ms_p50']:6.2f} ms openai | "
        f"{s['ttfe_ms_p50']:6.2f} ms session (x{ttft:.2f}; init {s['init_ms_p50']:.2f} ms)  "
        f"cpu/1k chunks {o['cpu_per_1k_chunks_s']:.3f} s | {s['cpu_per_1k_chunks_s']:.3f} s "
        f"(x{cpu:.2f})  errors {o['errors']}/{s['errors']}+{s['lost_text']} lost  "
        f"events/stream {s['events_per_stream']:.1f}"
    )


def _drop_keys(prefix: str) -> None:
    """Delete the run's Redis keys (they would expire anyway, one TTL later)."""
    from redis import Redis

    client = Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def main(argv: list[str] | None = None) -> int:
    """Run the session-stream scenario and print it; exit 1 on errors or lost text."""
    parser = argparse.ArgumentParser(prog="python -m bench.session")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--redis", action="store_true", help="also a gateway on the local Redis")
    args = parser.parse_args(argv)
    raise_nofile_limit()
    pin_self(DRIVER_CORE)
    shapes = (StreamShape(200, 0), StreamShape(200, 2))
    clients, streams, rounds = (4, 40, 1) if args.quick else (8, 200, 2)
    log_dir = WORK / "session"
    log_dir.mkdir(parents=True, exist_ok=True)
    upstream = start_fake_upstream(log_dir)
    resume = resume_url(upstream.port)
    variants: dict[str, dict[str, str]] = {"memory": {}}
    if args.redis:
        prefix = f"bench:{uuid.uuid4().hex}:"
        variants["redis"] = {"REDIS_URL": "redis://127.0.0.1:6379/0", "REDIS_KEY_PREFIX": prefix}
    results: dict[str, list[dict[str, Any]]] = {}
    failed = False
    try:
        for name, extra in variants.items():
            system = _start(f"gateway-session-{name}", upstream.port, log_dir, extra)
            try:
                run_async(_measure(system, resume, shapes[0], 2, 4))  # warm-up
                for round_no, shape in itertools.product(range(rounds), shapes):
                    result = run_async(_measure(system, resume, shape, clients, streams))
                    result["shape"] = model_name("openai", shape)
                    results.setdefault(name, []).append(result)
                    label = f"{name} c{shape.chunks}-d{shape.delay_ms} #{round_no + 1}"
                    print(_line(label, result), flush=True)
                    failed |= bool(
                        result["openai"]["errors"]
                        or result["session"]["errors"]
                        or result["session"]["lost_text"]
                    )
            finally:
                system.stop()
    finally:
        upstream.stop()
        if args.redis:
            _drop_keys(variants["redis"]["REDIS_KEY_PREFIX"])
    out = REPO / "bench" / "results" / "session-latest.json"
    doc = {
        "stamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "quick": args.quick,
        "clients": clients,
        "streams": streams,
        "chunks_per_stream": shape.chunks,
        "results": results,
    }
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"results: {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
