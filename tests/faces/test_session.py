"""The session face's bytes, read back by an EventSource-conformant parser."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from echo_stream.faces.session import (
    DONE,
    KEEPALIVE,
    encode_end,
    encode_session,
    encode_text,
)
from echo_stream.sessions.models import LogEntry
from tests.sessions.fakes import parse_event_stream, text_of


def _lines(raw: bytes) -> list[str]:
    # EventSource splits on CRLF, LF and CR alike.
    return raw.decode().replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _roundtrip(entries: list[LogEntry | None]) -> bytes:
    async def collect() -> bytes:
        async def source():  # type: ignore[no-untyped-def]
            for entry in entries:
                yield entry

        return b"".join([chunk async for chunk in encode_session(source())])

    return asyncio.run(collect())


def test_each_piece_is_one_event_with_its_id() -> None:
    raw = encode_text("7", "Hello")
    assert raw == b"id: 7\ndata: Hello\n\n"
    read = parse_event_stream(iter(_lines(raw)))
    assert [(e.id, e.data) for e in read.events] == [("7", "Hello")]


def test_newlines_become_several_data_lines() -> None:
    assert encode_text("1", "a\n\nb\n") == b"id: 1\ndata: a\ndata: \ndata: b\ndata: \n\n"


no_cr = st.text(st.characters(blacklist_characters="\r", blacklist_categories=("Cs",)), min_size=1)


@given(st.lists(no_cr, min_size=1, max_size=20))
def test_the_browser_rebuilds_the_text_byte_for_byte(pieces: list[str]) -> None:
    entries: list[LogEntry | None] = [LogEntry(str(i + 1), p) for i, p in enumerate(pieces)]
    entries.append(LogEntry(str(len(pieces) + 1), end={"status": "complete", "error": None}))
    read = parse_event_stream(iter(_lines(_roundtrip(entries))))
    assert text_of(read.events) == "".join(pieces)
    assert read.events[-1].data == "[DONE]"
    assert read.last_event_id == str(len(pieces) + 1)


def test_carriage_returns_arrive_as_newlines() -> None:
    read = parse_event_stream(iter(_lines(encode_text("1", "a\r\nb\rc"))))
    assert read.events[0].data == "a\nb\nc"


def test_the_stream_starts_with_retry_and_keeps_alive_with_comments() -> None:
    raw = _roundtrip([None, LogEntry("1", "x"), None])
    assert raw.startswith(b"retry: 1000\n\n")
    assert raw.count(KEEPALIVE) == 2
    read = parse_event_stream(iter(_lines(raw)))
    assert read.comments == [" keep-alive", " keep-alive"]
    assert [e.data for e in read.events] == ["x"]


def test_a_complete_end_is_just_done() -> None:
    assert encode_end("9", {"status": "complete", "error": None}) == b"id: 9\n" + DONE


def test_a_failed_end_tells_why_in_a_named_event_the_front_end_ignores() -> None:
    raw = encode_end("9", {"status": "error", "error": "upstream 502"})
    read = parse_event_stream(iter(_lines(raw)))
    assert [e.event for e in read.events] == ["status", "message"]
    assert '"upstream 502"' in read.events[0].data
    assert read.events[1].data == "[DONE]"
    assert raw.endswith(DONE)  # EventStreamResponse ends the body on it
