"""The live log feeds viewers in the generating process; ids are the store's."""

from __future__ import annotations

import asyncio

from echo_stream.sessions.live import LiveLog, TeeStore
from echo_stream.sessions.models import LogEntry, Session
from echo_stream.sessions.store import MemorySessionStore


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


async def test_the_tee_writes_the_store_first_with_its_ids() -> None:
    store = MemorySessionStore()
    session = Session("s", "h", "p", "m", 1, "http://n/webhook-waiting/1")
    await store.create(session, 30)
    live = LiveLog()
    tee = TeeStore(store, live)
    first = await tee.append("s", "x")
    end = await tee.finish("s", {"status": "complete"}, 30)
    assert [e.id for e in live.entries] == [first, end]
    assert [e.id for e in await store.read("s", None, 0)] == [first, end]
