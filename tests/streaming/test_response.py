"""Responses that watch for the client leaving (`streaming.response.run_until_disconnect`)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from echo_stream.streaming.response import WATCH_AFTER_S, run_until_disconnect


class Client:
    """An ASGI `receive` whose client leaves when told to (or never)."""

    def __init__(self) -> None:
        self.calls = 0
        self.gone = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        self.calls += 1
        await self.gone.wait()
        return {"type": "http.disconnect"}


def test_a_short_response_never_starts_a_watcher() -> None:
    async def main() -> tuple[bool, int]:
        client = Client()
        finished = await run_until_disconnect(client.receive, asyncio.sleep(0.001))
        await asyncio.sleep(WATCH_AFTER_S * 2)  # no watcher wakes up later either
        return finished, client.calls

    assert asyncio.run(main()) == (True, 0)


def test_a_client_leaving_a_long_response_cancels_its_work() -> None:
    async def main() -> tuple[bool, bool, bool]:
        client = Client()
        work_cancelled = False

        async def work() -> None:
            nonlocal work_cancelled
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                work_cancelled = True
                raise

        asyncio.get_running_loop().call_later(WATCH_AFTER_S * 2, client.gone.set)
        finished = await run_until_disconnect(client.receive, work())
        task = asyncio.current_task()
        assert task is not None
        return finished, work_cancelled, task.cancelling() == 0

    assert asyncio.run(main()) == (False, True, True)


def test_a_client_leaving_early_is_noticed_once_the_watch_starts() -> None:
    async def main() -> tuple[bool, float]:
        client = Client()
        client.gone.set()  # gone before the response even started
        loop = asyncio.get_running_loop()
        start = loop.time()
        finished = await run_until_disconnect(client.receive, asyncio.sleep(30))
        return finished, loop.time() - start

    finished, took = asyncio.run(main())
    assert not finished
    assert took < 5  # not the 30 s of work: cancelled at the watch's start


def test_cancelling_from_outside_is_not_mistaken_for_the_client_leaving() -> None:
    async def main() -> None:
        client = Client()
        task = asyncio.ensure_future(run_until_disconnect(client.receive, asyncio.sleep(30)))
        await asyncio.sleep(WATCH_AFTER_S * 2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
