"""The shared HTTP-provider base: the retry rule, statuses, and bodies that are not streams."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

import pytest

from echo_stream.errors import RateLimited, UpstreamRejected, UpstreamTimeout, UpstreamUnavailable
from echo_stream.providers.http import UpstreamOptions, open_stream
from echo_stream.providers.openai import OpenAIProvider
from echo_stream.providers.transport import retry
from echo_stream.providers.transport.base import Limits, UpstreamResponse
from echo_stream.providers.transport.errors import (
    ConnectFailed,
    ConnectionBroken,
    ConnectTimeout,
    ReadTimeout,
    StaleConnection,
    TransportError,
)
from tests.providers.conftest import FakeUpstream, Status, chat, collect


@dataclass
class _Response:
    status: int
    body: bytes = b""
    reason: str = "OK"
    headers: dict[str, str] = field(default_factory=dict)

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        yield self.body

    async def read(self, limit: int = 65536) -> bytes:
        return self.body[:limit]

    def body_complete(self) -> bool:
        return True

    async def aclose(self) -> None:
        return None


class _Scripted:
    """An `UpstreamClient` whose attempts fail or answer as scripted; counts the attempts."""

    def __init__(self, *outcomes: TransportError | int) -> None:
        self.outcomes = list(outcomes)
        self.attempts = 0

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> UpstreamResponse:
        outcome = self.outcomes[min(self.attempts, len(self.outcomes) - 1)]
        self.attempts += 1
        if isinstance(outcome, TransportError):
            raise outcome
        return _Response(outcome)

    async def aclose(self) -> None:
        return None


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retry, "backoff", lambda attempt: 0.0)


@pytest.mark.parametrize(
    "error", [ConnectFailed("refused"), ConnectTimeout("slow connect")], ids=type
)
async def test_not_sent_errors_are_retried_up_to_max_retries(error: TransportError) -> None:
    client = _Scripted(error, error, 200)
    response = await open_stream(client, "openai", "http://x/", body={}, headers={}, max_retries=2)
    assert response.status == 200 and client.attempts == 3
    client = _Scripted(error)
    with pytest.raises((UpstreamUnavailable, UpstreamTimeout)):
        await open_stream(client, "openai", "http://x/", body={}, headers={}, max_retries=2)
    assert client.attempts == 3


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ReadTimeout("no headers"), UpstreamTimeout),
        (ConnectionBroken("reset"), UpstreamUnavailable),
    ],
    ids=["read-timeout", "reset-after-send"],
)
async def test_a_sent_request_is_never_sent_again(
    error: TransportError, expected: type[Exception]
) -> None:
    client = _Scripted(error, 200)
    with pytest.raises(expected):
        await open_stream(client, "openai", "http://x/", body={}, headers={}, max_retries=3)
    assert client.attempts == 1


async def test_a_stale_pooled_connection_is_retried_once_without_counting() -> None:
    client = _Scripted(StaleConnection("closed by peer"), 200)
    response = await open_stream(client, "openai", "http://x/", body={}, headers={}, max_retries=0)
    assert response.status == 200 and client.attempts == 2
    client = _Scripted(StaleConnection("closed"), StaleConnection("closed again"), 200)
    with pytest.raises(UpstreamUnavailable):
        await open_stream(client, "openai", "http://x/", body={}, headers={}, max_retries=0)
    assert client.attempts == 2


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504, 529])
async def test_statuses_asking_for_a_retry_are_retried(status: int) -> None:
    client = _Scripted(status, 200)
    response = await open_stream(client, "openai", "http://x/", body={}, headers={}, max_retries=1)
    assert response.status == 200 and client.attempts == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_other_statuses_are_not_retried(status: int) -> None:
    client = _Scripted(status, 200)
    with pytest.raises(UpstreamRejected):
        await open_stream(client, "openai", "http://x/", body={}, headers={}, max_retries=3)
    assert client.attempts == 1


async def test_429_after_the_last_retry_keeps_its_meaning() -> None:
    client = _Scripted(429)
    with pytest.raises(RateLimited):
        await open_stream(client, "openai", "http://x/", body={}, headers={}, max_retries=1)
    assert client.attempts == 2


async def test_a_json_body_where_a_stream_was_asked_for_is_a_502() -> None:
    upstream = FakeUpstream(Status(200, {"error": {"message": "streaming is off"}}))
    provider = OpenAIProvider("http://up/v1", "k", UpstreamOptions(), upstream.client())
    with pytest.raises(UpstreamUnavailable, match="streaming is off"):
        await collect(provider.stream(chat(), "gpt-4o"))


async def test_a_json_body_over_the_limit_is_a_502_too_large() -> None:
    upstream = FakeUpstream(Status(200, {"data": "x" * 5000}))
    options = UpstreamOptions(limits=Limits(max_body_bytes=1024))
    provider = OpenAIProvider("http://up/v1", "k", options, upstream.client())
    with pytest.raises(UpstreamUnavailable) as caught:
        await collect(provider.stream(chat(), "gpt-4o"))
    assert caught.value.code == "upstream_too_large"
