"""Events -> OpenAI `chat.completion.chunk` SSE bytes: the only stage that knows the wire bytes.

Every chunk of a response shares `id`, `created` and `model`, so their JSON prefix is encoded
once and each chunk only serialises its own choice. Reasoning goes out as
`delta.reasoning_content`, the field DeepSeek and vLLM stream and compatible clients read. The
encoder also keeps the stream honest:
a role delta before a choice's first content, `id`/`type`/`name` only on a tool call's first
fragment, exactly one finish chunk per choice, usage last, then `[DONE]` — or, when anything
fails after the first byte, one `data: {"error": ...}` chunk and no `[DONE]`, so that clients
(which treat EOF as success) see the failure.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

import orjson

from echo_stream.errors import EchoError, UpstreamUnavailable
from echo_stream.events import (
    EventStream,
    Finish,
    Flush,
    ReasoningDelta,
    RefusalDelta,
    TextDelta,
    ToolCallDelta,
    Usage,
)

log = logging.getLogger(__name__)

DONE = b"data: [DONE]\n\n"
_CONTENT_0 = b'[{"index":0,"delta":{"content":'
_CONTENT_0_END = b'},"logprobs":null,"finish_reason":null}]}\n\n'


def usage_object(usage: Usage) -> dict[str, Any]:
    """OpenAI's `usage` object for these counts."""
    body: dict[str, Any] = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }
    if usage.cached_tokens is not None:
        body["prompt_tokens_details"] = {"cached_tokens": usage.cached_tokens}
    if usage.reasoning_tokens is not None:
        body["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
    return body


def error_event(error: EchoError) -> bytes:
    """The SSE event that ends a stream which failed after its first byte."""
    return b"data: " + orjson.dumps(error.body()) + b"\n\n"


class ChunkWriter:
    """Serialises chunks for one response, and knows which choices it has started and ended."""

    __slots__ = ("_head", "finished", "started")

    def __init__(self, completion_id: str, created: int, model: str) -> None:
        self.started: set[int] = set()
        """Choices whose role delta went out."""
        self.finished: set[int] = set()
        """Choices whose finish chunk went out."""
        self._head = b"".join(
            (
                b'data: {"id":',
                orjson.dumps(completion_id),
                b',"object":"chat.completion.chunk","created":',
                str(created).encode(),
                b',"model":',
                orjson.dumps(model),
                b',"choices":',
            )
        )

    def content(self, choice: int, text: str) -> bytes:
        """A chunk carrying the next piece of `choice`'s text: nearly every chunk, so its bytes
        are joined around the encoded text rather than built from a dict."""
        if choice != 0:
            return self.delta(choice, {"content": text})
        return b"".join((self._head, _CONTENT_0, orjson.dumps(text), _CONTENT_0_END))

    def contents(self, texts: list[str]) -> bytes:
        """The chunks carrying choice 0's next pieces of text, joined (one write)."""
        if len(texts) == 1:
            return self.content(0, texts[0])
        content = self.content
        return b"".join([content(0, text) for text in texts])

    def streaming(self, choice: int) -> bool:
        """Whether `choice` has started and not finished: its text now goes out as is."""
        return choice in self.started and choice not in self.finished

    def delta(self, choice: int, delta: dict[str, Any], finish: str | None = None) -> bytes:
        """One chunk carrying `delta` (and maybe a finish reason) for `choice`."""
        body = {"index": choice, "delta": delta, "logprobs": None, "finish_reason": finish}
        return self._head + orjson.dumps((body,)) + b"}\n\n"

    def usage(self, usage: Usage | None) -> bytes:
        """The final chunk with no choices and the response's usage."""
        encoded = orjson.dumps(usage_object(usage) if usage else None)
        return self._head + b'[],"usage":' + encoded + b"}\n\n"


async def encode_chunks(
    events: EventStream, writer: ChunkWriter, *, include_usage: bool
) -> AsyncGenerator[bytes, None]:
    """Turn events into SSE chunk bytes, one write per `FLUSH`; errors before the first byte
    propagate to the caller."""
    started, finished = writer.started, writer.finished
    tools_started: set[tuple[int, int]] = set()
    usage: Usage | None = None
    pending: list[bytes] = []
    sent = False
    try:
        async with aclosing(events):
            async for event in events:
                if isinstance(event, TextDelta):
                    out = writer.content(event.choice, event.text)
                elif isinstance(event, Flush):
                    if pending:
                        sent = True
                        yield b"".join(pending) if len(pending) > 1 else pending[0]
                        pending = []
                    continue
                elif isinstance(event, ToolCallDelta):
                    out = writer.delta(event.choice, _tool_delta(event, tools_started))
                elif isinstance(event, Finish):
                    if event.choice in finished:
                        continue
                    finished.add(event.choice)
                    out = writer.delta(event.choice, {}, event.reason)
                elif isinstance(event, RefusalDelta):
                    out = writer.delta(event.choice, {"refusal": event.text})
                elif isinstance(event, ReasoningDelta):
                    out = writer.delta(event.choice, {"reasoning_content": event.text})
                elif isinstance(event, Usage):
                    usage = event
                    continue
                else:  # an event this face does not know: never mistake it for usage
                    continue
                if event.choice not in started:
                    started.add(event.choice)
                    pending.append(writer.delta(event.choice, {"role": "assistant", "content": ""}))
                pending.append(out)
        if not finished or started - finished:
            raise UpstreamUnavailable("the upstream stream ended before the answer finished")
    except EchoError as exc:
        if not sent:
            raise
        yield b"".join(pending) + error_event(exc)
        return
    except Exception:
        if not sent:
            raise
        log.exception("stream failed after its first byte")
        yield b"".join(pending) + error_event(EchoError("internal error while streaming"))
        return
    if include_usage:
        pending.append(writer.usage(usage))
    pending.append(DONE)
    yield b"".join(pending)


def _tool_delta(event: ToolCallDelta, tools_started: set[tuple[int, int]]) -> dict[str, Any]:
    key = (event.choice, event.index)
    if key in tools_started:
        return {"tool_calls": [{"index": event.index, "function": {"arguments": event.arguments}}]}
    tools_started.add(key)
    call = {
        "index": event.index,
        "id": event.id or f"call_{event.choice}_{event.index}",
        "type": "function",
        "function": {"name": event.name or "", "arguments": event.arguments},
    }
    return {"tool_calls": [call]}
