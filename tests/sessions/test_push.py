"""A caught-up viewer is fed by the generating task itself (`sessions.feed`'s pushes), and
takes over from the log, with no gap or duplicate, whenever a push cannot go."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from echo_stream.sessions.feed import Feed, follow
from echo_stream.sessions.live import LiveLog
from echo_stream.sessions.models import LogEntry

END = {"status": "complete"}


class Viewer:
    """A connection that takes pushes until told to refuse (or to fail) them."""

    def __init__(self) -> None:
        self.pushed: list[str] = []
        self.refuse = False
        self.fail = False

    def push(self, entry: LogEntry) -> bool:
        if self.fail:
            raise OSError("the connection broke")
        if self.refuse:
            return False
        self.pushed.append(entry.id)
        return True


async def _read(items: AsyncGenerator[LogEntry | None, None], out: list[str | None]) -> None:
    async for item in items:
        out.append(None if item is None else item.id)


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_caught_up_viewer_is_pushed_to_and_its_task_gets_only_the_end() -> None:
    feed, viewer, read = Feed(), Viewer(), []
    feed.add(LogEntry("1", "a"))
    task = asyncio.ensure_future(_read(follow(feed, 0, 10, push=viewer.push), read))
    await _settle()
    assert read == ["1"]  # what was there before it caught up comes the ordinary way
    for number in range(2, 6):
        feed.add(LogEntry(str(number), "x"))
        assert viewer.pushed[-1] == str(number)  # written at once, by the writer's call
    assert read == ["1"]  # ... and not yielded to the viewer's task
    feed.add(LogEntry("6", end=END))
    await asyncio.wait_for(task, 5)
    assert read == ["1", "6"]
    assert viewer.pushed == ["2", "3", "4", "5"]
    assert feed.pushers == []


async def test_when_a_push_cannot_go_the_viewer_goes_on_from_that_entry() -> None:
    feed, viewer, read = Feed(), Viewer(), []
    task = asyncio.ensure_future(_read(follow(feed, 0, 10, push=viewer.push), read))
    await _settle()
    feed.add(LogEntry("1", "a"))  # before anything reached the viewer's task: pushed
    viewer.refuse = True  # e.g. the client's connection pushes back
    feed.add(LogEntry("2", "b"))
    feed.add(LogEntry("3", "c"))  # no pusher any more: waits in the log for the task
    await _settle()
    viewer.refuse = False
    feed.add(LogEntry("4", "d"))  # caught up again: pushed again
    await _settle()
    feed.add(LogEntry("5", end=END))
    await asyncio.wait_for(task, 5)
    assert viewer.pushed == ["1", "4"]
    assert read == ["2", "3", "5"]
    assert sorted(viewer.pushed + read, key=int) == ["1", "2", "3", "4", "5"]


async def test_a_failing_push_never_reaches_the_writer() -> None:
    feed, viewer, read = Feed(), Viewer(), []
    task = asyncio.ensure_future(_read(follow(feed, 0, 10, push=viewer.push), read))
    await _settle()
    viewer.fail = True
    feed.add(LogEntry("1", "a"))  # the push raised; `add` did not
    feed.add(LogEntry("2", end=END))
    await asyncio.wait_for(task, 5)
    assert read == ["1", "2"] and viewer.pushed == []


async def test_an_idle_pushed_viewer_gets_keep_alive_ticks_then_pushes_again() -> None:
    live, viewer, read = LiveLog(), Viewer(), []
    task = asyncio.ensure_future(_read(live.follow(None, 0.05, viewer.push), read))
    await asyncio.sleep(0.2)
    assert read and set(read) == {None}
    for _ in range(10_000):  # the viewer may be between a tick (its wait resolved) and its next
        if live.pushers and not live.pushers[0].waiter.done():
            break
        await asyncio.sleep(0)
    live.add(LogEntry("0-1", "a"))  # no await since the check: it is still caught up
    assert viewer.pushed == ["0-1"]
    live.close()
    await asyncio.wait_for(task, 5)
    assert live.pushers == []


async def test_a_viewer_that_leaves_is_no_longer_pushed_to() -> None:
    feed, viewer = Feed(), Viewer()
    task = asyncio.ensure_future(_read(follow(feed, 0, 10, push=viewer.push), []))
    await _settle()
    assert len(feed.pushers) == 1
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert feed.pushers == []
    feed.add(LogEntry("1", "a"))
    assert viewer.pushed == []
