"""The server protocol: a response's head leaves with its first body bytes (`http_protocol`)."""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.config import Config
from uvicorn.server import ServerState

from echo_stream.http_protocol import BODY_WRITER, CoalescingHttpToolsProtocol


class Transport:
    """Records what the protocol writes."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False
        self.protocol: Any = None

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 50000)}.get(
            name, default
        )

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def _start(app: Any, request: bytes = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n") -> Transport:
    """A connection to the protocol (inside a running loop) that has sent `request`; the
    protocol is kept on `transport.protocol`."""
    config = Config(app=app, http=CoalescingHttpToolsProtocol, lifespan="off", log_level="error")
    config.load()
    protocol = CoalescingHttpToolsProtocol(config=config, server_state=ServerState(), app_state={})
    transport = Transport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    protocol.data_received(request)
    transport.protocol = protocol
    return transport


def test_the_head_and_the_first_body_bytes_are_one_write() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
        await send({"type": "http.response.body", "body": b"data: 2\n\n", "more_body": False})

    async def main() -> tuple[list[bytes], bool]:
        transport = _start(app)
        await asyncio.sleep(0.05)
        # After the head went out, the cycle writes to the connection's own transport again.
        return transport.writes, transport.protocol.cycle.transport is transport

    (first, second), direct = asyncio.run(main())
    assert direct
    assert first.startswith(b"HTTP/1.1 200 OK\r\n")
    assert first.endswith(b"\r\n\r\n9\r\ndata: 1\n\n\r\n")
    assert second == b"9\r\ndata: 2\n\n\r\n0\r\n\r\n"


def test_a_head_whose_body_is_slow_goes_out_alone_at_once() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.sleep(0.2)  # e.g. an SSE response with nothing to say yet
        await send({"type": "http.response.body", "body": b"late", "more_body": False})

    async def main() -> tuple[list[bytes], list[bytes]]:
        transport = _start(app)
        await asyncio.sleep(0.05)
        early = list(transport.writes)
        await asyncio.sleep(0.3)
        return early, transport.writes

    early, writes = asyncio.run(main())
    assert len(early) == 1  # the head, without waiting for the body
    assert early[0].startswith(b"HTTP/1.1 200 OK") and early[0].endswith(b"\r\n\r\n")
    assert writes[1:] == [b"4\r\nlate\r\n0\r\n\r\n"]


def test_the_body_writer_writes_chunks_only_while_that_is_safe() -> None:
    seen: dict[str, Any] = {}
    go_on = asyncio.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        writer = scope["extensions"][BODY_WRITER]
        seen["not granted"] = writer.write(b"early")
        seen["granted"] = writer.grant(send)  # the server's own send: nothing wraps the app
        seen["before start"] = writer.write(b"early")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"data: 1\n\n", "more_body": True})
        seen["started"] = writer.write(b"data: 2\n\n")
        seen["empty"] = writer.write(b"")  # nothing to write: not the body's end
        seen["writer"] = writer
        await go_on.wait()
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        seen["complete"] = writer.write(b"late")

    async def main() -> Transport:
        transport = _start(app)
        await asyncio.sleep(0.05)
        cycle = transport.protocol.cycle
        cycle.flow.pause_writing()  # the client pushes back
        seen["paused"] = seen["writer"].write(b"x")
        cycle.flow.resume_writing()
        transport.closed = True  # closing, before the server has noticed the client left
        seen["closing"] = seen["writer"].ready()
        transport.closed = False
        go_on.set()
        await asyncio.sleep(0.05)
        return transport

    transport = asyncio.run(main())
    assert seen["not granted"] is False and seen["granted"] is True
    assert seen["before start"] is False  # the head is the response's own to send
    assert seen["started"] is True
    assert seen["empty"] is True
    assert seen["paused"] is False  # `send` waits for the client instead
    assert seen["closing"] is False
    assert seen["complete"] is False
    body = b"".join(transport.writes).split(b"\r\n\r\n", 1)[1]
    # Framed exactly as uvicorn frames a chunk: a client sees one ordinary chunked body.
    assert body == b"9\r\ndata: 1\n\n\r\n9\r\ndata: 2\n\n\r\n0\r\n\r\n"


def test_the_body_writer_refuses_a_client_that_left_and_unchunked_bodies() -> None:
    results: dict[str, bool] = {}
    left = asyncio.Event()

    async def chunked(scope: Any, receive: Any, send: Any) -> None:
        writer = scope["extensions"][BODY_WRITER]
        writer.grant(send)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ab", "more_body": True})
        await left.wait()
        results["left"] = writer.write(b"cd")

    async def sized(scope: Any, receive: Any, send: Any) -> None:
        writer = scope["extensions"][BODY_WRITER]
        writer.grant(send)
        length = [(b"content-length", b"4")]
        await send({"type": "http.response.start", "status": 200, "headers": length})
        await send({"type": "http.response.body", "body": b"ab", "more_body": True})
        results["sized"] = writer.write(b"cd")  # a sized body is not chunked
        await send({"type": "http.response.body", "body": b"cd", "more_body": False})

    async def main() -> None:
        transport = _start(chunked)
        await asyncio.sleep(0.05)
        transport.protocol.connection_lost(None)
        left.set()
        _start(sized)
        await asyncio.sleep(0.05)

    asyncio.run(main())
    assert results == {"left": False, "sized": False}


def _serve_stream(pause_before: int | None) -> tuple[bytes, list[str]]:
    """An `EventStreamResponse` of four chunks served by the protocol; the body bytes and the
    messages that went through `send`. With `pause_before`, the client pushes back (for 50 ms)
    just before that chunk is produced."""
    from echo_stream.streaming.chunks import DONE
    from echo_stream.streaming.response import EventStreamResponse

    sent: list[str] = []
    chunks = [b"data: 1\n\n", b"data: 2\n\n", b"data: 3\n\n", DONE]

    async def app(scope: Any, receive: Any, send: Any) -> None:
        writer = scope["extensions"][BODY_WRITER]
        writer.grant(send)  # as the app's outermost layer does; then `send` is wrapped to count
        cycle = writer._cycle

        async def body() -> Any:
            for number, chunk in enumerate(chunks):
                if number == pause_before:
                    cycle.flow.pause_writing()
                    asyncio.get_running_loop().call_later(0.05, cycle.flow.resume_writing)
                yield chunk

        async def counting_send(message: dict[str, Any]) -> None:
            sent.append(message["type"].rsplit(".", 1)[1])
            await send(message)

        await EventStreamResponse(body())(scope, receive, counting_send)

    async def main() -> Transport:
        transport = _start(app)
        await asyncio.sleep(0.2)
        return transport

    transport = asyncio.run(main())
    return b"".join(transport.writes).split(b"\r\n\r\n", 1)[1], sent


def test_an_event_stream_writes_its_middle_through_the_body_writer() -> None:
    framed = b"9\r\ndata: 1\n\n\r\n9\r\ndata: 2\n\n\r\n9\r\ndata: 3\n\n\r\ne\r\ndata: [DONE]\n\n\r\n0\r\n\r\n"
    body, sent = _serve_stream(pause_before=None)
    assert body == framed
    assert sent == ["start", "body", "body"]  # the first chunk and the end; 2 and 3 written
    # A client pushing back: that chunk waits in `send` instead, and nothing is lost or reordered.
    body, sent = _serve_stream(pause_before=2)
    assert body == framed
    assert sent == ["start", "body", "body", "body"]


def test_a_middleware_around_the_app_sees_every_chunk() -> None:
    # A layer outside the gateway's own (one that records or compresses bodies, like the web
    # tests' contract fake) wraps `send`: the direct writer is then not granted, and every
    # chunk goes through that layer.
    from echo_stream.streaming.chunks import DONE
    from echo_stream.streaming.response import EventStreamResponse

    seen: list[bytes] = []
    chunks = [b"data: 1\n\n", b"data: 2\n\n", b"data: 3\n\n", DONE]

    async def body() -> Any:
        for chunk in chunks:
            yield chunk

    async def gateway(scope: Any, receive: Any, send: Any) -> None:
        scope["extensions"][BODY_WRITER].grant(send)  # what api.observe does
        await EventStreamResponse(body())(scope, receive, send)

    async def recorder(scope: Any, receive: Any, send: Any) -> None:
        async def tee(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body":
                seen.append(message["body"])
            await send(message)

        await gateway(scope, receive, tee)

    async def main() -> Transport:
        transport = _start(recorder)
        await asyncio.sleep(0.2)
        return transport

    transport = asyncio.run(main())
    assert b"".join(seen) == b"".join(chunks)
    assert b"".join(transport.writes).endswith(b"e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n")
