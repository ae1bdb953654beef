"""The live log feeds viewers in the generating process; ids are the store's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from echo_stream.sessions.live import BatchingWriter, LiveLog
from echo_stream.sessions.models import LogEntry, Session
from echo_stream.sessions.redis_store import RedisSessionStore
from tests.sessions.conftest import REDIS_URL


@asynccontextmanager
async def _started(redis_prefix: str) -> AsyncIterator[RedisSessionStore]:
    """A Redis store holding session "s", started (its generation claimed)."""
    store = RedisSessionStore.from_url(REDIS_URL, prefix=redis_prefix)
    try:
        session = Session("s", "h", "p", "m", 1, "http://n/webhook-waiting/1")
        await store.create(session, 30)
        assert await store.claim("s", "start", "run", 60)
        yield store
    finally:
        await store.aclose()


async def _take(live: LiveLog, after: str | None, count: int) -> list[LogEntry | None]:
    out: list[LogEntry | None] = []
    async for item in live.follow(after, keepalive=0.05):
        out.append(item)
        if len(out) == count:
            break
    return out


async def test_viewers_get_entries_after_their_id_then_the_end() -> None:
    live = LiveLog()
    for number, text in enumerate(["a", "b", "c"], 1):
        live.add(LogEntry(f"{number}-0", text))
    assert live.knows(None) and live.knows("2-0") and not live.knows("9-0")
    reader = asyncio.ensure_future(_take(live, "1-0", 4))
    await asyncio.sleep(0.01)
    live.add(LogEntry("4-0", end={"status": "complete"}))
    entries = await asyncio.wait_for(reader, 5)
    assert [e.id for e in entries if e is not None] == ["2-0", "3-0", "4-0"]


async def test_an_idle_viewer_gets_keep_alive_ticks_and_a_closed_log_ends() -> None:
    live = LiveLog()
    ticks = await _take(live, None, 2)
    assert ticks == [None, None]
    live.close()
    assert await _take(live, None, 5) == []


@pytest.mark.redis
async def test_the_batching_writer_numbers_events_and_writes_them_in_order(
    redis_prefix: str,
) -> None:
    async with _started(redis_prefix) as store:
        live = LiveLog()
        writer = BatchingWriter(store, live, linger=0.05)
        ids = [await writer.append("s", text) for text in ("a", "b\\nc", "d")]
        assert ids == ["0-1", "0-2", "0-3"]
        assert [e.id for e in live.entries] == ids  # local viewers see them at once
        assert await store.read("s", None, 0) == []  # the batch is not written yet
        await asyncio.sleep(0.2)
        assert [e.text for e in await store.read("s", None, 0)] == ["a", "b\\nc", "d"]
        await writer.append("s", "e")
        end = await writer.finish("s", {"status": "complete"}, 30)
        assert end == "0-5"
        stored = await store.read("s", "0-3", 0)
        assert [(e.id, e.text, e.end) for e in stored] == [
            ("0-4", "e", None),
            ("0-5", "", {"status": "complete"}),
        ]
        view = await store.view("s")
        assert view is not None and view.finished


@pytest.mark.redis
async def test_the_batching_writer_reports_a_lost_session(redis_prefix: str) -> None:
    store = RedisSessionStore.from_url(REDIS_URL, prefix=redis_prefix)
    try:
        writer = BatchingWriter(store, LiveLog(), linger=0.01)
        await writer.append("gone", "a")
        await asyncio.sleep(0.1)
        with pytest.raises(KeyError):
            await writer.append("gone", "b")
    finally:
        await store.aclose()


@pytest.mark.redis
async def test_conclude_writes_the_pending_batch_and_the_end_and_claims_the_callback_once(
    redis_prefix: str,
) -> None:
    async with _started(redis_prefix) as store:
        live = LiveLog()
        writer = BatchingWriter(store, live, linger=30)  # the batch would linger for long
        for text in ("a", "b"):
            await writer.append("s", text)
        assert await writer.conclude("s", {"status": "complete"}, 30)  # at once, not in 30 s
        stored = await store.read("s", None, 0)
        assert [(e.id, e.text, e.end) for e in stored] == [
            ("0-1", "a", None),
            ("0-2", "b", None),
            ("0-3", "", {"status": "complete"}),
        ]
        assert live.entries[-1].end == {"status": "complete"}
        assert not await store.conclude("s", {"status": "complete"}, 30)  # claimed once only
        assert not await store.claim("s", "callback", "claimed", 30)
        assert not await BatchingWriter(store, LiveLog()).conclude("gone", {}, 30)


AWKWARD_TEXTS = [
    'quote " and backslash \\ and slash /',
    "line\nbreaks\r\nand\ttabs",
    "control \x00 \x01 \x1f \x7f bytes",
    "non-ASCII: é ü 中文 🙂 \u2028 \u2029 \ufeff",
    "  leading and trailing spaces  ",
    '[1, 2] {"json": "looking"} null true 1e999',
]


@pytest.mark.redis
@pytest.mark.parametrize("linger", [0.01, 30], ids=["batched", "with-the-end"])
async def test_pieces_are_stored_byte_for_byte_whatever_they_contain(
    redis_prefix: str, linger: float
) -> None:
    # A batch travels to the Lua script as one JSON array (cjson decodes it there): every
    # piece must come back exactly, whether a batch wrote it or the end's round trip did.
    async with _started(redis_prefix) as store:
        writer = BatchingWriter(store, LiveLog(), linger=linger)
        for text in AWKWARD_TEXTS:
            await writer.append("s", text)
        await asyncio.sleep(0.1)
        await writer.finish("s", {"status": "complete", "error": 'a "quoted" error'}, 30)
        stored = await store.read("s", None, 0)
        assert [e.text for e in stored[:-1]] == AWKWARD_TEXTS
        assert stored[-1].end == {"status": "complete", "error": 'a "quoted" error'}
