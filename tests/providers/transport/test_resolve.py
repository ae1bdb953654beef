"""Upstream names are looked up once per TTL and shared (`transport.resolve`)."""

from __future__ import annotations

import asyncio
import socket
import ssl
from typing import Any

import pytest
import trustme

from echo_stream.providers.transport.errors import ConnectFailed
from echo_stream.providers.transport.fastclient import FastClient
from echo_stream.providers.transport.resolve import AddressCache
from tests.providers.transport.test_fastclient import (
    body_of,
    ca,  # noqa: F401  (fixture)
    keep_alive,
    server_tls,
    upstream,
)


class Resolver:
    """A stand-in for DNS: counts lookups, answers after a moment (or fails)."""

    def __init__(self, *addresses: str, fail: bool = False) -> None:
        self.addresses = addresses
        self.fail = fail
        self.lookups = 0

    async def __call__(self, host: str, port: int) -> list[Any]:
        self.lookups += 1
        await asyncio.sleep(0.01)
        if self.fail:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in self.addresses]


async def test_concurrent_connections_to_a_name_share_one_lookup_for_its_ttl() -> None:
    now = [0.0]
    resolver = Resolver("10.0.0.1", "10.0.0.2")
    cache = AddressCache(ttl=10, lookup=resolver, clock=lambda: now[0])
    answers = await asyncio.gather(*(cache.resolve("api.example.com", 443) for _ in range(50)))
    assert resolver.lookups == 1
    expected = [(socket.AF_INET, "10.0.0.1", 443), (socket.AF_INET, "10.0.0.2", 443)]
    assert all(answer == expected for answer in answers)
    now[0] = 9.9
    await cache.resolve("api.example.com", 443)
    assert resolver.lookups == 1
    now[0] = 10.1  # expired
    await cache.resolve("api.example.com", 443)
    assert resolver.lookups == 2
    await cache.resolve("api.example.com", 8443)  # another port is another entry
    assert resolver.lookups == 3


async def test_a_failed_lookup_is_not_kept_and_forget_looks_up_again() -> None:
    resolver = Resolver("10.0.0.1", fail=True)
    cache = AddressCache(lookup=resolver)
    for _ in range(2):
        with pytest.raises(socket.gaierror):
            await cache.resolve("gone.example.com", 80)
    assert resolver.lookups == 2
    resolver.fail = False
    await cache.resolve("gone.example.com", 80)
    cache.forget("gone.example.com", 80)
    await cache.resolve("gone.example.com", 80)
    assert resolver.lookups == 4


async def test_ip_addresses_are_never_looked_up() -> None:
    resolver = Resolver()
    cache = AddressCache(lookup=resolver)
    assert await cache.resolve("127.0.0.1", 80) == [(socket.AF_INET, "127.0.0.1", 80)]
    assert await cache.resolve("::1", 80) == [(socket.AF_INET6, "::1", 80)]
    assert resolver.lookups == 0


async def test_a_name_connects_through_its_addresses_in_turn_and_reuses_the_lookup() -> None:
    # 127.0.0.3 refuses (the server listens on 127.0.0.1 only): the next address is tried.
    async with upstream(keep_alive(b"by name")) as server:
        resolver = Resolver("127.0.0.3", "127.0.0.1")
        fast = FastClient(connect_timeout=2, proxies={}, addresses=AddressCache(lookup=resolver))
        try:
            url = f"http://upstream.test:{server.port}/v1/chat"
            responses = await asyncio.gather(*(fast.post(url, b"{}", {}) for _ in range(3)))
            for response in responses:
                assert (response.status, await body_of(response)) == (200, b"by name")
                await response.aclose()
            assert server.connections == 3
            assert server.requests[0].header("host") == [f"upstream.test:{server.port}"]
            assert resolver.lookups == 1
            # When no address of a name answers, its entry goes: the next try looks it up again.
            resolver.addresses = ("127.0.0.3",)
            cache = AddressCache(lookup=resolver)
            lone = FastClient(connect_timeout=2, proxies={}, addresses=cache)
            try:
                for _ in range(2):
                    with pytest.raises(ConnectFailed, match="Connect call failed"):
                        await lone.post(url, b"{}", {})
            finally:
                await lone.aclose()
            assert resolver.lookups == 3
        finally:
            await fast.aclose()


async def test_an_unresolvable_name_is_connect_failed() -> None:
    fast = FastClient(
        connect_timeout=2, proxies={}, addresses=AddressCache(lookup=Resolver(fail=True))
    )
    try:
        with pytest.raises(ConnectFailed, match=r"nowhere\.test"):
            await fast.post("http://nowhere.test/v1/chat", b"{}", {})
    finally:
        await fast.aclose()


async def test_tls_to_a_name_checks_the_certificate_for_the_name(ca: trustme.CA) -> None:  # noqa: F811
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    lookup = Resolver("127.0.0.1")
    for certified, works in (("upstream.test", True), ("127.0.0.1", False)):
        fast = FastClient(
            ssl_context=trusting,
            connect_timeout=2,
            proxies={},
            addresses=AddressCache(lookup=lookup),
        )
        try:
            async with upstream(keep_alive(b"secret"), tls=server_tls(ca, certified)) as server:
                url = f"https://upstream.test:{server.port}/v1/chat"
                if works:
                    response = await fast.post(url, b"{}", {})
                    assert await body_of(response) == b"secret"
                    await response.aclose()
                else:  # a certificate for the address alone does not pass for the name
                    with pytest.raises(ConnectFailed, match="CERTIFICATE_VERIFY_FAILED"):
                        await fast.post(url, b"{}", {})
        finally:
            await fast.aclose()
