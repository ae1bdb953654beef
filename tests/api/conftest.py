"""App-level tests talk to socket upstreams; close every one a test started."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.upstreams import SocketUpstream


@pytest.fixture(autouse=True)
def _close_socket_upstreams() -> Iterator[None]:
    yield
    while SocketUpstream.instances:
        SocketUpstream.instances.pop().close()
