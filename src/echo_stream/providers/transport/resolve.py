"""Upstream host names -> addresses, looked up once per `ttl` seconds and shared.

Every new upstream connection used to resolve its host again (the loop's `getaddrinfo`: a
thread hop, ~35 µs of CPU even for a name in /etc/hosts, plus a DNS round trip for a real one).
When a thousand answers start at once, that is a thousand lookups of one name. Here concurrent
connections to a name share one lookup, and its addresses are kept for `ttl` seconds (aiohttp
keeps them 10 s by default too). A failed lookup is not kept, and when none of a name's
addresses takes a connection its entry is dropped, so the next connection looks it up again.
An IP address is never looked up.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

Address = tuple[int, str, int]
"""(family, host address, port): what a connection is opened to."""

Lookup = Callable[[str, int], Awaitable[list[Any]]]
"""`getaddrinfo`-shaped: (host, port) -> [(family, type, proto, canonname, sockaddr), ...]."""

DEFAULT_TTL = 10.0


def _literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class AddressCache:
    """Resolved addresses per (host, port), kept `ttl` seconds; one lookup at a time per key."""

    def __init__(
        self,
        ttl: float = DEFAULT_TTL,
        lookup: Lookup | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self._lookup = lookup
        self._clock = clock
        self._entries: dict[tuple[str, int], tuple[float, list[Address]]] = {}
        self._pending: dict[tuple[str, int], asyncio.Future[list[Address]]] = {}

    async def resolve(self, host: str, port: int) -> list[Address]:
        """The addresses to try for `host`, in the resolver's order; raises `OSError`
        (`socket.gaierror`) when the name does not resolve."""
        if _literal(host):
            return [(socket.AF_INET6 if ":" in host else socket.AF_INET, host, port)]
        key = (host, port)
        entry = self._entries.get(key)
        if entry is not None and entry[0] > self._clock():
            return entry[1]
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._resolve(host, port))
            self._pending[key] = pending
            pending.add_done_callback(lambda _: self._pending.pop(key, None))
        # Shielded: one caller giving up (cancelled) does not cancel the others' lookup.
        return await asyncio.shield(pending)

    async def _resolve(self, host: str, port: int) -> list[Address]:
        if self._lookup is not None:
            infos = await self._lookup(host, port)
        else:
            loop = asyncio.get_running_loop()
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses = [(family, sockaddr[0], port) for family, _, _, _, sockaddr in infos]
        if not addresses:
            raise socket.gaierror(f"{host} has no addresses")
        if self.ttl > 0:
            self._entries[(host, port)] = (self._clock() + self.ttl, addresses)
        return addresses

    def forget(self, host: str, port: int) -> None:
        """Look `host` up again next time (none of its addresses took a connection)."""
        self._entries.pop((host, port), None)
