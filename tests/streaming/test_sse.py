"""The upstream SSE decoder: framing, field handling, and indifference to where bytes split."""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from echo_stream.streaming.sse import SSEDecoder, SSEEvent, SSELimitExceeded

FIXTURES = Path(__file__).parents[1] / "fixtures" / "streams"
FIXTURE_NAMES = sorted(path.name for path in FIXTURES.glob("*.sse"))


def decode(pieces: Iterable[bytes]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    for piece in pieces:
        events.extend(decoder.feed(piece))
    events.extend(decoder.flush())
    return events


def split_at(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    bounds = [0, *sorted({c for c in cuts if 0 < c < len(data)}), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def tricky_offsets(data: bytes) -> list[int]:
    """Offsets between `\\r` and `\\n` and inside multi-byte UTF-8 characters."""
    return [
        i for i in range(1, len(data)) if data[i] & 0xC0 == 0x80 or data[i - 1 : i + 1] == b"\r\n"
    ]


@st.composite
def fixture_and_pieces(draw: st.DrawFn) -> tuple[str, bytes, list[bytes]]:
    """A fixture with LF framing, the same bytes re-framed (LF or CRLF) and cut at random."""
    name = draw(st.sampled_from(FIXTURE_NAMES))
    lf = (FIXTURES / name).read_bytes().replace(b"\r\n", b"\n")
    data = lf.replace(b"\n", b"\r\n") if draw(st.booleans()) else lf
    if draw(st.integers(0, 4)) == 0:
        return name, lf, [data[i : i + 1] for i in range(len(data))]
    anywhere = st.integers(1, len(data) - 1)
    tricky = tricky_offsets(data)
    offset = st.one_of(anywhere, st.sampled_from(tricky)) if tricky else anywhere
    return name, lf, split_at(data, draw(st.lists(offset, max_size=80)))


def test_there_are_fixtures() -> None:
    assert len(FIXTURE_NAMES) >= 10


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_each_fixture_decodes_to_json_payloads(name: str) -> None:
    data = (FIXTURES / name).read_bytes()

    events = decode([data])

    assert events, name
    for _, payload in events:
        if payload != b"[DONE]":
            orjson.loads(payload)  # every payload is one complete JSON document
    # one event per `data:` line in these fixtures, none lost at the end
    assert len(events) == data.count(b"data:")


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_each_fixture_byte_by_byte(name: str) -> None:
    data = (FIXTURES / name).read_bytes()

    assert decode(data[i : i + 1] for i in range(len(data))) == decode([data])


@settings(max_examples=150, deadline=None)
@given(fixture_and_pieces())
def test_resplitting_and_reframing_never_change_the_events(
    case: tuple[str, bytes, list[bytes]],
) -> None:
    name, lf, pieces = case

    assert decode(pieces) == decode([lf]), name


def test_split_inside_a_multibyte_character_keeps_it_whole() -> None:
    data = 'data: {"t": "東京☀️👍🏽"}\n\n'.encode()
    starts = [i for i in range(len(data)) if data[i] & 0xC0 == 0x80]
    assert starts

    events = decode(split_at(data, starts))

    assert events == [(None, '{"t": "東京☀️👍🏽"}'.encode())]
    assert orjson.loads(events[0][1]) == {"t": "東京☀️👍🏽"}


def test_crlf_and_lf_framing_give_the_same_events() -> None:
    lf = b"event: a\ndata: 1\n\nevent: b\ndata: 2\n\n"
    crlf = lf.replace(b"\n", b"\r\n")

    assert decode([lf]) == decode([crlf]) == [("a", b"1"), ("b", b"2")]


def test_crlf_split_between_cr_and_lf() -> None:
    data = b'event: a\r\ndata: {"a":1}\r\ndata: 2\r\n\r\nevent: b\r\ndata: {"b":2}\r\n\r\n'
    cuts = [i + 1 for i in range(len(data)) if data[i : i + 1] == b"\r"]

    assert decode(split_at(data, cuts)) == [("a", b'{"a":1}\n2'), ("b", b'{"b":2}')]


def test_event_completes_only_at_its_blank_line() -> None:
    decoder = SSEDecoder()

    assert decoder.feed(b"event: ping\ndata: {}\n") == []
    assert decoder.feed(b"\n") == [("ping", b"{}")]


def test_final_event_without_blank_line_comes_out_of_flush() -> None:
    decoder = SSEDecoder()

    assert decoder.feed(b'event: message_stop\ndata: {"type":"message_stop"}') == []
    assert decoder.flush() == [("message_stop", b'{"type":"message_stop"}')]


def test_final_event_with_one_newline_comes_out_of_flush() -> None:
    decoder = SSEDecoder()

    assert decoder.feed(b"data: last\r\n") == []
    assert decoder.flush() == [(None, b"last")]


def test_flush_of_an_empty_stream_is_empty() -> None:
    decoder = SSEDecoder()

    assert decoder.feed(b"") == []
    assert decoder.flush() == []


def test_comments_id_and_retry_lines_are_ignored() -> None:
    data = b": keep-alive\n\nid: 41\nretry: 3000\n: note\ndata: hello\n\n:\n\n"

    assert decode([data]) == [(None, b"hello")]


def test_event_name_applies_to_its_own_event_only() -> None:
    data = b"event: message_start\ndata: 1\n\ndata: 2\n\n"

    assert decode([data]) == [("message_start", b"1"), (None, b"2")]


def test_event_without_data_is_dropped_and_forgets_its_name() -> None:
    assert decode([b"event: ping\n\ndata: x\n\n"]) == [(None, b"x")]


def test_multi_line_data_is_joined_with_newlines() -> None:
    data = b"data: first\ndata:second\ndata:  third\n\n"

    assert decode([data]) == [(None, b"first\nsecond\n third")]


def test_data_without_a_space_after_the_colon() -> None:
    assert decode([b"data:{}\n\n"]) == [(None, b"{}")]


# --- limits and linear work ----------------------------------------------------------------------


@pytest.mark.parametrize("piece", [1024, 4096, 65536])
def test_a_one_megabyte_event_costs_work_linear_in_its_size(piece: int) -> None:
    payload = b"x" * (1024 * 1024)
    data = b"data: " + payload + b"\n\n"
    decoder = SSEDecoder(max_event_bytes=2 * 1024 * 1024)
    events: list[SSEEvent] = []
    for start in range(0, len(data), piece):
        events.extend(decoder.feed(data[start : start + piece]))
    assert events == [(None, payload)]
    # Re-copying the buffer on every read (the old decoder) joined ~len**2 / (2 * piece) bytes:
    # about 512 MB for 1 KiB reads. Here each byte is joined once.
    assert decoder.bytes_joined <= len(data)


def test_an_endless_line_is_refused_once_over_the_limit() -> None:
    decoder = SSEDecoder(max_event_bytes=10_000)
    decoder.feed(b"data: " + b"x" * 9000)
    with pytest.raises(SSELimitExceeded):
        decoder.feed(b"x" * 2000)


def test_an_overlong_line_inside_one_read_is_refused() -> None:
    decoder = SSEDecoder(max_event_bytes=1000)
    with pytest.raises(SSELimitExceeded):
        decoder.feed(b"data: " + b"y" * 5000 + b"\n\n")


def test_an_event_of_many_short_lines_is_refused_once_over_the_limit() -> None:
    decoder = SSEDecoder(max_event_bytes=1000)
    with pytest.raises(SSELimitExceeded):
        for _ in range(100):
            decoder.feed(b"data: " + b"z" * 50 + b"\n")


def test_events_at_the_limit_pass() -> None:
    decoder = SSEDecoder(max_event_bytes=1000)
    assert decoder.feed(b"data: " + b"a" * 994 + b"\n\n") == [(None, b"a" * 994)]
