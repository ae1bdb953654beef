"""Graceful drain: on SIGTERM stop taking work, let open answers finish, and cut the ones still
open when the grace period ends with an error the client can see.

Uvicorn already stops accepting connections on SIGTERM and waits for the open ones (its
`timeout_graceful_shutdown` is set to the grace period). What it cannot do is end a stream
properly: at its deadline it just cancels the tasks, and the client sees a connection that
stopped without `[DONE]`. `Drain` learns of the signal first (it wraps the signal handler
uvicorn installed), and one second before uvicorn's deadline it cancels every answer still
streaming; the observing stage turns that cancellation into `ShuttingDown`, which each face
encodes as its own error event (so no `[DONE]`), and the response ends cleanly before uvicorn
gives up.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from types import FrameType
from typing import Any

from echo_stream.errors import EchoError

log = logging.getLogger(__name__)

_CUT_BEFORE_DEADLINE_S = 1.0


class ShuttingDown(EchoError):
    """The gateway shut down before this answer finished."""

    status = 503
    type = "server_error"
    code = "shutting_down"


class Drain:
    """Tracks answers in progress and cuts them when the grace period runs out."""

    def __init__(self, grace_s: float) -> None:
        self.grace_s = grace_s
        self.draining = False
        self.cutting = False
        self._streams: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def add(self, task: asyncio.Task[Any]) -> None:
        """An answer started streaming in `task`."""
        self._streams.add(task)

    def discard(self, task: asyncio.Task[Any]) -> None:
        """The answer in `task` ended."""
        self._streams.discard(task)

    @property
    def open_streams(self) -> int:
        """How many answers are in progress."""
        return len(self._streams)

    def begin(self) -> None:
        """Start draining: `/ready` fails from now on; open answers are cut near the deadline."""
        if self.draining:
            return
        self.draining = True
        log.info(
            "draining: %d answer(s) in progress, %.0f s to finish", len(self._streams), self.grace_s
        )
        delay = max(self.grace_s - _CUT_BEFORE_DEADLINE_S, 0.0)
        asyncio.get_running_loop().call_later(delay, self.cut)

    def cut(self) -> None:
        """End every answer still open with `ShuttingDown`."""
        self.cutting = True
        if self._streams:
            log.warning("grace period over: cutting %d open answer(s)", len(self._streams))
        for task in list(self._streams):
            task.cancel()

    def install_signal_hook(self) -> None:
        """Hear SIGTERM/SIGINT before uvicorn does (main thread only; a no-op elsewhere)."""
        if threading.current_thread() is not threading.main_thread():
            return
        self._loop = loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(sig)

            def handler(signum: int, frame: FrameType | None, previous: Any = previous) -> None:
                loop.call_soon_threadsafe(self.begin)
                if callable(previous):
                    previous(signum, frame)

            signal.signal(sig, handler)
