"""The ad engine: decides per response whether an ad may run, chooses it while the answer
streams, and counts what was delivered.

Per request, `stage()` runs cheap synchronous checks (JSON mode, `n > 1`, ad-free keys, the
injection rate, decided once per response) and, when an ad may run, returns the pipeline stage
with an `AdPlan`. The filter starts the plan's choice (guard, caps and budgets from the store,
BM25 relevance) in a task of its own once the answer nears the length an ad needs, after that
text has gone out, so it adds nothing to the first token and short answers never choose. The
filter asks the plan for a block only at safe points and never waits for it mid-answer.
Impressions are counted when the response completes; bookkeeping runs in the background
(`ads.bookkeeping`), and the decisions of responses that end before the store's write starts
share that write (`count_decision`).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import secrets
import time
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

from echo_stream.ads.bookkeeping import Bookkeeper
from echo_stream.ads.filter import NO_AD, AdSplice
from echo_stream.ads.format import render_ad
from echo_stream.ads.guard import SensitiveTopicGuard
from echo_stream.ads.inventory import Ad, load_inventory
from echo_stream.ads.links import BaseUrl, resolve_base_url
from echo_stream.ads.store import (
    DEFAULT_MAX_WINDOW_S,
    PLACED,
    AdStore,
    Impression,
    MemoryAdStore,
    make_ad_store,
)
from echo_stream.ads.targeting import AdSelector, Choice
from echo_stream.events import AdBlock
from echo_stream.ops.record import current_record, key_digest
from echo_stream.protocol import ChatCompletionRequest
from echo_stream.settings import Settings, split_list

log = logging.getLogger(__name__)

CLICK_TTL_S = 30 * 24 * 3600.0
_END_WAIT_S = 0.25
_QUERY_CHARS = 4000


def user_key(request: ChatCompletionRequest, client_key: str | None) -> str:
    """Who frequency caps count for: the `user` field, else a hash of the client key."""
    if request.user:
        return "u:" + request.user
    if client_key:
        return "k:" + key_digest(client_key)[:24]
    return "anonymous"


def conversation_query(request: ChatCompletionRequest) -> str:
    """The user's words, most recent first, that relevance and the guard look at."""
    texts = [m.text() for m in reversed(request.messages) if m.role == "user"]
    return "\n".join(texts)[:_QUERY_CHARS]


class AdEngine:
    """Built once per process from settings; hands each eligible response an `AdPlan`."""

    def __init__(
        self,
        settings: Settings,
        ads: tuple[Ad, ...],
        store: AdStore,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.rng = rng or random.Random(settings.ad_seed)
        self.selector = AdSelector(
            ads, min_relevance=settings.ad_min_relevance, fallback=settings.ad_fallback
        )
        self.guard = SensitiveTopicGuard(
            split_list(settings.ad_sensitive_topics), split_list(settings.ad_sensitive_terms)
        )
        self.budgets = {ad.id: ad.budget for ad in ads if ad.budget is not None}
        self._ad_free = settings.ad_free_key_list()
        # A store in this process writes at once; a remote one overlaps a few round trips.
        self._bookkeeper = Bookkeeper(drainers=1 if isinstance(store, MemoryAdStore) else 8)
        self._decisions: dict[str, int] = {}  # counted, not yet handed to the store's write
        self._decision_write: Coroutine[Any, Any, None] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> AdEngine:
        """Load the inventory (raises `InventoryError` for a bad file) and connect the store."""
        store = make_ad_store(
            settings.redis_url,
            prefix=settings.redis_key_prefix + "ads:",
            max_window_s=max(DEFAULT_MAX_WINDOW_S, settings.ad_cap_window_seconds),
            track_clicks=settings.ad_track_clicks,
            timeout=settings.redis_timeout,
            max_click_targets=settings.ad_max_click_targets,
            max_users=settings.ad_max_tracked_users,
        )
        return cls(settings, load_inventory(settings.ads_file), store)

    def stage(
        self, request: ChatCompletionRequest, client_key: str | None, base_url: BaseUrl
    ) -> AdSplice | None:
        """The ad stage for this response, or None (its reason recorded) when it gets no ad."""
        reason = self._ineligible(request, client_key)
        if reason is None and self.rng.random() >= self.settings.ad_injection_rate:
            reason = "rate"
        if reason is not None:
            _note_decision(reason, 0)
            self.count_decision(reason)
            return None
        plan = AdPlan(self, request, user_key(request, client_key), base_url)
        settings = self.settings
        # With tools on offer the answer may turn into tool calls after some text; waiting for
        # the end is the only way to know that it did not, so no ad lands in a tool-call answer.
        may_call_tools = bool(request.tools) and request.tool_choice != "none"
        placement = "end" if may_call_tools else settings.ad_placement

        return AdSplice(
            plan,
            min_chars=settings.min_response_length,
            max_ads=settings.ad_max_per_response,
            placement=placement,
        )

    def _ineligible(self, request: ChatCompletionRequest, client_key: str | None) -> str | None:
        if self.settings.ad_max_per_response == 0:
            return "disabled"
        if (request.n or 1) > 1:
            return "multiple_choices"
        if (request.response_format or {}).get("type") in ("json_object", "json_schema"):
            return "json_output"
        if client_key is not None and client_key in self._ad_free:
            return "ad_free_key"
        return None

    def count_decision(self, outcome: str) -> None:
        """Count one response's decision in the store. Decisions made before the store's write
        starts share it (one write per outcome), which keeps a task and a store call per
        response off the response path."""
        decisions = self._decisions
        decisions[outcome] = decisions.get(outcome, 0) + 1
        write = self._decision_write
        # A queued write that has not started takes this count too; one that has started
        # (it took the counts before its first await), ended or was dropped does not.
        if write is None or inspect.getcoroutinestate(write) != inspect.CORO_CREATED:
            self._decision_write = write = self._write_decisions()
            self.background(write)

    async def _write_decisions(self) -> None:
        decisions, self._decisions = self._decisions, {}
        for outcome, count in decisions.items():
            await self.store.record_decision(outcome, count)

    def background(self, work: Coroutine[Any, Any, None]) -> None:
        """Run store bookkeeping off the response path (`ads.bookkeeping`)."""
        self._bookkeeper.add(work)

    async def settled(self) -> None:
        """Return once the bookkeeping queued so far has been written."""
        await self._bookkeeper.settled()

    async def aclose(self) -> None:
        """Let pending bookkeeping finish, then close the store."""
        await self._bookkeeper.aclose()
        await self.store.close()


def _note_decision(outcome: str, impressions: int) -> None:
    """Put the decision on the request's record, for its log line and the metrics."""
    if (record := current_record()) is not None:
        record.ad = "placed" if outcome == PLACED else "none"
        record.ad_reason = None if outcome == PLACED else outcome
        record.ad_impressions = impressions


class AdPlan:
    """One response's ads: chosen while the answer streams, rendered on demand, counted at
    the end."""

    def __init__(
        self, engine: AdEngine, request: ChatCompletionRequest, user: str, base_url: BaseUrl
    ) -> None:
        self._engine = engine
        self._request = request
        self._user = user
        self._base_url = base_url
        self._task: asyncio.Task[list[Choice] | str] | None = None
        self._delivered: list[Impression] = []

    def start(self) -> None:
        """Begin choosing now, concurrently with the rest of the answer (`splice_ads` calls it
        once the answer is long enough that it may get an ad)."""
        if self._task is None:
            self._task = asyncio.ensure_future(self._choose())

    async def _choose(self) -> list[Choice] | str:
        try:
            return await self._choose_ads()
        except Exception:
            log.exception("choosing an ad failed")
            return "store_error"

    async def _choose_ads(self) -> list[Choice] | str:
        engine, settings = self._engine, self._engine.settings
        query = conversation_query(self._request)
        if engine.guard.check(query) is not None:
            return "sensitive_topic"
        exclude: set[str] = set()
        if settings.ad_cap_per_window or settings.ad_no_repeat:
            recent = await engine.store.recent_ads(
                self._user, settings.ad_cap_window_seconds, time.time()
            )
            if settings.ad_cap_per_window and len(recent) >= settings.ad_cap_per_window:
                return "frequency_cap"
            if settings.ad_no_repeat:
                exclude.update(recent)
        exhausted = await engine.store.exhausted(engine.budgets) if engine.budgets else set()
        now = datetime.now(UTC)
        choices: list[Choice] = []
        for _ in range(settings.ad_max_per_response):
            choice = engine.selector.choose(
                query, now=now, rng=engine.rng, exclude=exclude, exhausted=exhausted
            )
            if isinstance(choice, str):
                return choices or choice
            choices.append(choice)
            exclude.add(choice.ad.id)
        return choices

    def ready(self) -> AdBlock | None:
        """The next ad block if the choice is done; never waits."""
        if self._task is None or not self._task.done() or self._task.cancelled():
            return None
        return self._next_block()

    def pending(self) -> bool:
        """False once the choice has settled with nothing (more) to serve."""
        task = self._task
        if task is None or not task.done():
            return True
        if task.cancelled():
            return False
        result = task.result()
        return not isinstance(result, str) and len(self._delivered) < len(result)

    async def wait(self) -> AdBlock | None:
        """The next ad block, giving a still-running choice a moment to finish."""
        self.start()
        assert self._task is not None
        if not self._task.done():
            await asyncio.wait((self._task,), timeout=_END_WAIT_S)
        return self.ready()

    def _next_block(self) -> AdBlock | None:
        assert self._task is not None
        choices = self._task.result()
        if isinstance(choices, str) or len(self._delivered) >= len(choices):
            return None
        ad = choices[len(self._delivered)].ad
        impression = Impression(secrets.token_urlsafe(16), ad.id, self._user, ad.url, time.time())
        self._delivered.append(impression)
        settings = self._engine.settings
        link = ad.url
        if settings.ad_track_clicks:
            base = settings.public_base_url or resolve_base_url(self._base_url)
            base = base.rstrip("/")
            link = f"{base}/v1/ads/click/{impression.id}"
        return AdBlock(
            render_ad(ad, settings.ad_format, link),
            ad_id=ad.id,
            advertiser=ad.advertiser,
            title=ad.title,
            body=ad.body,
            url=link,
        )

    def finish(self, outcome: str, placed: int) -> None:
        """Record the response's outcome; count impressions only for a completed response."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
        if outcome == NO_AD:
            outcome = self._reason()
        engine = self._engine
        delivered = list(self._delivered) if outcome == PLACED else []
        _note_decision(outcome, len(delivered))
        if delivered:
            engine.background(_record_impressions(engine.store, delivered))
        engine.count_decision(outcome)

    def _reason(self) -> str:
        task = self._task
        if task is None or not task.done() or task.cancelled():
            return "not_ready"
        result = task.result()
        return result if isinstance(result, str) else "not_ready"


async def _record_impressions(store: AdStore, delivered: list[Impression]) -> None:
    for impression in delivered:
        await store.record_impression(impression, click_ttl_s=CLICK_TTL_S)
