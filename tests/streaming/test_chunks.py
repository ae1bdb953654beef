"""The chunk encoder: wire shape, one write per FLUSH, honest endings."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest

from echo_stream.errors import EchoError, UpstreamUnavailable
from echo_stream.events import (
    FLUSH,
    Event,
    Finish,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from echo_stream.streaming.chunks import ChunkWriter, encode_chunks


async def _events(items: list[Event], fail: EchoError | None = None) -> AsyncIterator[Event]:
    for item in items:
        yield item
    if fail is not None:
        raise fail


async def encode(
    items: list[Event], fail: EchoError | None = None, usage: bool = True
) -> list[bytes]:
    writer = ChunkWriter("chatcmpl-1", 7, "m")
    return [w async for w in encode_chunks(_events(items, fail), writer, include_usage=usage)]  # type: ignore[arg-type]


def decode(write: bytes) -> list[dict[str, object]]:
    return [orjson.loads(e[6:]) for e in write.split(b"\n\n") if e.startswith(b"data: {")]


async def test_one_write_per_flush_and_role_first() -> None:
    writes = await encode(
        [
            TextDelta("a"),
            TextDelta("b"),
            FLUSH,
            TextDelta("c"),
            FLUSH,
            Finish("stop"),
            Usage(1, 2, 3),
            FLUSH,
        ]
    )
    assert len(writes) == 4
    first = decode(writes[0])
    assert [c["choices"][0]["delta"] for c in first] == [  # type: ignore[index]
        {"role": "assistant", "content": ""},
        {"content": "a"},
        {"content": "b"},
    ]
    assert decode(writes[1])[0]["choices"][0]["delta"] == {"content": "c"}  # type: ignore[index]
    finish = decode(writes[2])[0]["choices"][0]  # type: ignore[index]
    assert finish["finish_reason"] == "stop" and finish["delta"] == {}
    last = writes[3]
    assert decode(last)[0]["choices"] == [] and decode(last)[0]["usage"] == {
        "prompt_tokens": 1,
        "completion_tokens": 2,
        "total_tokens": 3,
    }
    assert last.endswith(b"data: [DONE]\n\n")
    every = [chunk for write in writes for chunk in decode(write)]
    assert {(c["id"], c["created"], c["model"]) for c in every} == {("chatcmpl-1", 7, "m")}
    assert all(c["object"] == "chat.completion.chunk" for c in every)


async def test_tool_call_id_and_name_only_on_first_fragment() -> None:
    writes = await encode(
        [
            ToolCallDelta(0, "", "c1", "f"),
            ToolCallDelta(0, '{"a"', "c1", "f"),
            ToolCallDelta(0, ": 1}"),
            Finish("tool_calls"),
        ],
        usage=False,
    )
    calls = [
        c["choices"][0]["delta"].get("tool_calls")
        for w in writes
        for c in decode(w)
        if c["choices"]
    ]  # type: ignore[index, union-attr]
    calls = [c[0] for c in calls if c]
    assert calls[0] == {
        "index": 0,
        "id": "c1",
        "type": "function",
        "function": {"name": "f", "arguments": ""},
    }
    assert calls[1:] == [
        {"index": 0, "function": {"arguments": '{"a"'}},
        {"index": 0, "function": {"arguments": ": 1}"}},
    ]


async def test_error_before_first_write_propagates() -> None:
    with pytest.raises(UpstreamUnavailable):
        await encode([TextDelta("a")], fail=UpstreamUnavailable("boom"))


async def test_error_after_first_write_is_an_error_event_without_done() -> None:
    writes = await encode([TextDelta("a"), FLUSH, TextDelta("b")], fail=UpstreamUnavailable("boom"))
    tail = writes[-1]
    assert b'"content":"b"' in tail
    assert tail.endswith(b'"code":"upstream_unavailable"}}\n\n')
    assert b"[DONE]" not in b"".join(writes)


async def test_stream_that_ends_without_finish_is_an_error() -> None:
    writes = await encode([TextDelta("a"), FLUSH])
    assert b'"error"' in writes[-1] and b"[DONE]" not in writes[-1]


async def test_reasoning_is_sent_as_reasoning_content_after_the_role() -> None:
    writes = await encode([ReasoningDelta("hmm"), TextDelta("ok"), Finish("stop"), FLUSH])
    deltas = [c["choices"][0]["delta"] for c in decode(b"".join(writes)) if c["choices"]]  # type: ignore[index]
    assert deltas == [
        {"role": "assistant", "content": ""},
        {"reasoning_content": "hmm"},
        {"content": "ok"},
        {},
    ]


async def test_usage_is_not_taken_from_another_event() -> None:
    writes = await encode([ReasoningDelta("hmm"), TextDelta("ok"), Finish("stop"), FLUSH])
    assert decode(writes[-1])[-1]["usage"] is None


async def test_an_event_the_encoder_does_not_know_is_skipped() -> None:
    class Unknown:
        choice = 0

    items: list[object] = [TextDelta("a"), Unknown(), Finish("stop"), Usage(1, 2, 3), FLUSH]
    writes = await encode(items)  # type: ignore[arg-type]
    chunks = decode(b"".join(writes))
    assert chunks[-1]["usage"] == {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
    assert len(chunks) == 4  # role, "a", finish, usage


def test_a_text_chunk_is_byte_for_byte_the_general_encoding() -> None:
    writer = ChunkWriter("chatcmpl-1", 1700000000, "gpt-x")
    for text in ("Hi", ' "quoted" \\ and \n', "é日本\u2028", "</script>"):
        for choice in (0, 2):
            assert writer.content(choice, text) == writer.delta(choice, {"content": text})
