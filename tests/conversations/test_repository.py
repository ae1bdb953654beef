"""The repository on SQLite and PostgreSQL: turns, listing, ownership, retention."""

from __future__ import annotations

from pathlib import Path

import pytest

from echo_stream.conversations.db import open_repository
from echo_stream.conversations.repository import (
    ConversationRepository,
    Outcome,
    TurnStart,
    history_messages,
    new_id,
)
from echo_stream.conversations.retention import DAY, purge_expired
from echo_stream.errors import InvalidRequest, NotFound
from tests.conftest import make_settings

ALICE, BOB = "key:alice", "key:bob"


async def _turn(
    repo: ConversationRepository,
    owner: str,
    *,
    conversation_id: str | None = None,
    prompt: str = "hi",
    now: float = 1000.0,
    key: str | None = None,
) -> TurnStart:
    start = TurnStart(
        owner=owner,
        conversation_id=conversation_id or new_id("conv"),
        create=conversation_id is None,
        prompt=prompt,
        title=prompt,
        model="echo-mock",
        provider="mock",
        idempotency_key=key,
    )
    await repo.start_turn(start, now)
    return start


async def test_a_turn_is_a_user_message_and_a_streaming_answer(
    repository: ConversationRepository,
) -> None:
    turn = await _turn(repository, ALICE, prompt="What is SSE?")
    messages = await repository.messages(turn.conversation_id)
    assert [(m.role, m.status, m.content) for m in messages] == [
        ("user", "complete", "What is SSE?"),
        ("assistant", "streaming", ""),
    ]
    assert messages[1].parent_id == messages[0].id

    ad = {"ad_id": "a1", "advertiser": "X", "title": "t", "body": "b", "url": "u",
          "position": 5, "text": "[ad]"}  # fmt: skip
    outcome = Outcome("complete", "Hello world", "stop", 11, 2, None, 12.5, 40.0, ad)
    await repository.finish(turn.conversation_id, turn.message_id, outcome, 1001.0)
    answer = (await repository.messages(turn.conversation_id))[1]
    assert (answer.status, answer.content, answer.finish_reason) == (
        "complete",
        "Hello world",
        "stop",
    )
    assert (answer.input_tokens, answer.output_tokens, answer.ttft_ms) == (11, 2, 12.5)
    assert answer.ad == ad
    conversation = await repository.get(ALICE, turn.conversation_id)
    assert conversation is not None and conversation.updated_at == 1001.0


async def test_continuing_appends_in_order(repository: ConversationRepository) -> None:
    first = await _turn(repository, ALICE, prompt="one")
    await _turn(repository, ALICE, conversation_id=first.conversation_id, prompt="two", now=1000.0)
    messages = await repository.messages(first.conversation_id)
    assert [m.content for m in messages if m.role == "user"] == ["one", "two"]
    assert [m.seq for m in messages] == [1, 2, 3, 4]


async def test_nobody_continues_another_owners_conversation(
    repository: ConversationRepository,
) -> None:
    first = await _turn(repository, ALICE)
    with pytest.raises(NotFound):
        await _turn(repository, BOB, conversation_id=first.conversation_id)
    assert len(await repository.messages(first.conversation_id)) == 2


async def test_reads_renames_and_deletes_are_owner_scoped(
    repository: ConversationRepository,
) -> None:
    turn = await _turn(repository, ALICE)
    cid = turn.conversation_id
    assert await repository.get(BOB, cid) is None
    assert not await repository.rename(BOB, cid, "mine now", 2000.0)
    assert not await repository.delete(BOB, cid)
    assert await repository.rename(ALICE, cid, "Renamed", 2000.0)
    conversation = await repository.get(ALICE, cid)
    assert conversation is not None and conversation.title == "Renamed"
    assert await repository.delete(ALICE, cid)
    assert await repository.get(ALICE, cid) is None
    assert await repository.messages(cid) == []  # a hard delete takes the messages too


async def test_listing_pages_newest_first_and_only_the_owners(
    repository: ConversationRepository,
) -> None:
    ids = [(await _turn(repository, ALICE, now=1000.0 + i)).conversation_id for i in range(5)]
    await _turn(repository, BOB, now=5000.0)
    page, cursor = await repository.page(ALICE, 2)
    assert [c.id for c in page] == ids[::-1][:2]
    seen = [c.id for c in page]
    while cursor:
        page, cursor = await repository.page(ALICE, 2, cursor)
        seen += [c.id for c in page]
    assert seen == ids[::-1]


async def test_listing_is_stable_when_timestamps_tie(repository: ConversationRepository) -> None:
    ids = {(await _turn(repository, ALICE, now=1000.0)).conversation_id for _ in range(5)}
    seen: list[str] = []
    page, cursor = await repository.page(ALICE, 2)
    seen += [c.id for c in page]
    while cursor:
        page, cursor = await repository.page(ALICE, 2, cursor)
        seen += [c.id for c in page]
    assert sorted(seen) == sorted(ids) and len(seen) == 5


async def test_a_forged_cursor_is_a_400(repository: ConversationRepository) -> None:
    with pytest.raises(InvalidRequest):
        await repository.page(ALICE, 2, "not-a-cursor")


async def test_an_idempotency_key_is_claimed_once_per_owner(
    repository: ConversationRepository,
) -> None:
    import asyncio

    assert await repository.claim_key(ALICE, "k", "msg_a", 1000.0) is None
    assert await repository.claim_key(ALICE, "k", "msg_b", 1001.0) == ("msg_a", 1000.0)
    assert await repository.claim_key(BOB, "k", "msg_c", 1000.0) is None  # Bob's own key
    # Claims sent together: exactly one wins, and every other one is told who did.
    held = await asyncio.gather(
        *(repository.claim_key(ALICE, "together", f"msg_{n}", 1000.0) for n in range(8))
    )
    winners = [f"msg_{n}" for n, holder in enumerate(held) if holder is None]
    assert len(winners) == 1
    assert {holder[0] for holder in held if holder is not None} == set(winners)
    # Taking a key over only works from the answer that holds it.
    assert not await repository.take_over_key(ALICE, "k", "msg_other", "msg_d", 1002.0)
    assert await repository.take_over_key(ALICE, "k", "msg_a", "msg_d", 1002.0)
    assert await repository.claim_key(ALICE, "k", "msg_e", 1003.0) == ("msg_d", 1002.0)


async def test_deleting_a_conversation_or_retention_frees_its_keys(
    repository: ConversationRepository,
) -> None:
    turn = await _turn(repository, ALICE, key="k1")
    assert await repository.claim_key(ALICE, "k1", turn.message_id, 1000.0) is None
    assert await repository.claim_key(ALICE, "old", "msg_old", 1.0 * DAY) is None
    assert await repository.delete(ALICE, turn.conversation_id)
    assert await repository.claim_key(ALICE, "k1", "msg_new", 2000.0) is None
    await purge_expired(repository, 30, 40 * DAY)
    assert await repository.claim_key(ALICE, "old", "msg_new", 40 * DAY) is None


async def test_retention_deletes_only_old_conversations(repository: ConversationRepository) -> None:
    now = 100 * DAY
    old = await _turn(repository, ALICE, now=now - 31 * DAY)
    fresh = await _turn(repository, ALICE, now=now - 1 * DAY)
    assert await purge_expired(repository, 30, now) == 1
    assert await repository.get(ALICE, old.conversation_id) is None
    assert await repository.messages(old.conversation_id) == []
    assert await repository.get(ALICE, fresh.conversation_id) is not None


async def test_history_skips_unfinished_answers(repository: ConversationRepository) -> None:
    turn = await _turn(repository, ALICE, prompt="q1")
    await repository.finish(turn.conversation_id, turn.message_id, Outcome("error", ""), 1.0)
    second = await _turn(repository, ALICE, conversation_id=turn.conversation_id, prompt="q2")
    await repository.finish(
        second.conversation_id, second.message_id, Outcome("complete", "a2"), 2.0
    )
    assert history_messages(await repository.messages(turn.conversation_id)) == [
        {"role": "user", "content": "q1"},
        {"role": "user", "content": "q2"},
        {"role": "assistant", "content": "a2"},
    ]


async def test_concurrent_writes_share_batches_and_keep_their_order(
    repository: ConversationRepository,
) -> None:
    import asyncio

    first = await _turn(repository, ALICE, prompt="start")
    cid = first.conversation_id
    # Many turns at once, several in the same conversation: one batch, distinct positions.
    await asyncio.gather(
        *(_turn(repository, ALICE, conversation_id=cid, prompt=f"same {n}") for n in range(4)),
        *(_turn(repository, BOB, prompt=f"other {n}") for n in range(8)),
    )
    messages = await repository.messages(cid)
    assert len(messages) == 10
    assert sorted(m.seq for m in messages) == list(range(1, 11))
    for user, answer in zip(messages[::2], messages[1::2], strict=True):
        assert (user.role, answer.role, answer.parent_id) == ("user", "assistant", user.id)
    bob, _ = await repository.page(BOB, 100)
    assert len(bob) == 8


async def test_a_bad_write_fails_alone_not_its_batch(repository: ConversationRepository) -> None:
    import asyncio

    gone = await _turn(repository, ALICE)
    assert await repository.delete(ALICE, gone.conversation_id)
    results = await asyncio.gather(
        _turn(repository, ALICE, conversation_id=gone.conversation_id),
        *(_turn(repository, ALICE, prompt=f"fine {n}") for n in range(3)),
        return_exceptions=True,
    )
    assert isinstance(results[0], NotFound)
    assert all(isinstance(r, TurnStart) for r in results[1:])
    page, _ = await repository.page(ALICE, 100)
    assert len(page) == 3


async def test_sqlite_writes_wait_in_the_thread_when_another_process_holds_the_lock(
    tmp_path: Path,
) -> None:
    import asyncio
    import sqlite3

    path = tmp_path / "locked.db"
    repository = await open_repository(make_settings(database_url=f"sqlite:///{path}"))
    other = sqlite3.connect(str(path), isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # another process writing: the file's write lock is taken
        asyncio.get_running_loop().call_later(0.3, other.execute, "COMMIT")
        turn = await _turn(repository, ALICE, prompt="waited")
        messages = await repository.messages(turn.conversation_id)
        assert [m.content for m in messages] == ["waited", ""]
    finally:
        other.close()
        await repository.aclose()
