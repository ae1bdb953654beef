"""The relay (`streaming.relay`): plain reads written without the response's task, byte for byte
what the task writes; everything else left to the task. A live gateway on its own server
protocol, the socket upstream (the production HTTP client), raw bytes compared."""

from __future__ import annotations

import json
import random
import re
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from echo_stream.streaming.relay import Relay
from tests.conftest import make_app
from tests.upstreams import Reply, SocketUpstream, openai_stream, openai_tool_stream

PIECES = ["Hello", " there", ", wörld 🙂", ' "quoted"', " back\\slash", "\nnew line", " end."]
_HEAD = {"id": "chatcmpl-up", "object": "chat.completion.chunk", "created": 1, "model": "m"}


def _events(stream: bytes) -> list[bytes]:
    """One upstream piece per SSE event (each its own read, as a token stream arrives)."""
    return [event + b"\n\n" for event in stream.split(b"\n\n") if event]


def _chunk(choices: list[dict[str, Any]]) -> bytes:
    return b"data: " + json.dumps({**_HEAD, "choices": choices}).encode() + b"\n\n"


def _text(content: str, index: int = 0) -> bytes:
    return _chunk([{"index": index, "delta": {"content": content}, "finish_reason": None}])


def _two_choices() -> list[bytes]:
    finish = [{"index": i, "delta": {}, "finish_reason": "stop"} for i in (0, 1)]
    return [_text("A0", 0), _text("B0", 1), _text("A1", 0), _text("B1", 1), _text("A2", 0),
            _chunk(finish), b"data: [DONE]\n\n"]  # fmt: skip


def _batched(stream: bytes, seed: int) -> list[bytes]:
    """Events grouped into reads of 1-4 whole events, sometimes split mid-event."""
    events, rng, reads = _events(stream), random.Random(seed), []
    while events:
        take = rng.randint(1, 4)
        read, events = b"".join(events[:take]), events[take:]
        if rng.random() < 0.3 and len(read) > 10:
            cut = rng.randint(1, len(read) - 1)
            reads += [read[:cut], read[cut:]]
        else:
            reads.append(read)
    return reads


SHAPES: dict[str, list[bytes]] = {
    "one event per read": _events(openai_stream(PIECES)),
    "no usage": _events(openai_stream(PIECES, usage=False)),
    "batched and split reads": _batched(openai_stream(PIECES * 6), seed=7),
    "two choices": _two_choices(),
    "tool calls": _events(openai_tool_stream()),
    "no [DONE] at the end": _events(openai_stream(PIECES))[:-1],
    "malformed payload mid-stream": [*_events(openai_stream(PIECES))[:4], b"data: {oops\n\n"],
    "upstream error mid-stream": [
        *_events(openai_stream(PIECES))[:4],
        b'data: {"error": {"message": "overloaded"}}\n\n',
    ],
    "cut short": _events(openai_stream(PIECES))[:5],
    "a role in every delta (Ollama, OpenRouter)": [
        _chunk([{"index": 0, "delta": {"role": "assistant", "content": piece}}])
        for piece in ["", *PIECES]
    ]
    + [_chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}]), b"data: [DONE]\n\n"],
    "text after [DONE]": [*_events(openai_stream(PIECES[:3], usage=False)), _text("late")],
    "[DONE] with no finish, then text": [
        *[e for e in _events(openai_stream(PIECES[:3], usage=False)) if b'"stop"' not in e],
        _text("late"),
        b": the body goes on after its end\n\n",
    ],
}


@pytest.fixture
def takes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bool]]:
    """What `Relay.take` answered, call by call."""
    answers: list[bool] = []
    take = Relay.take

    def counting(self: Relay, *args: Any) -> bool:
        answers.append(take(self, *args))
        return answers[-1]

    monkeypatch.setattr(Relay, "take", counting)
    yield answers


def _normalised(body: bytes) -> bytes:
    """The response with its per-request ids and timestamp made equal."""
    body = re.sub(rb'"id":"chatcmpl-[^"]+"', b'"id":"X"', body)
    body = re.sub(rb'"request_id":"req_[0-9a-f]+"', b'"request_id":"X"', body)
    return re.sub(rb'"created":\d+', b'"created":0', body)


def _stream(base: str, headers: dict[str, str] | None = None) -> bytes:
    payload = {"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "hi"}],
               "stream_options": {"include_usage": True}}  # fmt: skip
    with httpx.stream("POST", f"{base}/v1/chat/completions", json=payload,
                      headers=headers or {}, timeout=30) as response:  # fmt: skip
        assert response.status_code == 200, response.read()
        return response.read()


@pytest.mark.parametrize("shape", SHAPES)
def test_the_relay_writes_exactly_what_the_task_would(
    shape: str,
    server: Callable[..., str],
    takes: list[bool],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pieces = SHAPES[shape]
    upstream = SocketUpstream(Reply(pieces=pieces, delay=0.005), Reply(pieces=pieces, delay=0.005))
    base = server(make_app(upstream))
    relayed = _stream(base)
    took = sum(takes)
    monkeypatch.setattr(Relay, "take", lambda self, *args: False)  # the task does every read
    assert _normalised(relayed) == _normalised(_stream(base))
    if shape in ("one event per read", "no usage", "batched and split reads", "cut short"):
        assert took >= 2, takes  # it did write some reads itself
    if shape == "tool calls":
        assert took == 0  # no plain text for choice 0 in it: every read is the task's


def test_the_relay_stays_out_of_recorded_answers(
    server: Callable[..., str], takes: list[bool]
) -> None:
    pieces = _events(openai_stream(PIECES * 4))
    upstream = SocketUpstream(*(Reply(pieces=pieces, delay=0.005) for _ in range(2)))
    base = server(make_app(upstream))
    _stream(base, {"X-Conversation-Id": "new"})
    assert takes == []  # a recording sees every event: no relay offered
    _stream(base)
    assert any(takes)


SENTENCES = [f" Sentence number {n} is here." for n in range(40)]


def _ad_free(body: bytes) -> tuple[bytes, list[str]]:
    """The normalised response with its ad chunks taken out, and the texts before each ad."""
    kept, before, text = [], [], ""
    for event in body.split(b"\n\n"):
        if b'"content":' in event and b"[ad]" in event:
            before.append(text)
            continue
        if event.startswith(b"data: {") and b'"content":"' in event:
            text += json.loads(event[6:])["choices"][0]["delta"]["content"]
        kept.append(event)
    return _normalised(b"\n\n".join(kept)), before


def test_answers_with_an_ad_stage_are_relayed_with_the_ad_where_the_stage_puts_it(
    server: Callable[..., str], takes: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    pieces = _events(openai_stream(SENTENCES))
    upstream = SocketUpstream(*(Reply(pieces=pieces, delay=0.005) for _ in range(2)))
    base = server(make_app(upstream, ad_injection_rate=1.0, min_response_length=200))
    relayed = _stream(base)
    took = sum(takes)
    monkeypatch.setattr(Relay, "take", lambda self, *args: False)  # the task does every read
    by_task = _stream(base)
    body, ads_at = _ad_free(relayed)
    assert (body, ads_at) == _ad_free(by_task)
    assert len(ads_at) == 1 and len(ads_at[0]) >= 200  # one ad, at a sentence end past 200
    assert ads_at[0].endswith("here. ")
    # Before 3/4 of 200 characters (~5 reads) and after the ad (~30 reads): the relay's.
    assert took >= 25, takes


def test_a_client_that_stops_reading_gets_every_byte_in_order(
    server: Callable[..., str], takes: list[bool]
) -> None:
    # Big pieces fill the socket while the client does not read: the connection pushes back,
    # the relay declines those reads (the task waits in `send` instead), and nothing is lost.
    pieces = [f"{n:05d}" + "x" * 4000 for n in range(400)]
    upstream = SocketUpstream(Reply(pieces=_events(openai_stream(pieces)), delay=0.0005))
    base = server(make_app(upstream))
    host, port = base.removeprefix("http://").split(":")
    body = json.dumps({"model": "gpt-4o", "stream": True,
                       "messages": [{"role": "user", "content": "hi"}]}).encode()  # fmt: skip
    with socket.create_connection((host, int(port))) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nConnection: close\r\n\r\n%b" % (len(body), body)
        )
        time.sleep(1.0)  # not reading: the gateway's writes back up
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    text = "".join(
        json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
        for line in _dechunked(raw).split(b"\n\n")
        if line.startswith(b"data: {") and b'"choices":[{' in line
    )
    assert text == "".join(pieces)
    assert False in takes and True in takes  # declined while pushed back, took otherwise


def _dechunked(raw: bytes) -> bytes:
    """An HTTP/1.1 chunked response's body."""
    rest = raw.split(b"\r\n\r\n", 1)[1]
    body = b""
    while rest:
        size_line, rest = rest.split(b"\r\n", 1)
        size = int(size_line, 16)
        if size == 0:
            break
        body, rest = body + rest[:size], rest[size + 2 :]
    return body


class _Body:
    """A `BodyWriter` stand-in: ready or not, and what was written."""

    def __init__(self, ready: bool) -> None:
        self.is_ready = ready
        self.written: list[bytes] = []

    def ready(self) -> bool:
        return self.is_ready

    def write(self, data: bytes) -> bool:
        self.written.append(data)
        return True

    def write_ready(self, data: bytes) -> None:
        assert self.is_ready and data
        self.written.append(data)


def test_a_taken_read_is_counted_and_a_declined_one_changes_nothing() -> None:
    from echo_stream.ops.record import RequestRecord
    from echo_stream.providers.openai import _Reader
    from echo_stream.providers.payloads import PayloadDecoder
    from echo_stream.streaming.chunks import ChunkWriter

    reader = _Reader()
    reader.feed(json.loads(_text("first")[6:]))  # choice 0 has started
    decoder = PayloadDecoder("openai", 1 << 20, None)
    writer = ChunkWriter("chatcmpl-1", 1, "gpt-4o")
    writer.started.add(0)
    record = RequestRecord("req_1", "POST", "/v1/chat/completions")
    read = _text("a") + _text("b")

    body = _Body(ready=False)  # the client pushes back: left to the task
    relay = Relay(body, writer, record)  # type: ignore[arg-type]
    assert not relay.take(decoder, reader.read_texts, read)
    assert body.written == [] and record.chunks == 0
    body.is_ready = True
    assert not relay.take(decoder, reader.read_texts, read + b"data: [DONE]\n\n")  # the end
    assert not relay.take(decoder, reader.read_texts, read[:-5])  # an unfinished event
    assert body.written == [] and record.chunks == 0
    assert relay.take(decoder, reader.read_texts, read)
    assert body.written == [writer.content(0, "a") + writer.content(0, "b")]
    assert record.chunks == 1  # one upstream read, as the observer counts its reads


def test_a_read_the_relay_leaves_is_parsed_once(
    server: Callable[..., str], takes: list[bool], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stream the relay never takes (a role in every delta): its reads are still parsed once,
    # the task using what the relay's look already parsed.
    from echo_stream.providers import payloads

    parsed: list[bytes] = []

    class CountingJson:
        JSONDecodeError = payloads.orjson.JSONDecodeError

        @staticmethod
        def loads(data: bytes) -> Any:
            parsed.append(data)
            return json.loads(data)

        dumps = staticmethod(payloads.orjson.dumps)

    monkeypatch.setattr(payloads, "orjson", CountingJson)
    pieces = SHAPES["a role in every delta (Ollama, OpenRouter)"]
    base = server(make_app(SocketUpstream(Reply(pieces=pieces, delay=0.005))))
    _stream(base)
    assert takes and not any(takes)  # offered, never taken
    assert len(parsed) == len(pieces) - 1  # every JSON event once ([DONE] is not JSON)


def test_a_cancelled_reader_is_offered_nothing() -> None:
    # `task.cancel()` resolves the reader's future at once; until the task runs, no read may
    # be written past it.
    import asyncio

    from echo_stream.providers.transport.connection import Connection

    class Owner:
        def release(self, conn: Connection) -> None: ...

        def discard(self, conn: Connection) -> None: ...

    class Quiet:
        def write(self, data: bytes) -> None: ...

        def is_closing(self) -> bool:
            return False

        def abort(self) -> None: ...

    offered: list[bytes] = []

    async def main() -> None:
        conn = Connection(Owner(), read_timeout=30)
        conn.connection_made(Quiet())  # type: ignore[arg-type]
        conn.start(b"POST / HTTP/1.1\r\n\r\n")
        conn.data_received(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        conn.relay = lambda data: offered.append(data) or True
        reader = asyncio.ensure_future(conn.wait())
        await asyncio.sleep(0)
        conn.data_received(b"5\r\nfirst\r\n")  # the reader waits: offered, taken
        reader.cancel()
        conn.data_received(b"4\r\nlate\r\n")  # cancelled, not yet unwound: not offered
        assert offered == [b"first"] and list(conn.chunks) == [b"late"]
        with pytest.raises(asyncio.CancelledError):
            await reader
        conn.abort()

    asyncio.run(main())
