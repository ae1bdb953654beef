"""The last error boundary: a bug anywhere before the first byte is a 500 `server_error` in
OpenAI's shape, with a request id that is logged beside the traceback; never plain text."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from echo_stream.providers.mock import MockProvider
from echo_stream.routing import Router
from tests.conftest import make_app


async def _request(method: str, path: str, **kwargs: Any) -> httpx.Response:
    transport = httpx.ASGITransport(app=make_app(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        return await client.request(method, path, **kwargs)


def _check_500(response: httpx.Response, caplog: pytest.LogCaptureFixture) -> None:
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["type"] == "server_error"
    request_id = response.headers["x-request-id"]
    assert request_id in error["message"]
    [record] = [r for r in caplog.records if request_id in r.getMessage()]
    assert record.exc_info is not None and record.exc_info[0] is ZeroDivisionError


@pytest.mark.parametrize("stream", [True, False])
async def test_a_bug_in_an_adapter_is_a_json_500_with_a_logged_request_id(
    stream: bool, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(self: MockProvider, *args: Any) -> Any:
        yield 1 / 0

    monkeypatch.setattr(MockProvider, "stream", broken)
    body = {"model": "echo-mock", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    with caplog.at_level(logging.ERROR):
        response = await _request("POST", "/v1/chat/completions", json=body)
    _check_500(response, caplog)


async def test_a_bug_while_routing_is_a_json_500(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self: Router, name: str) -> Any:
        return 1 / 0

    monkeypatch.setattr(Router, "resolve", broken)
    body = {"model": "echo-mock", "messages": [{"role": "user", "content": "hi"}]}
    with caplog.at_level(logging.ERROR):
        response = await _request("POST", "/v1/chat/completions", json=body)
    _check_500(response, caplog)


async def test_a_bug_in_another_route_is_a_json_500(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self: Router) -> Any:
        return 1 / 0

    monkeypatch.setattr(Router, "models", broken)
    with caplog.at_level(logging.ERROR):
        response = await _request("GET", "/v1/models")
    _check_500(response, caplog)
