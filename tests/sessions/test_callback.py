"""resumeUrl checks (allowlist, n8n path shape, SSRF guard) and delivery to a fake Wait node."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from echo_stream.errors import InvalidRequest
from echo_stream.providers.transport.resolve import AddressCache
from echo_stream.sessions.callback import CallbackPolicy, callback_client, deliver
from tests.conftest import make_settings
from tests.live import serve
from tests.sessions.fakes import fake_n8n


def _policy(origins: str, private: str = "", **overrides: Any) -> CallbackPolicy:
    settings = make_settings(n8n_allowed_origins=origins, n8n_private_hosts=private, **overrides)
    return CallbackPolicy.from_settings(settings)


ORIGINS = "https://n8n.example.com, http://n8n:5678, http://127.0.0.1:5678"


@pytest.mark.parametrize(
    "url",
    [
        "https://n8n.example.com/webhook-waiting/123",
        "https://n8n.example.com:443/webhook-waiting/123",
        "https://N8N.example.com/webhook-waiting/123/my-suffix",
        "https://n8n.example.com/n8n/webhook-waiting/123?signature=abc123",
        "http://n8n:5678/webhook-waiting/9/",
    ],
)
def test_allowed_resume_urls(url: str) -> None:
    _policy(ORIGINS).check_shape(url, None)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://n8n.example.com/webhook-waiting/123", "origin"),  # scheme differs
        ("https://n8n.example.com:8443/webhook-waiting/123", "origin"),  # port differs
        ("https://evil.example.com/webhook-waiting/123", "origin"),
        ("https://n8n.example.com.evil.com/webhook-waiting/123", "origin"),
        ("https://n8n.example.com@evil.com/webhook-waiting/123", "credentials"),
        ("https://user:pw@n8n.example.com/webhook-waiting/123", "credentials"),
        ("ftp://n8n.example.com/webhook-waiting/123", "origin"),
        ("https://n8n.example.com/webhook/123", "waiting-webhook"),
        ("https://n8n.example.com/webhook-waiting/abc", "waiting-webhook"),
        ("https://n8n.example.com/webhook-waiting/", "waiting-webhook"),
        ("https://n8n.example.com/webhook-waiting/1/../../rest/login", "waiting-webhook"),
        ("https://n8n.example.com/webhook-waiting/1/%2e%2e/x", "waiting-webhook"),
        ("https://n8n.example.com/webhook-waiting/1#frag", "fragment"),
        ("https://n8n.example.com/webhook-waiting/1?a=b c", "query"),
        ("https://n8n.example.com/webhook-waiting/1?a=<script>", "query"),
        ("not a url", "origin"),
        ("http://[::1/webhook-waiting/1", "origin"),
    ],
)
def test_refused_resume_urls(url: str, why: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        _policy(ORIGINS).check_shape(url, None)
    assert caught.value.status == 400
    assert caught.value.param == "resumeUrl"
    assert why in caught.value.message


def test_a_token_bound_url_must_be_equal() -> None:
    policy = _policy(ORIGINS)
    url = "https://n8n.example.com/webhook-waiting/123"
    policy.check_shape(url, url)
    with pytest.raises(InvalidRequest, match="token"):
        policy.check_shape(url, "https://n8n.example.com/webhook-waiting/124")


def test_a_bad_origin_setting_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="N8N_ALLOWED_ORIGINS"):
        _policy("n8n.example.com")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:5678/webhook-waiting/1",
        "http://localhost:5678/webhook-waiting/1",
        "http://169.254.169.254/webhook-waiting/1",
        "http://[::1]:5678/webhook-waiting/1",
        "http://0.0.0.0:5678/webhook-waiting/1",
        "http://[fd00:ec2::254]/webhook-waiting/1",
        # IPv4-mapped IPv6: the same loopback and metadata addresses in another spelling.
        "http://[::ffff:127.0.0.1]:5678/webhook-waiting/1",
        "http://[::ffff:169.254.169.254]/webhook-waiting/1",
    ],
)
async def test_loopback_link_local_and_metadata_are_refused(url: str) -> None:
    policy = _policy(ORIGINS)
    with pytest.raises(InvalidRequest, match="loopback"):
        await policy.check_address(url)


async def test_an_explicitly_allowed_host_may_be_loopback() -> None:
    policy = _policy(ORIGINS, private="127.0.0.1, localhost")
    await policy.check_address("http://127.0.0.1:5678/webhook-waiting/1")
    await policy.check_address("http://localhost:5678/webhook-waiting/1")
    with pytest.raises(InvalidRequest):
        await policy.check_address("http://169.254.169.254/webhook-waiting/1")


async def test_private_network_addresses_are_fine() -> None:
    """An n8n container on a compose network (10/8, 172.16/12, 192.168/16) needs no listing."""
    policy = _policy(ORIGINS)
    for host in ("10.1.2.3", "172.18.0.5", "192.168.1.10"):
        await policy.check_address(f"http://{host}:5678/webhook-waiting/1")


async def test_an_unresolvable_host_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="resolve"):
        await _policy(ORIGINS).check_address("http://no-such-host.invalid/webhook-waiting/1")


async def test_the_check_and_the_callback_client_share_one_lookup() -> None:
    """DNS rebinding: a name that answers a private address to the check and loopback a
    moment later still gets its connection at the address the check passed."""
    answers = iter(["10.1.2.3", "127.0.0.1"])
    lookups = 0

    async def rebinding(host: str, port: int) -> list[Any]:
        nonlocal lookups
        lookups += 1
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (next(answers), port))]

    policy = dataclasses.replace(_policy(ORIGINS), addresses=AddressCache(lookup=rebinding))
    await policy.check_address("http://n8n:5678/webhook-waiting/1")
    client = callback_client(policy)
    try:
        pool_addresses = client._addresses
        assert pool_addresses is policy.addresses
        assert await pool_addresses.resolve("n8n", 5678) == [(socket.AF_INET, "10.1.2.3", 5678)]
        assert lookups == 1
    finally:
        await client.aclose()


def _deliver(args: tuple[Any, ...]) -> str:
    policy, url, payload = args

    async def run() -> str:
        client = callback_client(policy)
        try:
            return await deliver(policy, client, url, payload)
        finally:
            await client.aclose()

    return asyncio.run(run())


def _loopback_policy(url: str, **overrides: Any) -> CallbackPolicy:
    values: dict[str, Any] = {"n8n_callback_retry_seconds": 20, "n8n_callback_timeout": 5}
    values.update(overrides)
    return _policy(url, private="127.0.0.1", **values)


def test_running_already_is_retried_until_the_wait_node_takes_it() -> None:
    with fake_n8n(running_attempts=3) as n8n:
        policy = _loopback_policy(n8n.url, n8n_callback_secret="s3cret")
        outcome = _deliver((policy, n8n.resume_url(), {"answer": "hi"}))
        assert outcome == "delivered"
        calls = n8n.requests
        assert [c["status"] for c in calls] == [409, 409, 409, 200]
        assert all(c["headers"]["x-echo-callback-secret"] == "s3cret" for c in calls)
        assert calls[-1]["json"] == {"answer": "hi"}
        # A second delivery (which the gateway never makes) would be told it finished.
        assert _deliver((policy, n8n.resume_url(), {})) == "HTTP 409"
        assert len(n8n.requests) == 5


@pytest.mark.parametrize("status", [404, 400, 401, 403])
def test_other_client_errors_are_not_retried(status: int) -> None:
    with fake_n8n(status_override=status) as n8n:
        outcome = _deliver((_loopback_policy(n8n.url), n8n.resume_url(), {}))
        assert outcome == f"HTTP {status}"
        assert len(n8n.requests) == 1


def test_server_errors_are_retried_until_the_deadline() -> None:
    with fake_n8n(status_override=503) as n8n:
        policy = _loopback_policy(n8n.url, n8n_callback_retry_seconds=1)
        assert _deliver((policy, n8n.resume_url(), {})) == "HTTP 503"
        assert 2 <= len(n8n.requests) <= 5


def test_network_errors_are_retried_then_given_up() -> None:
    from tests.live import free_port

    url = f"http://127.0.0.1:{free_port()}"
    policy = _loopback_policy(url, n8n_callback_retry_seconds=0.6)
    outcome = _deliver((policy, url + "/webhook-waiting/1", {}))
    assert outcome.startswith("network error")


def _odd_n8n() -> tuple[Starlette, dict[str, int]]:
    hits = {"redirect": 0, "target": 0, "huge": 0}

    async def redirect(request: Request) -> Response:
        hits["redirect"] += 1
        return Response(status_code=307, headers={"location": "/elsewhere"})

    async def target(request: Request) -> Response:
        hits["target"] += 1
        return Response("ok")

    async def huge(request: Request) -> Response:
        hits["huge"] += 1

        async def endless() -> Any:
            while True:
                yield b"x" * 65536
                await asyncio.sleep(0)

        return StreamingResponse(endless(), status_code=200)

    app = Starlette(
        routes=[
            Route("/webhook-waiting/1", redirect, methods=["POST"]),
            Route("/elsewhere", target, methods=["POST"]),
            Route("/webhook-waiting/2", huge, methods=["POST"]),
        ]
    )
    return app, hits


def test_redirects_are_never_followed_and_bodies_are_capped() -> None:
    app, hits = _odd_n8n()
    with serve(app) as server:
        policy = _loopback_policy(server.url)
        assert _deliver((policy, server.url + "/webhook-waiting/1", {})) == "HTTP 307"
        assert hits == {"redirect": 1, "target": 0, "huge": 0}
        # An endless reply body is cut off after a few KiB: the call still ends.
        assert _deliver((policy, server.url + "/webhook-waiting/2", {})) == "delivered"


def test_a_refused_address_is_never_called() -> None:
    with fake_n8n() as n8n:
        policy = _policy(n8n.url)  # 127.0.0.1 not explicitly allowed
        outcome = _deliver((policy, n8n.resume_url(), {}))
        assert outcome.startswith("refused")
        assert n8n.requests == []
