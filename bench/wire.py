"""The load generator's wire layer: request bytes, and an incremental HTTP/1.1 + SSE reader.

``Exchange.feed`` takes whatever bytes a read returned, undoes chunked (or length-framed, or
read-to-close) transfer coding, splits the body into SSE events wherever they break, and hands
each event to its format's reader, which counts content chunks and notes the stream's end.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from bench.workload import PROMPT

Format = Literal["openai", "openai-json", "anthropic", "gemini", "lobe"]
"""``openai-json`` is a non-streaming OpenAI request (``"stream": false``, one JSON answer)."""


def build_request(
    fmt: Format, port: int, model: str, api_key: str, extra: tuple[tuple[str, str], ...] = ()
) -> bytes:
    """The whole HTTP request (head and JSON body) a client sends for one stream."""
    messages = [{"role": "user", "content": PROMPT}]
    headers: dict[str, str]
    body: dict[str, Any]
    if fmt == "openai":
        path = "/v1/chat/completions"
        headers = {"Authorization": f"Bearer {api_key}"}
        body = {
            "model": model,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    elif fmt == "openai-json":
        path = "/v1/chat/completions"
        headers = {"Authorization": f"Bearer {api_key}"}
        body = {"model": model, "messages": messages, "stream": False}
    elif fmt == "lobe":
        path = "/api/chat"
        headers = {"Authorization": f"Bearer {api_key}"}
        body = {"model": model, "messages": messages, "stream": True}
    elif fmt == "anthropic":
        path = "/v1/messages"
        headers = {"x-api-key": api_key, "anthropic-version": "2023-06-01"}
        body = {"model": model, "max_tokens": 1024, "messages": messages, "stream": True}
    else:
        path = f"/v1beta/models/{model}:streamGenerateContent?alt=sse"
        headers = {"x-goog-api-key": api_key}
        body = {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]}
    payload = orjson.dumps(body)
    head = [
        f"POST {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Accept: application/json" if fmt == "openai-json" else "Accept: text/event-stream",
        "Content-Type: application/json",
        f"Content-Length: {len(payload)}",
    ]
    head += [f"{name}: {value}" for name, value in (*headers.items(), *extra)]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + payload


@dataclass
class StreamStats:
    """What one response delivered."""

    started_at: float
    first_content_at: float = 0.0
    ended_at: float = 0.0
    chunks: int = 0
    parts: list[str] = field(default_factory=list)
    finished: bool = False
    """The format's end marker arrived: ``[DONE]``, ``message_stop``, or a finishReason."""
    error: str | None = None

    def content(self, text: str, chunks: int = 1) -> None:
        """Count a content event carrying `chunks` of the upstream's chunks (usually one)."""
        if not self.chunks:
            self.first_content_at = time.perf_counter()
        self.chunks += chunks
        self.parts.append(text)


EventReader = Callable[[StreamStats, bytes], None]


def _read_openai(stats: StreamStats, data: bytes) -> None:
    if data == b"[DONE]":
        stats.finished = True
        return
    chunk = orjson.loads(data)
    if chunk.get("error"):
        stats.error = f"error event: {orjson.dumps(chunk['error']).decode()}"
        return
    for choice in chunk.get("choices") or ():
        text = (choice.get("delta") or {}).get("content")
        if text:
            stats.content(text)


def _read_anthropic(stats: StreamStats, data: bytes) -> None:
    event = orjson.loads(data)
    kind = event.get("type")
    if kind == "content_block_delta":
        delta = event["delta"]
        if delta.get("type") == "text_delta" and delta.get("text"):
            stats.content(delta["text"])
    elif kind == "message_stop":
        stats.finished = True
    elif kind == "error":
        stats.error = f"error event: {orjson.dumps(event.get('error')).decode()}"


def _read_gemini(stats: StreamStats, data: bytes) -> None:
    chunk = orjson.loads(data)
    if chunk.get("error"):
        stats.error = f"error event: {orjson.dumps(chunk['error']).decode()}"
        return
    for candidate in chunk.get("candidates") or ():
        text = "".join(p.get("text", "") for p in (candidate.get("content") or {}).get("parts", ()))
        if text:
            stats.content(text)
        if candidate.get("finishReason"):
            stats.finished = True


def _read_lobe(stats: StreamStats, event: bytes) -> None:
    """A whole Lobe event (`id:`, `event:`, `data:`): its type is in the `event:` line."""
    kind, data = b"", b""
    for line in event.split(b"\n"):
        if line.startswith(b"event: "):
            kind = line[7:]
        elif line.startswith(b"data: "):
            data = line[6:]
    if kind == b"text":
        # The Lobe face sends one text event per upstream read, however many tokens it held;
        # credit the upstream chunks it carries (each is " tok<n>") so that per-chunk figures
        # compare with the OpenAI face's.
        text = orjson.loads(data)
        stats.content(text, chunks=max(1, text.count(" tok")))
    elif kind == b"stop":
        stats.finished = True
    elif kind == b"error":
        stats.error = f"error event: {data.decode(errors='replace')}"


def _read_completion(stats: StreamStats, body: bytes) -> None:
    """A whole non-streamed ``chat.completion``: its text counts as content when it is complete
    (so "time to first token" is the time to the full response), crediting the upstream chunks
    it holds (each is " tok<n>") as the Lobe reader does."""
    completion = orjson.loads(body)
    if completion.get("error") or completion.get("object") != "chat.completion":
        stats.error = f"not a chat.completion: {body[:120].decode(errors='replace')}"
        return
    choice = completion["choices"][0]
    text = choice["message"].get("content") or ""
    if text:
        stats.content(text, chunks=max(1, text.count(" tok")))
    stats.finished = bool(choice.get("finish_reason"))


READERS: dict[Format, EventReader] = {
    "openai": _read_openai,
    "openai-json": _read_completion,
    "anthropic": _read_anthropic,
    "gemini": _read_gemini,
    "lobe": _read_lobe,
}
_WHOLE_EVENT: set[Format] = {"lobe"}
"""Formats whose reader gets the whole event, not just its `data:` lines."""
_WHOLE_BODY: set[Format] = {"openai-json"}
"""Formats whose reader gets the whole response body, once, when it has all arrived."""
_END_MARKER = {
    "openai": "data: [DONE]",
    "openai-json": "finish_reason",
    "anthropic": "message_stop",
    "gemini": "finishReason",
    "lobe": "event: stop",
}

_HEAD, _SIZE, _DATA, _DATA_END, _TRAILER, _LENGTH, _TO_EOF, _DONE = range(8)


class Exchange:
    """One request's response, parsed incrementally; resolves ``future`` with its StreamStats."""

    def __init__(self, fmt: Format, future: asyncio.Future[StreamStats], started: float) -> None:
        self.fmt = fmt
        self.reader = READERS[fmt]
        self.future = future
        self.stats = StreamStats(started_at=started)
        self.keep_alive = True
        self._buf = bytearray()
        self._sse = bytearray()
        self._state = _HEAD
        self._remaining = 0
        self._status = 0
        self._error_body = bytearray()

    def feed(self, data: bytes) -> None:
        """Consume bytes from the connection."""
        if self._state == _DONE:
            self.keep_alive = False  # bytes past the response's end: don't reuse the connection
            return
        self._buf += data
        try:
            self._advance()
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            self._finish(f"unparseable response: {type(exc).__name__}: {exc}")

    def eof(self) -> None:
        """The connection closed."""
        if self._state == _DONE:
            return
        self.keep_alive = False
        if self._state == _TO_EOF:
            self._finish(None)
        else:
            self._finish("connection closed mid-response")

    def _advance(self) -> None:
        buf = self._buf
        while self._state != _DONE:
            state = self._state
            if state == _HEAD:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    return
                self._head(bytes(buf[:end]))
                del buf[: end + 4]
            elif state == _SIZE:
                end = buf.find(b"\r\n")
                if end < 0:
                    return
                size = int(bytes(buf[:end]).split(b";")[0], 16)
                del buf[: end + 2]
                self._remaining = size
                self._state = _DATA if size else _TRAILER
            elif state in (_DATA, _LENGTH):
                take = min(len(buf), self._remaining)
                if take:
                    self._body(bytes(buf[:take]))
                    del buf[:take]
                    self._remaining -= take
                if self._remaining:
                    return
                if state == _LENGTH:
                    self._finish(None)
                else:
                    self._state = _DATA_END
            elif state == _DATA_END:
                if len(buf) < 2:
                    return
                del buf[:2]
                self._state = _SIZE
            elif state == _TRAILER:
                if buf[:2] == b"\r\n":
                    del buf[:2]
                else:
                    end = buf.find(b"\r\n\r\n")
                    if end < 0:
                        return
                    del buf[: end + 4]
                self._finish(None)
            else:  # _TO_EOF
                if buf:
                    self._body(bytes(buf))
                    buf.clear()
                return
        if buf:
            self.keep_alive = False

    def _head(self, head: bytes) -> None:
        lines = head.decode("latin-1").split("\r\n")
        self._status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip().lower()
        if headers.get("connection") == "close":
            self.keep_alive = False
        if "chunked" in headers.get("transfer-encoding", ""):
            self._state = _SIZE
        elif "content-length" in headers:
            self._remaining = int(headers["content-length"])
            self._state = _LENGTH
        else:
            self.keep_alive = False
            self._state = _TO_EOF

    def _body(self, data: bytes) -> None:
        if self._status != 200:
            self._error_body += data
            return
        sse = self._sse
        sse += data
        if self.fmt in _WHOLE_BODY:
            return  # read at the end, whole
        if b"\r" in sse:
            # CRLF framing (Gemini); a lone trailing CR waits for its LF in the next read
            sse[:] = sse.replace(b"\r\n", b"\n")
        start = 0
        while (end := sse.find(b"\n\n", start)) >= 0:
            self._event(bytes(sse[start:end]))
            start = end + 2
        if start:
            del sse[:start]

    def _event(self, event: bytes) -> None:
        if self.stats.error is not None:
            return
        if self.fmt in _WHOLE_EVENT:
            self.reader(self.stats, event)
            return
        for line in event.split(b"\n"):
            if line.startswith(b"data:"):
                data = line[5:]
                self.reader(self.stats, data[1:] if data[:1] == b" " else data)

    def _finish(self, error: str | None) -> None:
        if self._state == _DONE:
            return
        self._state = _DONE
        stats = self.stats
        stats.ended_at = time.perf_counter()
        if error is None and self._status != 200:
            body = bytes(self._error_body[:200]).decode(errors="replace")
            error = f"HTTP {self._status}: {body}"
        if error is None and self.fmt in _WHOLE_BODY:
            try:
                self.reader(stats, bytes(self._sse))
            except (ValueError, KeyError, TypeError, IndexError) as exc:
                error = f"unparseable response: {type(exc).__name__}: {exc}"
        elif error is None and self._sse.strip():
            self._event(bytes(self._sse).strip())  # a final event may lack its blank line
        if error is None and stats.error is None and not stats.finished:
            error = f"stream ended without {_END_MARKER[self.fmt]}"
        if stats.error is None:
            stats.error = error
        if not self.future.done():
            self.future.set_result(stats)
