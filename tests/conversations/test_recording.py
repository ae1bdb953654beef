"""The recording stage around an event stream: what is stored, when, and how it ends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

import pytest
from sqlalchemy import event

from echo_stream.conversations.recording import Turn, open_turn, record, replay
from echo_stream.conversations.repository import ConversationRepository, Message
from echo_stream.errors import NotFound, UpstreamUnavailable
from echo_stream.events import (
    FLUSH,
    AdBlock,
    Event,
    EventStream,
    Finish,
    ReasoningDelta,
    TextDelta,
    Usage,
)

OWNER = "key:test"
AD = AdBlock("\n[ad]Try X[/ad]\n", 0, "ad-1", "X Corp", "Try X", "It is good", "https://x.example")


async def _events(items: list[Event], fail: Exception | None = None) -> EventStream:
    for item in items:
        yield item
    if fail is not None:
        raise fail


async def _turn(repo: ConversationRepository, **kw: Any) -> Turn:
    return await open_turn(
        repo, owner=OWNER, conversation_id=kw.pop("conversation_id", None), prompt="Hi",
        title="Hi", model="echo-mock", **kw,
    )  # fmt: skip


async def _answer(repo: ConversationRepository, turn: Turn) -> Message:
    messages = await repo.messages(turn.conversation_id)
    assert messages[-1].id == turn.message_id
    return messages[-1]


async def test_complete_answer_is_stored_with_tokens_and_timings(
    repository: ConversationRepository,
) -> None:
    turn = await _turn(repository)
    items: list[Event] = [TextDelta("Hello"), FLUSH, TextDelta(" world"), Finish("stop"),
                          Usage(7, 2, 9), FLUSH]  # fmt: skip
    seen = [e async for e in record(repository, turn, _events(items), provider="mock")]
    assert seen == items  # passed through unchanged
    answer = await _answer(repository, turn)
    assert (answer.status, answer.content, answer.finish_reason) == (
        "complete",
        "Hello world",
        "stop",
    )
    assert (answer.input_tokens, answer.output_tokens, answer.provider) == (7, 2, "mock")
    assert answer.ttft_ms is not None and answer.duration_ms is not None
    assert answer.duration_ms >= answer.ttft_ms >= 0


async def test_reasoning_passes_through_but_is_not_stored_as_the_answer(
    repository: ConversationRepository,
) -> None:
    turn = await _turn(repository)
    items: list[Event] = [ReasoningDelta("Let me think."), FLUSH, TextDelta("Hello"),
                          Finish("stop"), Usage(7, 2, 9), FLUSH]  # fmt: skip
    seen = [e async for e in record(repository, turn, _events(items), provider="mock")]
    assert seen == items
    answer = await _answer(repository, turn)
    assert (answer.status, answer.content) == ("complete", "Hello")


async def test_rows_exist_before_the_first_event_is_handed_on(
    repository: ConversationRepository,
) -> None:
    turn = await _turn(repository)
    stream = record(repository, turn, _events([TextDelta("a"), Finish("stop")]), provider="mock")
    async with aclosing(stream):
        assert await anext(stream) == TextDelta("a")
        answer = await _answer(repository, turn)
        assert answer.status == "streaming"
        async for _ in stream:
            pass
    assert (await _answer(repository, turn)).status == "complete"


async def test_no_database_round_trip_between_chunks(repository: ConversationRepository) -> None:
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    async def source() -> EventStream:
        yield TextDelta("first")
        marker = len(statements)
        for n in range(200):
            yield TextDelta(f" t{n}")
            yield FLUSH
        assert len(statements) == marker, "a chunk caused a database statement"
        yield Finish("stop")

    event.listen(repository.engine.sync_engine, "before_cursor_execute", count)
    try:
        turn = await _turn(repository)
        async for _ in record(repository, turn, source(), provider="mock"):
            pass
    finally:
        event.remove(repository.engine.sync_engine, "before_cursor_execute", count)
    assert (await _answer(repository, turn)).content.endswith(" t199")


async def test_ad_is_stored_beside_the_exact_text(repository: ConversationRepository) -> None:
    turn = await _turn(repository)
    items: list[Event] = [TextDelta("One. "), AD, TextDelta("Two."), Finish("stop")]
    async for _ in record(repository, turn, _events(items), provider="mock"):
        pass
    answer = await _answer(repository, turn)
    assert answer.content == "One. Two."
    assert answer.ad == {"ad_id": "ad-1", "advertiser": "X Corp", "title": "Try X",
                         "body": "It is good", "url": "https://x.example", "position": 5,
                         "text": AD.text}  # fmt: skip
    # The history renders exactly what was shown: content with the block at its position.
    shown = answer.content[:5] + answer.ad["text"] + answer.content[5:]
    assert shown == "".join(e.text for e in items if isinstance(e, TextDelta))


async def test_failure_after_first_chunk_keeps_partial_text_and_error(
    repository: ConversationRepository,
) -> None:
    turn = await _turn(repository)
    stream = record(
        repository, turn, _events([TextDelta("part")], UpstreamUnavailable("boom")), provider="m"
    )
    with pytest.raises(UpstreamUnavailable):
        async for _ in stream:
            pass
    answer = await _answer(repository, turn)
    assert (answer.status, answer.content, answer.error) == ("error", "part", "boom")


async def test_failure_before_first_chunk_still_stores_the_question(
    repository: ConversationRepository,
) -> None:
    turn = await _turn(repository)
    with pytest.raises(UpstreamUnavailable):
        async for _ in record(
            repository, turn, _events([], UpstreamUnavailable("down")), provider="m"
        ):
            pass
    messages = await repository.messages(turn.conversation_id)
    assert [(m.role, m.status) for m in messages] == [("user", "complete"), ("assistant", "error")]


async def test_client_leaving_marks_the_answer_aborted(repository: ConversationRepository) -> None:
    turn = await _turn(repository)
    stream = record(
        repository, turn, _events([TextDelta("so far"), TextDelta(" more")]), provider="m"
    )
    assert await anext(stream) == TextDelta("so far")
    await stream.aclose()  # what the response does when the client disconnects
    answer = await _answer(repository, turn)
    assert (answer.status, answer.content) == ("aborted", "so far")


async def test_cancelled_task_still_finalises(repository: ConversationRepository) -> None:
    turn = await _turn(repository)
    gate = asyncio.Event()

    async def stalled() -> EventStream:
        yield TextDelta("begun")
        await gate.wait()
        yield Finish("stop")

    async def consume() -> None:
        async for _ in record(repository, turn, stalled(), provider="m"):
            pass

    task = asyncio.ensure_future(consume())
    for _ in range(200):
        await asyncio.sleep(0.01)
        if (await _answer(repository, turn)).status == "streaming":
            break
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.gather(*repository.pending)
    assert (await _answer(repository, turn)).status == "aborted"


async def test_unknown_or_foreign_conversation_is_not_found(
    repository: ConversationRepository,
) -> None:
    turn = await _turn(repository)
    async for _ in record(repository, turn, _events([Finish("stop")]), provider="m"):
        pass
    with pytest.raises(NotFound):
        await open_turn(repository, owner="key:other", conversation_id=turn.conversation_id,
                        prompt="x", title="x", model=None)  # fmt: skip
    with pytest.raises(NotFound):
        await _turn(repository, conversation_id="conv_nope")


async def test_idempotency_key_replays_the_stored_answer_with_its_ad(
    repository: ConversationRepository,
) -> None:
    first = await _turn(repository, idempotency_key="k1")
    items: list[Event] = [TextDelta("One. "), AD, TextDelta("Two."), Finish("stop"), Usage(3, 4, 7)]
    async for _ in record(repository, first, _events(items), provider="m"):
        pass
    again = await _turn(repository, idempotency_key="k1")
    assert again.replay is not None and again.message_id == first.message_id
    replayed = [e async for e in replay(repository, again, wait=5)]
    assert replayed == [TextDelta("One. "), AD, TextDelta("Two."), Finish("stop"), Usage(3, 4, 7)]
    assert len(await repository.messages(first.conversation_id)) == 2  # nothing new stored


async def test_replay_waits_for_an_answer_still_streaming(
    repository: ConversationRepository,
) -> None:
    first = await _turn(repository, idempotency_key="k2")
    gate = asyncio.Event()

    async def slow() -> AsyncIterator[Event]:
        yield TextDelta("late")
        await gate.wait()
        yield Finish("stop")

    stream = record(repository, first, slow(), provider="m")
    assert await anext(stream) == TextDelta("late")  # the rows exist from here on
    consumer = asyncio.ensure_future(_drain(stream))
    again = await _turn(repository, idempotency_key="k2")
    assert again.replay is not None and again.replay.status == "streaming"
    waiting = asyncio.ensure_future(_drain(replay(repository, again, wait=30)))
    gate.set()
    await consumer
    assert [e for e in await waiting if isinstance(e, TextDelta)] == [TextDelta("late")]


async def _drain(stream: AsyncIterator[Event]) -> list[Event]:
    return [e async for e in stream]


async def test_two_requests_sent_together_with_one_key_ask_the_provider_once(
    repository: ConversationRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = 0
    enqueue = repository.writer.enqueue

    def slow_enqueue(*write: Any) -> asyncio.Future[None]:
        async def later() -> None:
            await asyncio.sleep(0.2)  # the first answer's rows show late: both requests ask
            await enqueue(*write)  #   the store before either answer is in it

        return asyncio.ensure_future(later())

    monkeypatch.setattr(repository.writer, "enqueue", slow_enqueue)

    async def answer() -> AsyncIterator[Event]:
        nonlocal asked
        asked += 1
        yield TextDelta("Once.")
        await asyncio.sleep(0.05)
        yield Finish("stop")

    async def request() -> tuple[Turn, list[Event]]:
        turn = await _turn(repository, idempotency_key="together")
        if turn.replay is not None:
            return turn, await _drain(replay(repository, turn, wait=10))
        return turn, await _drain(record(repository, turn, answer(), provider="m"))

    (first, one), (second, other) = await asyncio.gather(request(), request())
    assert asked == 1
    assert first.message_id == second.message_id
    assert one == other == [TextDelta("Once."), Finish("stop")]
    assert len(await repository.messages(first.conversation_id)) == 2  # one turn stored


async def test_a_key_whose_answer_failed_is_taken_over_by_the_retry(
    repository: ConversationRepository,
) -> None:
    first = await _turn(repository, idempotency_key="k3")
    with pytest.raises(UpstreamUnavailable):
        failing = _events([TextDelta("x")], UpstreamUnavailable("down"))
        await _drain(record(repository, first, failing, provider="m"))
    again = await _turn(repository, idempotency_key="k3")
    assert again.replay is None and again.message_id != first.message_id
    assert await _drain(record(repository, again, _events([Finish("stop")]), provider="m"))
    third = await _turn(repository, idempotency_key="k3")  # now the retry's answer is replayed
    assert third.replay is not None and third.message_id == again.message_id


async def test_a_key_whose_answer_never_appeared_is_taken_over_after_the_grace(
    repository: ConversationRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    from echo_stream.conversations import recording

    monkeypatch.setattr(recording, "CLAIM_GRACE_SECONDS", 0.3)
    abandoned = await _turn(repository, idempotency_key="k4")  # claims, then never records
    again = await _turn(repository, idempotency_key="k4")
    assert again.replay is None and again.message_id != abandoned.message_id
