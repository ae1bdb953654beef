"""The relay: the middle of a plain OpenAI chat stream, written read by read without waking the
response's task.

In a streamed answer nearly every upstream read is a few chunks each carrying the next piece of
choice 0's text, and the pipeline does the same for each: decode the SSE events and their JSON,
make `TextDelta`s, pass them through the stages, encode them as chunks, write. For the OpenAI
endpoint's answers that are not recorded, once the response has started and while the
response's task is parked waiting for the next read, the upstream connection offers each read
to the relay first (`Connection._offer`): it decodes, encodes and writes those reads itself,
synchronously, with the very functions the task would use. Anything else (the first read, a
finish, usage, `[DONE]`, an error, a tool call, a malformed payload, a client pushing back) it
leaves to the task, untouched: every step before the write only reads state, so the task then
goes on exactly as if the relay did not exist. With an ad stage, the stage's gate
(`ads.filter.AdSplice.passes`) is asked last, just before the write: it does to the text what
the stage would (an ad may be spliced in) and the relay writes the result; only a read that
would start the choice of an ad is left to the stage. The bytes are the same either way
(tested); what is saved per read is the task's wake-up and the walk through the stages'
generators. For reads in OpenAI's own layout the reader finds the text from the bytes, without
the SSE split and JSON decoding (`providers.openai_texts`).
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar

from echo_stream.http_protocol import BodyWriter
from echo_stream.ops.record import RequestRecord
from echo_stream.providers.payloads import PayloadDecoder
from echo_stream.streaming.chunks import ChunkWriter

ReadTexts = Callable[[PayloadDecoder, bytes], "list[str] | None"]
"""A stream reader's check: the texts of a read all plain text for choice 0 (changing nothing
`decoder` or the reader keeps), else None."""
Gate = Callable[[list[str]], "list[str] | None"]
"""A stage's say on choice 0's next pieces of text: what it hands on in their place (taken as
passed through it), or None (nothing changed) if it must see them itself."""


class Relay:
    """Where a plain answer's reads go once its response has started."""

    __slots__ = ("_body", "_gate", "_record", "_writer")

    def __init__(
        self,
        body: BodyWriter,
        writer: ChunkWriter,
        record: RequestRecord | None,
        gate: Gate | None = None,
    ) -> None:
        self._body = body
        self._writer = writer
        self._record = record
        self._gate = gate

    def take(self, decoder: PayloadDecoder, read_texts: ReadTexts, data: bytes) -> bool:
        """Write `data`'s chunks if it is plain text for a started choice 0, the stages' gate
        lets it through and the connection takes a write now; False (having changed nothing)
        otherwise."""
        body = self._body
        if not (body.ready() and self._writer.streaming(0)):
            return False
        texts = read_texts(decoder, data)
        if not texts:
            return False
        if self._gate is not None and (texts := self._gate(texts)) is None:
            return False
        if texts:  # (ready: checked above, and nothing since has written or awaited)
            body.write_ready(self._writer.contents(texts))
        if self._record is not None:
            self._record.chunks += 1  # one upstream read, as the observer counts them
        return True


RELAY: ContextVar[Relay | None] = ContextVar("echo_relay", default=None)
"""Set by the OpenAI endpoint for a streamed answer it does not record; read by
`HttpProvider.stream`."""
