"""Session streams end to end: open, attach, follow, generate once, call back once.

When generation starts: at the FIRST ATTACH, not at init. A session nobody watches costs no
provider tokens; the process that wins the store's `start` claim runs the generation as its own
task, independent of any viewer connection. A viewer that drops (briefly or for good) changes
nothing: the answer keeps being written to the session's log, and a reconnect with
`Last-Event-ID` (to any process, with Redis) gets the rest with no gap and no duplicate. A session
nobody attaches to within `STREAM_SESSION_TTL` is cancelled: the process that created it claims
`start` as "expired" just before the TTL runs out and calls back with status `expired`.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import deque
from collections.abc import AsyncGenerator, Callable
from typing import Any

from echo_stream.errors import EchoError, InvalidRequest, NotFound, Unauthorized
from echo_stream.events import EventStream
from echo_stream.providers.transport.fastclient import FastClient
from echo_stream.sessions.answer import Answer, LogWriter
from echo_stream.sessions.callback import CallbackPolicy, callback_client, deliver
from echo_stream.sessions.feed import Push
from echo_stream.sessions.live import BatchingWriter, LiveLog
from echo_stream.sessions.models import JsonId, LogEntry, Session
from echo_stream.sessions.redis_store import RedisSessionStore
from echo_stream.sessions.store import MemorySessionStore, SessionStore
from echo_stream.sessions.tokens import JwtVerifier, hash_token, hashes_match, new_stream_token
from echo_stream.settings import Settings

log = logging.getLogger(__name__)

Starter = Callable[[Session], tuple[str, str, EventStream]]
"""Starts a session's answer through the one pipeline: (provider, upstream model, events)."""


class NotConfigured(EchoError):
    status = 503
    type = "server_error"
    code = "sessions_not_configured"


class SessionService:
    """The session streams of one gateway process (its store may be shared with others)."""

    def __init__(
        self,
        store: SessionStore,
        verifier: JwtVerifier | None,
        policy: CallbackPolicy,
        *,
        ttl: float,
        max_seconds: float,
        keepalive: float,
    ) -> None:
        self.store = store
        self.verifier = verifier
        self.policy = policy
        self.ttl = ttl
        self.max_seconds = max_seconds
        self.keepalive = keepalive
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: FastClient | None = None
        self._live: dict[str, LiveLog] = {}
        """Sessions generating in this process, for viewers here (with a shared store)."""
        self._expiry: dict[str, Session] = {}
        """Sessions created here and not yet started here: the TTL watch (`_watch`)."""
        self._due: deque[tuple[float, str]] = deque()
        """(when to expire, id) of `_expiry`'s sessions, in creation order, so in time order."""
        self._due_timer: asyncio.TimerHandle | None = None
        # Just before the store would drop the session, so it is still there to end properly;
        # the timer may fire up to a quarter of that margin late, to batch its work.
        self._expire_after = max(ttl * 0.9, ttl - 1.0)
        self._due_slack = (ttl - self._expire_after) / 4

    @classmethod
    def from_settings(cls, settings: Settings) -> SessionService:
        """Redis-backed when `REDIS_URL` is set, in memory otherwise."""
        store: SessionStore
        if settings.redis_url:
            prefix = settings.redis_key_prefix + "session:"
            store = RedisSessionStore.from_url(
                settings.redis_url,
                prefix=prefix,
                timeout=settings.redis_timeout,
                longest_wait=settings.stream_keepalive_seconds,
            )
        else:
            store = MemorySessionStore()
            if settings.workers > 1 and settings.jwt_secret is not None:
                log.warning(
                    "session streams keep sessions in memory: with WORKERS=%d a stream may land "
                    "on a worker that does not know it; set REDIS_URL",
                    settings.workers,
                )
        return cls(
            store,
            JwtVerifier.from_settings(settings),
            CallbackPolicy.from_settings(settings),
            ttl=settings.stream_session_ttl,
            max_seconds=settings.stream_max_seconds,
            keepalive=settings.stream_keepalive_seconds,
        )

    @classmethod
    def disabled(cls) -> SessionService:
        """A service that refuses every `/init-stream` (no JWT key): for states built by hand."""
        policy = CallbackPolicy(origins=frozenset(), private_hosts=frozenset())
        return cls(MemorySessionStore(), None, policy, ttl=60, max_seconds=600, keepalive=15)

    def _spawn(self, work: Any) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def verify(self, token: str | None) -> dict[str, Any]:
        """The `n8nToken`'s claims; 401 when missing, bad or expired, 503 when not configured."""
        if self.verifier is None:
            raise NotConfigured("Session streams are off: set JWT_SECRET (or JWT_PUBLIC_KEY)")
        return self.verifier.verify(token)

    async def open(
        self,
        claims: dict[str, Any],
        *,
        resume_url: str,
        prompt: str,
        model: str,
        max_tokens: int,
        user_id: JsonId,
        chat_id: JsonId,
    ) -> tuple[str, str]:
        """Check resumeUrl, store a new session; returns (session id, stream token)."""
        bound = self.verifier.resume_url_of(claims) if self.verifier else None
        self.policy.check_shape(resume_url, bound)
        await self.policy.check_address(resume_url)
        stream_token = new_stream_token()
        session = Session(
            id=secrets.token_urlsafe(16),
            token_hash=hash_token(stream_token),
            prompt=prompt,
            model=model,
            max_tokens=max_tokens,
            resume_url=resume_url,
            user_id=user_id,
            chat_id=chat_id,
            created_at=time.time(),
        )
        await self.store.create(session, self.ttl)
        self._watch(session)
        return session.id, stream_token

    async def attach(
        self,
        session_id: str,
        token: str | None,
        last_event_id: str | None,
        starter: Starter,
        push: Push | None = None,
    ) -> AsyncGenerator[LogEntry | None, None] | None:
        """Check the viewer, start generation on the first attach; None when nothing is left.
        `push` writes straight to the viewer's connection, if the server offers that."""
        if last_event_id is not None and not self.store.valid_event_id(last_event_id):
            raise InvalidRequest("Malformed Last-Event-ID", param="Last-Event-ID")
        claim_ttl = self.ttl + self.max_seconds + 5
        presented = hash_token(token or "")
        view, won = await self.store.attach(session_id, presented, claim_ttl)
        if view is None:
            raise NotFound("No such stream (unknown or expired)")
        if token is None or not hashes_match(presented, view.session.token_hash):
            raise Unauthorized("Wrong access_token for this stream", code="invalid_token")
        if view.finished and (
            last_event_id is None or not await self.store.read(session_id, last_event_id, 0)
        ):
            return None
        if won:
            self._expiry.pop(session_id, None)
            if not isinstance(self.store, MemorySessionStore):
                # Before this viewer's first read, so it is fed from memory from the start.
                self._live[session_id] = LiveLog()
            self._spawn(self._generate(view.session, starter))
        return self.follow(session_id, last_event_id, push)

    def follow(
        self, session_id: str, after: str | None, push: Push | None = None
    ) -> AsyncGenerator[LogEntry | None, None]:
        """The log's entries after `after` as they come; None when idle for `keepalive` s.
        Generated in this process, they are pushed to a caught-up viewer with `push`."""
        live = self._live.get(session_id)
        if live is not None and live.knows(after):
            return live.follow(after, self.keepalive, push)
        if isinstance(self.store, MemorySessionStore):
            return self.store.follow(session_id, after, self.keepalive, push)
        return self._read(session_id, after)

    async def _read(
        self, session_id: str, after: str | None
    ) -> AsyncGenerator[LogEntry | None, None]:
        """`follow` from the store (a session generating in another process, or done)."""
        while True:
            entries = await self.store.read(session_id, after, self.keepalive)
            if not entries:
                if await self.store.view(session_id) is None:
                    return
                yield None
                continue
            for entry in entries:
                yield entry
                if entry.end is not None:
                    return
            after = entries[-1].id

    def _watch(self, session: Session) -> None:
        """Expire `session` unless this process starts it first: one timer for all sessions,
        since they expire in the order they were created (a task each would cost more)."""
        loop = asyncio.get_running_loop()
        self._expiry[session.id] = session
        due = self._due
        while due and due[0][1] not in self._expiry:  # started meanwhile
            due.popleft()
        due.append((loop.time() + self._expire_after, session.id))
        if self._due_timer is None:
            self._due_timer = loop.call_at(due[0][0], self._expire_due)

    def _expire_due(self) -> None:
        loop = asyncio.get_running_loop()
        now, due = loop.time(), self._due
        while due and (due[0][0] <= now or due[0][1] not in self._expiry):
            if (session := self._expiry.pop(due.popleft()[1], None)) is not None:
                self._spawn(self._expire(session))
        self._due_timer = None
        if due:
            self._due_timer = loop.call_at(max(due[0][0], now + self._due_slack), self._expire_due)

    async def _expire(self, session: Session) -> None:
        """Nobody attached within the TTL: end the session, and call back, as `expired`."""
        if await self.store.claim(session.id, "start", "expired", self.ttl):
            await self._conclude(
                session,
                Answer(),
                "expired",
                "nobody attached within the TTL",
                ("", session.model),
                self.store,
            )

    async def _generate(self, session: Session, starter: Starter) -> None:
        writer: LogWriter = self.store
        live = self._live.get(session.id)
        if live is not None and isinstance(self.store, RedisSessionStore):
            writer = BatchingWriter(self.store, live)
        try:
            await self._run(session, starter, writer)
        finally:
            if live is not None:
                live.close()
                self._live.pop(session.id, None)

    async def _run(self, session: Session, starter: Starter, writer: LogWriter) -> None:
        answer = Answer()
        status, error, where = "complete", None, ("", session.model)
        try:
            async with asyncio.timeout(self.max_seconds):
                provider, upstream_model, events = starter(session)
                where = (provider, upstream_model)
                await answer.record(writer, session.id, events)
        except TimeoutError:
            status, error = "timeout", f"generation ran longer than {self.max_seconds:g} s"
        except EchoError as exc:
            status, error = "error", exc.message
        except KeyError:
            status, error = "lost", "the session expired during generation"
        except asyncio.CancelledError:
            status, error = "cancelled", "the gateway shut down during generation"
        except Exception:
            log.exception("session generation failed")
            status, error = "error", "internal error"
        await self._conclude(session, answer, status, error, where, writer)

    async def _conclude(
        self,
        session: Session,
        answer: Answer,
        status: str,
        error: str | None,
        where: tuple[str, str],
        writer: LogWriter,
    ) -> None:
        end = {"status": status, "error": error}
        if not await writer.conclude(session.id, end, self.ttl):
            return  # gone, or another process calls back
        input_tokens, output_tokens, estimated = answer.token_counts(session.prompt)
        payload = {
            "userId": session.user_id,
            "chatId": session.chat_id,
            "prompt": session.prompt,
            "answer": answer.text,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "tokens_estimated": estimated,
            "status": status,
            "error": error,
            "finish_reason": answer.finish_reason,
            "streamId": session.id,
            "model": session.model,
            "provider": where[0],
            "upstream_model": where[1],
            "ads": answer.ads,
        }
        if self._client is None:
            self._client = callback_client(self.policy)
        outcome = await deliver(self.policy, self._client, session.resume_url, payload)
        log.info("session %s ended %s; callback %s", session.id, status, outcome)

    async def aclose(self, grace: float = 5.0) -> None:
        """Cancel running generations (they still call back, within `grace` s), then close."""
        if self._due_timer is not None:
            self._due_timer.cancel()
            self._due_timer = None
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            _done, pending = await asyncio.wait(tasks, timeout=grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
        await self.store.aclose()
