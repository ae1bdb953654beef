"""Ad-store writes off the response path (`ads.bookkeeping`)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from echo_stream.ads.bookkeeping import Bookkeeper


async def _write(done: list[int], n: int, pause: float = 0.0) -> None:
    if pause:
        await asyncio.sleep(pause)
    done.append(n)


def test_writes_run_in_order_by_one_drainer() -> None:
    async def main() -> list[int]:
        keeper = Bookkeeper(drainers=1)
        done: list[int] = []
        for n in range(100):
            keeper.add(_write(done, n))
        assert len(keeper._drainers) == 1
        await keeper.settled()
        return done

    assert asyncio.run(main()) == list(range(100))


def test_a_failing_write_is_logged_and_the_rest_still_run(caplog: pytest.LogCaptureFixture) -> None:
    async def broken() -> None:
        raise RuntimeError("store down")

    async def main() -> list[int]:
        keeper = Bookkeeper()
        done: list[int] = []
        keeper.add(_write(done, 1))
        keeper.add(broken())
        keeper.add(_write(done, 2))
        await keeper.settled()
        return done

    with caplog.at_level(logging.ERROR):
        assert asyncio.run(main()) == [1, 2]
    assert "ad bookkeeping failed" in caplog.text


def test_a_slow_remote_store_gets_overlapping_drainers() -> None:
    async def main() -> tuple[int, list[int]]:
        keeper = Bookkeeper(drainers=4)
        done: list[int] = []
        for n in range(200):
            keeper.add(_write(done, n, pause=0.01))
        running = len(keeper._drainers)
        await keeper.settled()
        return running, done

    running, done = asyncio.run(main())
    assert running == 4
    assert sorted(done) == list(range(200))


def test_a_full_queue_drops_the_oldest_writes_without_leaking_them() -> None:
    async def main() -> tuple[list[int], int]:
        keeper = Bookkeeper(drainers=1, max_queued=10)
        done: list[int] = []
        for n in range(25):  # queued before the drainer gets its first turn
            keeper.add(_write(done, n))
        await keeper.settled()
        return done, keeper.dropped

    done, dropped = asyncio.run(main())
    assert dropped == 15
    assert done == list(range(15, 25))  # never-run coroutines are closed: no warnings


def test_close_waits_for_the_queue_then_drops_what_is_left() -> None:
    async def main() -> list[int]:
        keeper = Bookkeeper(drainers=1)
        done: list[int] = []
        keeper.add(_write(done, 1))
        keeper.add(_write(done, 2, pause=10))
        keeper.add(_write(done, 3))
        await keeper.aclose(grace=0.05)
        return done

    assert asyncio.run(main()) == [1]
