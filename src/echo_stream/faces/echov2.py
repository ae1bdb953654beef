"""Events -> EchoV2's stream: `data: {"chunk": "...", "type": "content"}` per delta.

The stream ends with one `done` event carrying the ids the caller needs (conversation, message),
the finish reason and usage, or, when anything fails after the first byte, with
`data: {"type": "error", "message": "..."}`. A sponsored block is shown text, so it goes out as
content (EchoV2's front end knows no ad event); storage keeps it apart. `stream: false` collects
the same events into one JSON object.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

import orjson

from echo_stream.errors import EchoError, UpstreamUnavailable
from echo_stream.events import EventStream, Finish, Flush, TextDelta, Usage

log = logging.getLogger(__name__)

_CONTENT_HEAD = b'data: {"chunk":'
_CONTENT_TAIL = b',"type":"content"}\n\n'


def content_event(text: str) -> bytes:
    """One content event."""
    return _CONTENT_HEAD + orjson.dumps(text) + _CONTENT_TAIL


def error_event(message: str) -> bytes:
    """The event that ends a stream which failed after its first byte."""
    return b"data: " + orjson.dumps({"type": "error", "message": message}) + b"\n\n"


def usage_fields(usage: Usage | None) -> dict[str, int] | None:
    """EchoV2's usage object (input/output/total tokens)."""
    if usage is None:
        return None
    return {
        "input_tokens": usage.prompt_tokens,
        "output_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


async def encode_echov2(events: EventStream, done: dict[str, Any]) -> AsyncGenerator[bytes, None]:
    """EchoV2 SSE bytes, one write per `FLUSH`; `done` holds the final event's extra fields."""
    pending: list[bytes] = []
    sent = False
    finish: str | None = None
    usage: Usage | None = None
    try:
        async with aclosing(events):
            async for event in events:
                if isinstance(event, TextDelta):
                    if event.choice == 0 and event.text:
                        pending.append(content_event(event.text))
                elif isinstance(event, Flush):
                    if pending:
                        sent = True
                        yield b"".join(pending)
                        pending = []
                elif isinstance(event, Finish):
                    if event.choice == 0:
                        finish = finish or event.reason
                elif isinstance(event, Usage):
                    usage = event
        if finish is None:
            raise UpstreamUnavailable("the upstream stream ended before the answer finished")
    except EchoError as exc:
        if not sent:
            raise
        yield b"".join(pending) + error_event(exc.message)
        return
    except Exception:
        if not sent:
            raise
        log.exception("EchoV2 stream failed after its first byte")
        yield b"".join(pending) + error_event("internal error while streaming")
        return
    final = {"type": "done", **done, "finish_reason": finish, "usage": usage_fields(usage)}
    pending.append(b"data: " + orjson.dumps(final) + b"\n\n")
    yield b"".join(pending)


async def collect_echov2(events: EventStream, fields: dict[str, Any]) -> dict[str, Any]:
    """The whole answer as EchoV2's non-streamed JSON: `response`, ids, finish reason, usage."""
    parts: list[str] = []
    finish: str | None = None
    usage: Usage | None = None
    async with aclosing(events):
        async for event in events:
            if isinstance(event, TextDelta):
                if event.choice == 0:
                    parts.append(event.text)
            elif isinstance(event, Finish):
                if event.choice == 0:
                    finish = finish or event.reason
            elif isinstance(event, Usage):
                usage = event
    if finish is None:
        raise UpstreamUnavailable("the upstream stream ended before the answer finished")
    return {"response": "".join(parts), **fields, "finish_reason": finish,
            "usage": usage_fields(usage)}  # fmt: skip
