"""The session face: a session's log as plain-text EventSource data, the original front end's wire.

Each event's `data` is the next piece of the answer's text (the front end does
`fullResponse += event.data`), with an `id:` so a reconnect resumes after it. A piece with line
breaks goes out as one `data:` line per line; the browser joins them with "\n", so it rebuilds
the text byte for byte. The one exception is CR: EventSource treats CR and CRLF as line ends, so
a CR cannot survive; CRLF and lone CR arrive as "\n" (the callback's `answer` keeps them).
An idle stream gets a `: keep-alive` comment; the end is `data: [DONE]`, after a named `status`
event (which `onmessage` ignores) when the answer did not complete.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable

import orjson

from echo_stream.sessions.feed import Push
from echo_stream.sessions.models import LogEntry

RETRY = b"retry: 1000\n\n"
"""Sent first: a dropped viewer reconnects after 1 s rather than the browser's default ~3 s."""
KEEPALIVE = b": keep-alive\n\n"
DONE = b"data: [DONE]\n\n"


def encode_text(event_id: str, text: str) -> bytes:
    """One event whose `data` is exactly `text` (CR excepted)."""
    if "\n" not in text and "\r" not in text:
        return b"id: %s\ndata: %s\n\n" % (event_id.encode(), text.encode())
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    body = "".join(f"data: {line}\n" for line in lines)
    return f"id: {event_id}\n{body}\n".encode()


def encode_end(event_id: str, end: dict[str, object]) -> bytes:
    """The last event: a `status` event unless complete, then `[DONE]`, both with the end's id."""
    head = f"id: {event_id}\n".encode()
    if end.get("status") == "complete":
        return head + DONE
    status = head + b"event: status\ndata: " + orjson.dumps(end) + b"\n\n"
    return status + head + DONE


def push_with(write: Callable[[bytes], bool]) -> Push:
    """A `Push` that hands each piece, encoded as `encode_session` does, to `write`."""

    def push(entry: LogEntry) -> bool:
        return not entry.text or write(encode_text(entry.id, entry.text))

    return push


async def encode_session(
    entries: AsyncIterator[LogEntry | None],
) -> AsyncGenerator[bytes, None]:
    """The byte stream of one viewer's connection (`retry:` rides on its first write)."""
    preamble = RETRY
    async for entry in entries:
        if entry is None:
            chunk = KEEPALIVE
        elif entry.end is not None:
            chunk = encode_end(entry.id, entry.end)
        elif entry.text:
            chunk = encode_text(entry.id, entry.text)
        else:
            continue
        if preamble:
            chunk, preamble = preamble + chunk, b""
        yield chunk
    if preamble:
        yield preamble
