"""The fake upstream's OpenAI streams from memory, for `bench.request_profile --no-network`.

`install()` replaces `FastClient.post` in this process (and only here, in a bench) with one that
answers at once with the stream `bench.fake_upstream` would send for the request's model, one
read per event as the fake writes them. What is left to measure is the gateway's own Python per
request, with no sockets, system calls or waits: on this 2-core VM that figure holds to a few per
cent where the networked one moves by ten or more, which is what an A/B of a change above the
transport needs. The transport itself (`FastClient`, `Connection`) is then not measured.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import orjson

from bench.fake_upstream import openai_events
from bench.workload import StreamShape, shape_from_model
from echo_stream.providers.transport.fastclient import FastClient

_HEADERS = {"content-type": "text/event-stream; charset=utf-8"}


class CannedResponse:
    """A 200 whose body reads are already known (an `UpstreamResponse`)."""

    status = 200
    reason = "OK"

    def __init__(self, reads: list[bytes]) -> None:
        self.headers = dict(_HEADERS)
        self._reads = reads

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        """Each read in turn."""
        for read in self._reads:
            yield read

    async def read(self, limit: int = 65536) -> bytes:
        """The whole body, up to `limit` bytes."""
        return b"".join(self._reads)[:limit]

    def body_complete(self) -> bool:
        """Always: nothing is left on any wire."""
        return True

    async def aclose(self) -> None:
        """Nothing to release."""


class CannedUpstream:
    """Answers each request body with its stream, built once per distinct body."""

    def __init__(self, default: StreamShape) -> None:
        self._default = default
        self._reads: dict[bytes, list[bytes]] = {}

    def reads(self, body: bytes) -> list[bytes]:
        """The body reads of the stream for this request body."""
        reads = self._reads.get(body)
        if reads is None:
            request = orjson.loads(body)
            model = str(request["model"])
            usage = bool((request.get("stream_options") or {}).get("include_usage"))
            shape = shape_from_model(model, self._default)
            events = openai_events(model, shape, usage)
            reads = self._reads[body] = [event.encode() for event, _ in events]
        return reads

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> CannedResponse:
        """Stands in for `FastClient.post` (a bound method set on the class is not re-bound)."""
        return CannedResponse(self.reads(body))


def install(default: StreamShape | None = None) -> CannedUpstream:
    """Make every `FastClient` in this process answer from memory (see the module docstring)."""
    canned = CannedUpstream(default or StreamShape(20, 0))
    FastClient.post = canned.post  # type: ignore[assignment,method-assign]
    return canned
