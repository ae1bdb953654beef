"""The relay: the middle of a plain OpenAI chat stream, written read by read without waking the
response's task.

In a streamed answer nearly every upstream read is a few chunks each carrying the next piece of
choice 0's text, and the pipeline does the same for each: decode the SSE events and their JSON,
make `TextDelta`s, pass them through the stages, encode them as chunks, write. When the answer's
pipeline is plain (the OpenAI endpoint with no ad stage and no recording: the stages then do
nothing to text), the response has started, and the response's task is parked waiting for the
next read, the upstream connection offers each read to the relay first (`Connection._offer`):
it decodes, encodes and writes those reads itself, synchronously, with the very functions the
task would use. Anything else (the first read, a finish, usage, `[DONE]`, an error, a tool
call, a malformed payload, a client pushing back) it leaves to the task, untouched: every step
before the write only reads state, so the task then goes on exactly as if the relay did not
exist. The bytes are the same either way (tested); what is saved per read is the task's wake-up
and the walk through the stages' generators.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from echo_stream.http_protocol import BodyWriter
from echo_stream.ops.record import RequestRecord
from echo_stream.providers.payloads import PayloadDecoder
from echo_stream.streaming.chunks import ChunkWriter

PlainTexts = Callable[[list[Any]], "list[str] | None"]
"""A stream reader's check: the texts of payloads all plain text for choice 0, else None."""


class Relay:
    """Where a plain answer's reads go once its response has started."""

    __slots__ = ("_body", "_record", "_writer")

    def __init__(self, body: BodyWriter, writer: ChunkWriter, record: RequestRecord | None) -> None:
        self._body = body
        self._writer = writer
        self._record = record

    def take(self, decoder: PayloadDecoder, plain_texts: PlainTexts, data: bytes) -> bool:
        """Write `data`'s chunks if it is plain text for a started choice 0 and the connection
        takes a write now; False (having changed nothing) otherwise."""
        if not (self._body.ready() and self._writer.streaming(0)):
            return False
        payloads = decoder.peek(data)
        texts = None if payloads is None else plain_texts(payloads)
        if not texts or not self._body.write(self._writer.contents(texts)):
            return False
        if self._record is not None:
            self._record.chunks += 1  # one upstream read, as the observer counts them
        return True


RELAY: ContextVar[Relay | None] = ContextVar("echo_relay", default=None)
"""Set by the OpenAI endpoint for a plain streamed answer; read by `HttpProvider.stream`."""
