"""OpenAI text events recognised from their bytes: only ever the general path's answer."""

from __future__ import annotations

import json

from hypothesis import example, given, settings
from hypothesis import strategies as st

from echo_stream.providers.openai import _Reader
from echo_stream.providers.openai_texts import content_texts
from echo_stream.providers.payloads import PayloadDecoder

from .conftest import load_stream

HEAD = (
    '{"id":"chatcmpl-EchoText0001","object":"chat.completion.chunk","created":1732000000,'
    '"model":"gpt-4o-mini-2024-07-18","system_fingerprint":"fp_e2bde3f0a1","choices":'
)
TAIL = ',"logprobs":null,"finish_reason":null}]'


def event(text: str, *, ascii_only: bool = False, head: str = HEAD, after: str = "") -> bytes:
    content = json.dumps(text, ensure_ascii=ascii_only)
    body = f'{head}[{{"index":0,"delta":{{"content":{content}}}{TAIL}{after}}}'
    return f"data: {body}\n\n".encode()


def general(data: bytes) -> list[str] | None:
    """What the relay's general path finds in a read: SSE split, JSON, the dict walk."""
    reader = _Reader()
    reader.started.add(0)
    reader.by_bytes = False
    return reader.read_texts(PayloadDecoder("openai", 1 << 20, None), data)


def test_the_text_events_of_a_real_layout_are_recognised_and_nothing_else() -> None:
    stream = load_stream("openai_text.sse")
    events = [block + b"\n\n" for block in stream.split(b"\n\n") if block]
    recognised = [content_texts(e) for e in events]
    assert [general(e) for e in events] == recognised
    assert sum(r is not None for r in recognised) == len(events) - 4  # role, finish, usage, [DONE]


def test_every_reference_stream_agrees_with_the_general_path() -> None:
    for name in ("openai_n2.sse", "openai_parallel_tool_calls.sse", "openai_reasoning.sse"):
        for block in load_stream(name).split(b"\n\n"):
            data = block + b"\n\n"
            assert content_texts(data) in (None, general(data)), data
    assert content_texts(load_stream("openai_text.sse")) is None  # the role chunk first


def test_the_fields_openai_adds_today_are_recognised() -> None:
    for head, after in (
        (HEAD.replace('"system_fingerprint"', '"service_tier":"default","system_fingerprint"'), ""),
        (HEAD, ',"usage":null'),
        (HEAD, ',"obfuscation":"Xw3q"'),
        (HEAD, ',"usage":null,"obfuscation":"a"'),
        (HEAD.replace('"fp_e2bde3f0a1"', "null"), ""),
        (HEAD.replace(',"system_fingerprint":"fp_e2bde3f0a1"', ""), ""),
    ):
        data = event(" tok", head=head, after=after)
        assert content_texts(data) == [" tok"] == general(data)
    gpt5 = (  # as the gpt-5 models stream today: no logprobs, a null fingerprint
        b'data: {"id":"chatcmpl-C4Hq5a6K3R","object":"chat.completion.chunk","created":1755137921,'
        b'"model":"gpt-5-nano-2025-08-07","service_tier":"default","system_fingerprint":null,'
        b'"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}],"usage":null,'
        b'"obfuscation":"WuQNX"}\n\n'
    )
    assert content_texts(gpt5) == ["Hi"] == general(gpt5)


def test_several_events_in_one_read() -> None:
    data = event("a") + event("é ✓", ascii_only=True) + event('q"\\\n')
    assert content_texts(data) == ["a", "é ✓", 'q"\\\n'] == general(data)


def test_anything_else_is_left_to_the_general_path() -> None:
    text = event("x")
    for data in (
        b"",
        text[:-1],  # an unfinished event
        text + b"data: [DONE]\n\n",
        text.replace(b"\n\n", b"\r\n\r\n"),
        text.replace(b"data: ", b"data:"),
        event(""),  # an empty text is no event
        text.replace(b'"index":0', b'"index":1'),
        text.replace(b'"finish_reason":null', b'"finish_reason":"stop"'),
        text.replace(b'"logprobs":null', b'"logprobs":{"content":[]}'),
        event("x", after=',"usage":{"prompt_tokens":1}'),
        event("x", after=',"error":"boom"'),
        text.replace(b'"id":"chatcmpl-EchoText0001"', b'"id":"a\\q"'),  # not a JSON escape
        text.replace(b"1732000000", b"01"),  # not a JSON number
        event("\udc00", ascii_only=True),  # a lone surrogate: orjson refuses it
        text.replace(b'"x"', b'"\xff"'),  # not UTF-8
    ):
        assert content_texts(data) is None, data


_MUTATIONS = st.lists(
    st.tuples(st.integers(0, 400), st.integers(0, 3), st.binary(max_size=3)), max_size=3
)


@settings(max_examples=400, deadline=None)
@given(
    texts=st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=3),
    ascii_only=st.booleans(),
    mutations=_MUTATIONS,
)
@example(texts=["x"], ascii_only=False, mutations=[(4, 0, b"\\")])
def test_a_recognised_read_always_has_the_general_paths_texts(
    texts: list[str], ascii_only: bool, mutations: list[tuple[int, int, bytes]]
) -> None:
    data = b"".join(event(t, ascii_only=ascii_only) for t in texts)
    for at, cut, insert in mutations:  # bytes replaced anywhere: the shape breaks or holds
        at = min(at, len(data))
        data = data[:at] + insert + data[at + cut :]
    found = content_texts(data)
    if not mutations:
        assert found == texts
    if found is not None:
        assert found == general(data)


def test_a_reader_stops_trying_bytes_after_a_text_read_in_another_layout() -> None:
    reader = _Reader()
    reader.started.add(0)
    decoder = PayloadDecoder("openai", 1 << 20, None)
    finish = event("x").replace(b'"finish_reason":null', b'"finish_reason":"stop"')
    assert reader.read_texts(decoder, finish) is None
    assert reader.by_bytes  # not text: says nothing about the layout
    other = b'data: {"choices":[{"delta":{"content":"y"},"index":0}]}\n\n'
    assert reader.read_texts(decoder, other) == ["y"]
    assert not reader.by_bytes
    assert reader.read_texts(decoder, event("z")) == ["z"]  # the general path, still right


def test_a_reader_asks_nothing_before_choice_0_starts_or_mid_event() -> None:
    reader = _Reader()
    decoder = PayloadDecoder("openai", 1 << 20, None)
    assert reader.read_texts(decoder, event("x")) is None  # choice 0 not started
    reader.started.add(0)
    assert decoder.feed(event("a")[:20]) == []  # half an event pending
    assert reader.read_texts(decoder, event("x")) is None
    assert reader.by_bytes  # not tried, so not a miss
    small = PayloadDecoder("openai", 50, None)  # an event over the limit: the general path's
    assert reader.read_texts(small, event("x")) is None
