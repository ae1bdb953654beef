"""Server-sent events: an incremental decoder for upstream bytes.

Upstreams split their streams anywhere (mid-line, mid-UTF-8 character, `\r\n` or `\n` framing,
a final event without its blank line), so the decoder works on bytes and hands out whole
events; decoding JSON from complete `data` payloads keeps multi-byte characters intact.

Work is linear in the bytes fed: a line that spans many reads is kept as a list of pieces and
joined once, when its end arrives, so each byte is copied a bounded number of times however
long the line (`bytes_joined` counts those copies). A line, or the data of one event, longer
than `max_event_bytes` raises `SSELimitExceeded` instead of growing without bound.
"""

from __future__ import annotations

SSEEvent = tuple[str | None, bytes]
"""An event name (None when the event had no `event:` line) and its `data` payload."""

DEFAULT_MAX_EVENT_BYTES = 8 * 1024 * 1024


class SSELimitExceeded(ValueError):
    """One SSE line or event is longer than the decoder's limit."""


class SSEDecoder:
    """Feed it byte chunks; it returns the events each chunk completes."""

    __slots__ = (
        "_data",
        "_data_size",
        "_event",
        "_limit",
        "_pending",
        "_pending_size",
        "bytes_joined",
    )

    def __init__(self, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES) -> None:
        self._limit = max_event_bytes
        self._pending: list[bytes] = []  # the pieces of an unfinished line
        self._pending_size = 0
        self._event: str | None = None
        self._data: list[bytes] = []
        self._data_size = 0
        self.bytes_joined = 0
        """Bytes copied to reassemble lines split across reads (linear in the input)."""

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Consume `chunk`; return the events completed by it, in order."""
        events = self.peek(chunk)
        return self._feed(chunk) if events is None else events

    def idle(self) -> bool:
        """Whether nothing of an earlier read is pending (the next read starts a new event)."""
        return not (self._pending or self._data or self._event is not None)

    def peek(self, chunk: bytes) -> list[SSEEvent] | None:
        """The events of `chunk` when it is only whole `data: ...` events and nothing earlier is
        pending (then `feed` would return exactly these and keep no state); else None. Changes
        nothing."""
        if b"\r" in chunk or not self.idle():
            return None
        return self._data_only(chunk)

    def _data_only(self, chunk: bytes) -> list[SSEEvent] | None:
        """The events of a read made only of whole `data: ...` events (OpenAI's streams, read
        at event boundaries), found by one split; None for anything else."""
        blocks = chunk.split(b"\n\n")
        if blocks[-1]:
            return None  # an unfinished event at the end
        del blocks[-1]
        limit = self._limit
        events: list[SSEEvent] = []
        for block in blocks:
            if not block.startswith(b"data: ") or b"\n" in block or len(block) > limit:
                return None
            events.append((None, block[6:]))
        return events

    def _feed(self, chunk: bytes) -> list[SSEEvent]:
        lines = chunk.split(b"\n")
        tail = lines.pop()  # the unfinished last line (empty when `chunk` ends with a newline)
        if self._pending:
            if not lines:
                self._hold(tail)
                return []
            self._pending.append(lines[0])
            lines[0] = first = b"".join(self._pending)
            self.bytes_joined += len(first)
            self._pending = []
            self._pending_size = 0
            if len(first) > self._limit:
                raise SSELimitExceeded(f"an SSE line is longer than {self._limit} bytes")
        if tail:
            self._hold(tail)
        if len(chunk) > self._limit:
            self._check_lengths(lines)
        events: list[SSEEvent] = []
        line_of = self._line
        for line in lines:
            line_of(line[:-1] if line.endswith(b"\r") else line, events)
        return events

    def flush(self) -> list[SSEEvent]:
        """At end of stream: the last event, even without its terminating blank line."""
        events: list[SSEEvent] = []
        if self._pending:
            line = b"".join(self._pending).rstrip(b"\r")
            self._pending = []
            self._pending_size = 0
            self._line(line, events)
        self._line(b"", events)
        return events

    def _hold(self, piece: bytes) -> None:
        self._pending.append(piece)
        self._pending_size += len(piece)
        if self._pending_size > self._limit:
            self._pending = []
            raise SSELimitExceeded(f"an SSE line is longer than {self._limit} bytes")

    def _check_lengths(self, lines: list[bytes]) -> None:
        for line in lines:
            if len(line) > self._limit:
                raise SSELimitExceeded(f"an SSE line is longer than {self._limit} bytes")

    def _line(self, line: bytes, events: list[SSEEvent]) -> None:
        if not line:
            if self._data:
                events.append((self._event, b"\n".join(self._data)))
                self._data = []
                self._data_size = 0
            self._event = None
        elif line.startswith(b"data:"):
            value = line[6:] if line.startswith(b"data: ") else line[5:]
            self._data_size += len(value)
            if self._data_size > self._limit:
                self._data = []
                raise SSELimitExceeded(f"an SSE event is longer than {self._limit} bytes")
            self._data.append(value)
        elif line.startswith(b"event:"):
            self._event = line[6:].strip().decode("utf-8", "replace")
        # Comments (":"), `id:` and `retry:` lines carry nothing a chat stream needs.
