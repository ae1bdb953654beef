"""`RedisSessionStore`: sessions shared by every worker and replica, the log as a Redis stream.

Key layout, under the store's prefix (default "echo:session:"):

    {prefix}{id}       hash    data (the session's JSON), start ("run" | "expired"),
                               callback (the idempotency record), end (the last event's id)
    {prefix}{id}:log   stream  one entry per event: field `t` (a piece of text) or `end` (JSON)

Event ids are the stream's entry ids, so `Last-Event-ID` is an XREAD position: a reconnecting
viewer gets exactly the entries after it, with no gap and no duplicate, from any process. Both
keys carry the same TTL; the scripts keep it so (a stream created by XADD inherits the hash's).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

import orjson
from redis.asyncio import Redis

from echo_stream.redis_client import open_redis
from echo_stream.sessions.models import LogEntry, Session, SessionView

# KEYS[1] hash, KEYS[2] log. ARGV field, value, ttl ms. 1 when this caller set the field.
_CLAIM = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
local ttl = tonumber(ARGV[3])
if redis.call('PTTL', KEYS[1]) < ttl then
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
end
return 1
"""

# KEYS[1] hash, KEYS[2] log. ARGV token hash, ttl ms. {data, start, end, won}: claims `start`
# only for the right token, on a session neither started nor finished.
_ATTACH = """
local found = redis.call('HMGET', KEYS[1], 'data', 'start', 'end', 'token')
if not found[1] then return {false, false, false, 0} end
local won = 0
if not found[2] and not found[3] and found[4] == ARGV[1] then
  redis.call('HSET', KEYS[1], 'start', 'run')
  local ttl = tonumber(ARGV[2])
  if redis.call('PTTL', KEYS[1]) < ttl then
    redis.call('PEXPIRE', KEYS[1], ttl)
    redis.call('PEXPIRE', KEYS[2], ttl)
  end
  won = 1
end
return {found[1], found[2], found[3], won}
"""

# KEYS[1] hash, KEYS[2] log. ARGV text. The entry id, or false when the session is gone.
_APPEND = """
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then return false end
local id = redis.call('XADD', KEYS[2], '*', 't', ARGV[1])
if redis.call('PTTL', KEYS[2]) == -1 then redis.call('PEXPIRE', KEYS[2], ttl) end
return id
"""

# KEYS[1] hash, KEYS[2] log. ARGV[1] the JSON array [id1, text1, id2, text2...] (one argument,
# not two per entry: redis-py encodes each argument in Python, ~1 µs apiece). 1, or false when
# the session is gone.
_APPEND_MANY = """
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then return false end
local pieces = cjson.decode(ARGV[1])
for i = 1, #pieces, 2 do redis.call('XADD', KEYS[2], pieces[i], 't', pieces[i + 1]) end
if redis.call('PTTL', KEYS[2]) == -1 then redis.call('PEXPIRE', KEYS[2], ttl) end
return 1
"""

# KEYS[1] hash, KEYS[2] log. ARGV end JSON, ttl ms, entry id ('*' for a new one), "1" to also
# claim the callback, then the pieces still to write before the end (as `_APPEND_MANY`'s).
# {the end's entry id, 1 when this call claimed the callback}, or false when gone.
_FINISH = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local pieces = cjson.decode(ARGV[5])
for i = 1, #pieces, 2 do redis.call('XADD', KEYS[2], pieces[i], 't', pieces[i + 1]) end
local id = redis.call('XADD', KEYS[2], ARGV[3], 'end', ARGV[1])
redis.call('HSET', KEYS[1], 'end', id)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
local claimed = 0
if ARGV[4] == '1' then claimed = redis.call('HSETNX', KEYS[1], 'callback', 'claimed') end
return {id, claimed}
"""

# KEYS[1] hash. ARGV data, token hash, ttl ms.
_CREATE = """
redis.call('HSET', KEYS[1], 'data', ARGV[1], 'token', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""

_EVENT_ID = re.compile(r"\d{1,20}-\d{1,20}")


def _pieces(entries: Iterable[tuple[str, str]]) -> bytes:
    """`[id1, text1, id2, text2, ...]` as JSON, for the scripts that write pieces."""
    return orjson.dumps([part for entry in entries for part in entry])


def _ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


class RedisSessionStore:
    """A `SessionStore` in Redis, so any process can serve, resume and finish any session."""

    def __init__(self, client: Redis, *, prefix: str = "echo:session:") -> None:
        self._redis = client
        self._prefix = prefix
        self._claim = client.register_script(_CLAIM)
        self._attach = client.register_script(_ATTACH)
        self._append = client.register_script(_APPEND)
        self._append_many = client.register_script(_APPEND_MANY)
        self._finish = client.register_script(_FINISH)
        self._create = client.register_script(_CREATE)

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = "echo:session:",
        timeout: float = 1.0,
        longest_wait: float = 15.0,
    ) -> RedisSessionStore:
        """A store on its own connection pool (blocking reads hold a connection each); a read
        may block for `longest_wait` (the keep-alive interval), everything else `timeout`."""
        client = open_redis(url, timeout=timeout, read_timeout=longest_wait + timeout)
        return cls(client, prefix=prefix)

    def _keys(self, session_id: str) -> list[str]:
        key = self._prefix + session_id
        return [key, key + ":log"]

    async def create(self, session: Session, ttl: float) -> None:
        """Store a new session, kept for `ttl` seconds unless claimed."""
        # One script rather than a MULTI/EXEC pipeline: as atomic, a quarter cheaper here.
        args: list[str | int] = [session.dumps().decode(), session.token_hash, _ms(ttl)]
        await self._create(keys=[self._prefix + session.id], args=args)

    async def view(self, session_id: str) -> SessionView | None:
        """The session and its progress; None when unknown or expired."""
        data, start, end = await self._redis.hmget(
            self._keys(session_id)[0], "data", "start", "end"
        )
        if data is None:
            return None
        return SessionView(Session.loads(data), str(start) if start else None, end is not None)

    async def claim(self, session_id: str, name: str, value: str, ttl: float) -> bool:
        """Set the record's `name` to `value` unless set before; on success keep it `ttl` s."""
        won = await self._claim(keys=self._keys(session_id), args=[name, value, _ms(ttl)])
        return bool(won)

    async def attach(
        self, session_id: str, token_hash: str, ttl: float
    ) -> tuple[SessionView | None, bool]:
        """The view, and whether this call claimed `start` (see `SessionStore.attach`)."""
        reply: Any = await self._attach(keys=self._keys(session_id), args=[token_hash, _ms(ttl)])
        data, start, end, won = reply
        if data is None:
            return None, False
        view = SessionView(Session.loads(data), str(start) if start else None, end is not None)
        return view, bool(won)

    async def append(self, session_id: str, text: str) -> str:
        """Add a piece of the answer to the log; returns its event id."""
        entry_id = await self._append(keys=self._keys(session_id), args=[text])
        if entry_id is None:
            raise KeyError(session_id)
        return str(entry_id)

    async def append_many(self, session_id: str, entries: list[tuple[str, str]]) -> None:
        """Add pieces under ids the caller chose (increasing), in one round trip."""
        if not await self._append_many(keys=self._keys(session_id), args=[_pieces(entries)]):
            raise KeyError(session_id)

    async def finish(self, session_id: str, end: dict[str, Any], ttl: float) -> str:
        """Add the last entry (the outcome), mark the session finished, keep it `ttl` s more."""
        entry_id, _claimed = await self.write_end(session_id, end, ttl)
        if entry_id is None:
            raise KeyError(session_id)
        return entry_id

    async def conclude(self, session_id: str, end: dict[str, Any], ttl: float) -> bool:
        """`finish`, then `claim` the callback, in one round trip: True when this caller is
        to send it."""
        return (await self.write_end(session_id, end, ttl, claim=True))[1]

    async def write_end(
        self,
        session_id: str,
        end: dict[str, Any],
        ttl: float,
        entry_id: str = "*",
        pending: list[tuple[str, str]] | None = None,
        *,
        claim: bool = False,
    ) -> tuple[str | None, bool]:
        """Write `pending` (as `append_many`), the end, and with `claim` claim the callback,
        in one round trip: (the end's id, whether this call claimed), (None, False) if gone."""
        args: list[bytes | str | int] = [
            orjson.dumps(end),
            _ms(ttl),
            entry_id,
            int(claim),
            _pieces(pending or ()),
        ]
        reply: Any = await self._finish(keys=self._keys(session_id), args=args)
        if reply is None:
            return None, False
        return str(reply[0]), bool(reply[1])

    async def read(self, session_id: str, after: str | None, wait: float) -> list[LogEntry]:
        """Entries after event id `after` (all when None), waiting up to `wait` s for one."""
        log = self._keys(session_id)[1]
        # BLOCK 0 would mean "forever": without a wait, read without blocking.
        block = _ms(wait) if wait > 0 else None
        reply: Any = await self._redis.xread({log: after or "0-0"}, block=block)
        entries: list[LogEntry] = []
        for _stream, items in reply or ():
            for entry_id, fields in items:
                end = fields.get("end")
                text = fields.get("t", "")
                entries.append(LogEntry(entry_id, text, orjson.loads(end) if end else None))
        return entries

    def valid_event_id(self, value: str) -> bool:
        """Whether `value` has the shape of a Redis stream id (a `Last-Event-ID`)."""
        return _EVENT_ID.fullmatch(value) is not None

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._redis.aclose()
