"""Model names are checked at the edge: anything outside the documented set is a 400 on
`model`, on every route, before any upstream is called."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import make_app
from tests.providers.transport.test_urls import NASTY
from tests.upstreams import SocketUpstream, openai_stream, text_reply

PREFIXES = ["gpt-", "claude-", "gemini-", "openai/", "anthropic/", "google/", "mock/", ""]
BAD = [name for name in NASTY if name not in ("a/b", ".")] + ["a..b", "a//b", "x?", "x#", "x@€"]
ALONE = ["", ".", "-x", "/x", ":x"]


@pytest.mark.parametrize("suffix", BAD, ids=lambda m: repr(m[:20]))
@pytest.mark.parametrize("prefix", PREFIXES)
@pytest.mark.parametrize("stream", [True, False])
async def test_bad_model_names_are_400_on_model_and_reach_no_upstream(
    prefix: str, suffix: str, stream: bool
) -> None:
    upstream = SocketUpstream(text_reply(openai_stream, ["never"]))
    model = prefix + suffix
    transport = httpx.ASGITransport(app=make_app(upstream))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        response = await client.post(
            "/v1/chat/completions",
            json={
                "model": model,
                "messages": [{"role": "user", "content": "hi"}],
                "stream": stream,
            },
        )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["param"], error["code"]) == ("model", "invalid_model_name")
    assert upstream.requests == []


@pytest.mark.parametrize("model", ALONE)
async def test_names_that_are_bad_on_their_own(model: str) -> None:
    transport = httpx.ASGITransport(app=make_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        response = await client.post(
            "/v1/chat/completions",
            json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "model"


@pytest.mark.parametrize(
    "model", ["gpt-4o", "openai/meta-llama/llama-3-70b:free", "openai/llama3:8b", "gpt-4o@2024+x"]
)
async def test_names_from_real_catalogs_still_route(model: str) -> None:
    upstream = SocketUpstream(text_reply(openai_stream, ["ok"]))
    transport = httpx.ASGITransport(app=make_app(upstream))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        response = await client.post(
            "/v1/chat/completions",
            json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        )
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "ok"
    assert upstream.bodies[0]["model"] == model.removeprefix("openai/")
