"""The keep-alive pool under `FastClient`: open and idle connections to one (scheme, host,
port), at most `max_connections` of them open; callers beyond that wait, in order, up to
`connect_timeout` for a slot.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque

from echo_stream.providers.transport.connection import Connection
from echo_stream.providers.transport.errors import ConnectFailed, ConnectTimeout, TransportError
from echo_stream.providers.transport.proxy import Proxy, open_tunnel
from echo_stream.providers.transport.resolve import AddressCache


class HostPool:
    """Open and idle connections to one (scheme, host, port)."""

    def __init__(
        self,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None,
        *,
        connect_timeout: float,
        read_timeout: float,
        max_connections: int,
        max_idle: int,
        max_head_bytes: int = 64 * 1024,
        proxy: Proxy | None = None,
        idle_timeout: float = 60.0,
        addresses: AddressCache,
    ) -> None:
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_connections = max_connections
        self.max_idle = max_idle
        self.max_head_bytes = max_head_bytes
        self.proxy = proxy
        self.idle_timeout = idle_timeout
        self.addresses = addresses
        """Shared by the client's pools (`FastClient`), and with the SSRF check for callbacks."""
        self.idle: deque[Connection] = deque()
        self.open = 0
        self.closed = False
        self._waiters: deque[asyncio.Future[bool]] = deque()

    async def acquire(self, *, fresh: bool = False) -> tuple[Connection, bool]:
        """A connection and whether it was reused; `fresh` skips the idle ones."""
        deadline: float | None = None
        while True:
            if self.closed:
                raise TransportError("the client is closed")
            while self.idle and not fresh:
                conn = self.idle.pop()
                if conn.usable() and not self._expired(conn):
                    return conn, True
                conn.abort()
            if self.open < self.max_connections:
                return await self._connect(deadline), False
            if self.idle:  # a fresh connection is wanted and only idle ones hold the slots
                self.idle.popleft().abort()
                continue
            loop = asyncio.get_running_loop()
            if deadline is None:
                deadline = loop.time() + self.connect_timeout
            await self._wait_for_slot(loop, deadline)

    async def _connect(self, deadline: float | None) -> Connection:
        loop = asyncio.get_running_loop()
        timeout = self.connect_timeout if deadline is None else deadline - loop.time()
        conn = Connection(self, self.read_timeout, self.max_head_bytes)
        self.open += 1
        try:
            async with asyncio.timeout(timeout):
                await self._open(loop, conn)
        except TimeoutError:
            conn.abort()
            raise ConnectTimeout(f"connecting to {self.host}:{self.port} timed out") from None
        except OSError as exc:  # refused, DNS (gaierror), TLS (SSLError), reset in handshake
            conn.abort()
            raise ConnectFailed(f"cannot connect to {self.host}:{self.port}: {exc}") from exc
        except BaseException:
            conn.abort()
            raise
        return conn

    async def _open(self, loop: asyncio.AbstractEventLoop, conn: Connection) -> None:
        proxy, tls = self.proxy, self.ssl_context
        if proxy is not None and tls is not None:  # https through a CONNECT tunnel
            transport = await open_tunnel(proxy, self.host, self.port, tls, self.max_head_bytes)
            transport.set_protocol(conn)
            conn.connection_made(transport)
        elif proxy is not None:  # plain http: absolute-form requests to the proxy itself
            await loop.create_connection(lambda: conn, proxy.host, proxy.port)
        else:
            await self._open_direct(loop, conn, tls)

    async def _open_direct(
        self, loop: asyncio.AbstractEventLoop, conn: Connection, tls: ssl.SSLContext | None
    ) -> None:
        """Connect to the host's addresses in turn (as `create_connection` does with a name),
        resolved through the shared cache; TLS verifies the host's name, not the address."""
        failure: OSError | None = None
        for family, address, port in await self.addresses.resolve(self.host, self.port):
            try:
                await loop.create_connection(
                    lambda: conn,
                    address,
                    port,
                    family=family,
                    ssl=tls,
                    server_hostname=self.host if tls is not None else None,
                )
                return
            except ssl.SSLError:
                raise  # the host answered: another of its addresses would not do better
            except OSError as exc:
                failure = exc
        self.addresses.forget(self.host, self.port)
        assert failure is not None
        raise failure

    async def _wait_for_slot(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        waiter: asyncio.Future[bool] = loop.create_future()
        self._waiters.append(waiter)
        timer = loop.call_at(deadline, _expire, waiter)
        try:
            woken = await waiter
        except asyncio.CancelledError:
            if waiter.cancelled():
                self._waiters.remove(waiter)
            elif waiter.result():
                self._wake_one()  # pass on a wake-up this task can no longer use
            raise
        finally:
            timer.cancel()
        if not woken:
            self._waiters.remove(waiter)
            raise ConnectTimeout(
                f"no free connection to {self.host}:{self.port} "
                f"within {self.connect_timeout:g}s (max_connections={self.max_connections})"
            )

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(True)
                return

    def _expired(self, conn: Connection) -> bool:
        return conn.loop.time() - conn.idle_since > self.idle_timeout

    def release(self, conn: Connection) -> None:
        """Keep a connection whose response ended cleanly, unless the pool is full or closed;
        close the idle ones that outlived `idle_timeout` (the oldest are first)."""
        while self.idle and self._expired(self.idle[0]):
            self.idle.popleft().abort()
        if self.closed or len(self.idle) >= self.max_idle:
            conn.abort()
            return
        conn.idle_since = conn.loop.time()
        self.idle.append(conn)
        self._wake_one()

    def discard(self, conn: Connection) -> None:
        """Forget a closed connection and hand its slot to a waiter."""
        conn.counted = False
        self.open -= 1
        if not conn.active and conn in self.idle:
            self.idle.remove(conn)
        self._wake_one()

    def drop_idle(self) -> None:
        """Close every idle connection (after one of them turned out to be stale)."""
        while self.idle:
            self.idle.pop().abort()

    def close(self) -> None:
        """Close the idle connections; waiters and later acquires fail."""
        self.closed = True
        while self.idle:
            self.idle.pop().abort()
        while self._waiters:
            self._wake_one()


def _expire(waiter: asyncio.Future[bool]) -> None:
    if not waiter.done():
        waiter.set_result(False)
