"""Per-key limits: requests and tokens per minute, per client key and optionally per user.

Requests are counted as they arrive; tokens once an answer has reported its usage, so a
request is refused when the minute's tokens are already spent (as OpenAI does). Over a limit
the client gets OpenAI's 429 (`type` "requests" or "tokens", code `rate_limit_exceeded`) with
`Retry-After` and the `x-ratelimit-*` headers OpenAI sends; answers under a limit carry the
same headers.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from redis.exceptions import RedisError

from echo_stream.errors import EchoError
from echo_stream.ops.counters import WindowCounters, window_reset_s
from echo_stream.ops.keys import KeyLimits, KeyTable

log = logging.getLogger(__name__)

WINDOW_S = 60


class KeyRateLimited(EchoError):
    """The client key (or user) went over its own limit; not the provider's 429."""

    status = 429
    code = "rate_limit_exceeded"


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose counters to use: a key's, or one user's within a key."""

    counter: str
    label: str
    rpm: int | None
    tpm: int | None


def _scopes(limits: KeyLimits, client_key_id: str | None, user: str | None) -> list[Scope]:
    who = client_key_id or "anonymous"
    scopes = [Scope(who, f"key {limits.name}", limits.rpm, limits.tpm)]
    if user and (limits.user_rpm or limits.user_tpm):
        label = f"user {user[:64]!r} of key {limits.name}"
        scopes.append(Scope(f"{who}:u:{user[:256]}", label, limits.user_rpm, limits.user_tpm))
    return scopes


def _duration(seconds: float) -> str:
    """OpenAI's reset format: `1s`, `6m0s`, `120ms`."""
    if seconds < 1:
        return f"{max(int(seconds * 1000), 1)}ms"
    whole = math.ceil(seconds)
    return f"{whole // 60}m{whole % 60}s" if whole >= 60 else f"{whole}s"


class Limiter:
    """Checks and counts requests and tokens against the key table."""

    def __init__(self, table: KeyTable, counters: WindowCounters) -> None:
        self.table = table
        self.counters = counters

    async def admit(self, client_key_id: str | None, user: str | None) -> list[tuple[bytes, bytes]]:
        """Count one request; raise `KeyRateLimited` over a limit, else return the headers.

        With the counters' store down the request is admitted (and the failure logged): chat
        keeps working through a Redis outage, unmetered, rather than failing with it.
        """
        limits = self.table.lookup(client_key_id)
        if limits is None:
            return []
        try:
            return await self._admit(limits, client_key_id, user)
        except (RedisError, OSError, TimeoutError) as exc:
            log.warning("key limits not checked, the counters' store failed: %r", exc)
            return []

    async def _admit(
        self, limits: KeyLimits, client_key_id: str | None, user: str | None
    ) -> list[tuple[bytes, bytes]]:
        reset = window_reset_s(WINDOW_S)
        headers: list[tuple[bytes, bytes]] = []
        for scope in _scopes(limits, client_key_id, user):
            if scope.rpm is not None:
                used = await self.counters.add("rpm:" + scope.counter, 1, WINDOW_S)
                if used > scope.rpm:
                    raise _refusal("requests", scope.label, scope.rpm, used, reset)
                if not headers:
                    headers += _headers("requests", scope.rpm, scope.rpm - used, reset)
            if scope.tpm is not None:
                spent = await self.counters.get("tpm:" + scope.counter, WINDOW_S)
                if spent >= scope.tpm:
                    raise _refusal("tokens", scope.label, scope.tpm, spent, reset)
                if len(headers) < 6:
                    headers += _headers("tokens", scope.tpm, scope.tpm - spent, reset)
        return headers

    async def spend(self, client_key_id: str | None, user: str | None, tokens: int) -> None:
        """Count the tokens an answer used against its key's (and user's) minute."""
        limits = self.table.lookup(client_key_id)
        if limits is None or tokens <= 0:
            return
        for scope in _scopes(limits, client_key_id, user):
            if scope.tpm is not None:
                await self.counters.add("tpm:" + scope.counter, tokens, WINDOW_S)


def _headers(kind: str, limit: int, remaining: int, reset: float) -> list[tuple[bytes, bytes]]:
    return [
        (f"x-ratelimit-limit-{kind}".encode(), str(limit).encode()),
        (f"x-ratelimit-remaining-{kind}".encode(), str(max(remaining, 0)).encode()),
        (f"x-ratelimit-reset-{kind}".encode(), _duration(reset).encode()),
    ]


def _refusal(kind: str, label: str, limit: int, used: int, reset: float) -> KeyRateLimited:
    unit = "requests per min (RPM)" if kind == "requests" else "tokens per min (TPM)"
    wait = math.ceil(reset)
    error = KeyRateLimited(
        f"Rate limit reached for {label} on {unit}: Limit {limit}, Used {used}. "
        f"Please try again in {wait}s.",
        headers={
            "Retry-After": str(wait),
            **{k.decode(): v.decode() for k, v in _headers(kind, limit, limit - used, reset)},
        },
    )
    error.type = kind
    return error
