"""Server-sent events: an incremental decoder for upstream bytes.

Upstreams split their streams anywhere (mid-line, mid-UTF-8 character, `\r\n` or `\n` framing,
a final event without its blank line), so the decoder works on bytes and hands out whole
events; decoding JSON from complete `data` payloads keeps multi-byte characters intact.
"""

from __future__ import annotations

SSEEvent = tuple[str | None, bytes]
"""An event name (None when the event had no `event:` line) and its `data` payload."""


class SSEDecoder:
    """Feed it byte chunks; it returns the events each chunk completes."""

    __slots__ = ("_buffer", "_data", "_event")

    def __init__(self) -> None:
        self._buffer = b""
        self._event: str | None = None
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Consume `chunk`; return the events completed by it, in order."""
        buffer = self._buffer + chunk if self._buffer else chunk
        lines = buffer.split(b"\n")
        self._buffer = lines.pop()
        events: list[SSEEvent] = []
        for line in lines:
            self._line(line[:-1] if line.endswith(b"\r") else line, events)
        return events

    def flush(self) -> list[SSEEvent]:
        """At end of stream: the last event, even without its terminating blank line."""
        events: list[SSEEvent] = []
        if self._buffer:
            line, self._buffer = self._buffer.rstrip(b"\r"), b""
            self._line(line, events)
        self._line(b"", events)
        return events

    def _line(self, line: bytes, events: list[SSEEvent]) -> None:
        if not line:
            if self._data:
                events.append((self._event, b"\n".join(self._data)))
                self._data = []
            self._event = None
        elif line.startswith(b"data:"):
            value = line[5:]
            self._data.append(value[1:] if value.startswith(b" ") else value)
        elif line.startswith(b"event:"):
            self._event = line[6:].strip().decode("utf-8", "replace")
        # Comments (":"), `id:` and `retry:` lines carry nothing a chat stream needs.
