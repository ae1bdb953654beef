"""The ad engine's shared state: delivery log, counters, frequency caps and budgets.

`AdStore` is the one interface the ad engine talks to. `MemoryAdStore` keeps everything in this
process and is the default; `RedisAdStore` (in `redis_store`) keeps it in Redis so that several
workers and replicas share caps, budgets and click resolution. `make_ad_store` picks one from the
`REDIS_URL` setting.

Times are unix seconds supplied by the caller (`Impression.at`, the `now` of `recent_ads`), so the
placement logic stays deterministic under test; only click expiry runs on the store's own clock.

Memory is bounded whatever the traffic: click targets are kept only when click tracking is on,
at most `max_click_targets` of them (oldest dropped first) and never past their TTL; delivery
logs are kept for at most `max_users` users (least recently served dropped first), each at most
`max_log_entries` long and never past `max_window_s`.
"""

from __future__ import annotations

import time
from bisect import bisect_right, insort
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from echo_stream.ads.timeline import RETENTION_S, TimelinePoint, bucket_of, buckets_until

PLACED = "placed"
"""The decision outcome of a response that got an ad; every other outcome names why it did not."""

DEFAULT_MAX_WINDOW_S = 24 * 60 * 60.0
"""How long a user's delivery log is kept: the longest window `recent_ads` may be asked about."""
DEFAULT_MAX_CLICK_TARGETS = 100_000
DEFAULT_MAX_USERS = 100_000
DEFAULT_MAX_LOG_ENTRIES = 1_000


@dataclass(frozen=True, slots=True)
class Impression:
    """One delivered ad, as recorded for caps, budgets and the click redirect."""

    id: str
    """Unguessable (`secrets.token_urlsafe(16)`, made by the caller); the click URL carries it."""
    ad_id: str
    user_key: str
    """The OpenAI `user` field, else a hash of the client key, else "anonymous"."""
    url: str
    """The advertiser URL the click redirect goes to."""
    at: float
    """Unix time of delivery."""


@dataclass(frozen=True, slots=True)
class AdCounters:
    """Delivery counters of one ad."""

    impressions: int = 0
    clicks: int = 0

    @property
    def ctr(self) -> float:
        """Click-through rate: clicks per impression, 0.0 before the first impression."""
        return self.clicks / self.impressions if self.impressions else 0.0


@dataclass(frozen=True)
class AdStats:
    """A snapshot of every ad's counters and of the per-response placement decisions."""

    ads: dict[str, AdCounters]
    decisions: dict[str, int]
    """Outcome ("placed" or the reason no ad was placed) -> number of responses."""

    @property
    def responses(self) -> int:
        """How many responses had an ad decision recorded."""
        return sum(self.decisions.values())

    @property
    def fill_rate(self) -> float:
        """Share of responses that got an ad, 0.0 before the first decision."""
        total = self.responses
        return self.decisions.get(PLACED, 0) / total if total else 0.0

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready view, with ads and outcomes in a stable (sorted) order."""
        return {
            "ads": {
                ad_id: {"impressions": c.impressions, "clicks": c.clicks, "ctr": c.ctr}
                for ad_id, c in sorted(self.ads.items())
            },
            "decisions": dict(sorted(self.decisions.items())),
            "fill_rate": self.fill_rate,
            "responses": self.responses,
        }


class AdStore(Protocol):
    """Shared ad state. Every method is one round trip at most for a networked store."""

    async def recent_ads(self, user_key: str, window_s: float, now: float) -> list[str]:
        """Ad ids delivered to this user in the `window_s` seconds before `now`, newest last.

        Repeats are kept, so callers can enforce both "at most N ads per window" and "no repeat of
        the same ad within a window". An ad delivered exactly `window_s` ago is outside the window.
        """
        ...

    async def record_impression(self, imp: Impression, *, click_ttl_s: float) -> None:
        """Count a delivered ad, log it for its user, keep its click target for `click_ttl_s`."""
        ...

    async def record_click(self, impression_id: str) -> str | None:
        """The advertiser URL of an impression, counting one click the first time; None if unknown.

        Repeated clicks on the same impression still resolve but are not counted again; an
        impression older than its click TTL is unknown.
        """
        ...

    async def impressions(self, ad_id: str) -> int:
        """How many times this ad has been delivered."""
        ...

    async def exhausted(self, budgets: Mapping[str, int]) -> set[str]:
        """The ad ids of `budgets` (ad id -> impression budget) whose impressions reached it."""
        ...

    async def record_decision(self, outcome: str, count: int = 1) -> None:
        """Count `count` responses' ad decision: `PLACED` or the reason no ad was placed."""
        ...

    async def stats(self) -> AdStats:
        """A snapshot of all counters."""
        ...

    async def timeline(self, minutes: int, now: float) -> list[TimelinePoint]:
        """The per-minute counters of the last `minutes` minutes up to `now`, oldest first.

        Impressions count in the minute of their delivery (`Impression.at`); decisions and clicks
        in the minute the store recorded them.
        """
        ...

    async def reset(self) -> None:
        """Forget everything this store holds (and nothing else sharing its backend)."""
        ...

    async def close(self) -> None:
        """Release connections; the store is unusable afterwards."""
        ...

    async def ping(self) -> bool:
        """Whether the store answers, within a bounded time (for readiness checks)."""
        ...


@dataclass(slots=True)
class _ClickTarget:
    ad_id: str
    url: str
    expires_at: float
    clicked: bool = False


def _delivered_at(entry: tuple[float, str]) -> float:
    return entry[0]


class MemoryAdStore:
    """An `AdStore` in this process's memory: for a single worker, and for tests.

    Not thread-safe; it relies on running in one event loop, where no method awaits midway.
    """

    def __init__(
        self,
        *,
        max_window_s: float = DEFAULT_MAX_WINDOW_S,
        clock: Callable[[], float] = time.time,
        track_clicks: bool = True,
        max_click_targets: int = DEFAULT_MAX_CLICK_TARGETS,
        max_users: int = DEFAULT_MAX_USERS,
        max_log_entries: int = DEFAULT_MAX_LOG_ENTRIES,
    ) -> None:
        if max_window_s <= 0:
            raise ValueError(f"max_window_s must be positive, got {max_window_s}")
        self._max_window_s = max_window_s
        self._clock = clock
        self._track_clicks = track_clicks
        self._max_click_targets = max_click_targets
        self._max_users = max_users
        self._max_log_entries = max_log_entries
        self._clear()

    def _clear(self) -> None:
        self._impressions: Counter[str] = Counter()
        self._clicks: Counter[str] = Counter()
        self._decisions: Counter[str] = Counter()
        # user -> [(delivered at, ad id)] sorted by time; users ordered by their latest delivery,
        # so the ones whose whole log has aged out are always at the front.
        self._logs: OrderedDict[str, list[tuple[float, str]]] = OrderedDict()
        # Insertion order is expiry order (one TTL per store in practice), so the front expires
        # first; a target recorded again moves to the end.
        self._click_targets: OrderedDict[str, _ClickTarget] = OrderedDict()
        self._series: dict[int, Counter[str]] = {}  # minute start -> counters of that minute

    async def recent_ads(self, user_key: str, window_s: float, now: float) -> list[str]:
        log = self._logs.get(user_key, [])
        start = bisect_right(log, now - window_s, key=_delivered_at)
        return [ad_id for _, ad_id in log[start:]]

    async def record_impression(self, imp: Impression, *, click_ttl_s: float) -> None:
        self._impressions[imp.ad_id] += 1
        self._count_in_minute(imp.at, "impressions")
        self._log_delivery(imp.user_key, imp.at, imp.ad_id)
        if not self._track_clicks or click_ttl_s <= 0:
            return  # no click redirect will ever ask for it
        targets = self._click_targets
        targets[imp.id] = _ClickTarget(imp.ad_id, imp.url, self._clock() + click_ttl_s)
        targets.move_to_end(imp.id)
        self._drop_expired_click_targets()
        while len(targets) > self._max_click_targets:
            targets.popitem(last=False)

    async def record_click(self, impression_id: str) -> str | None:
        self._drop_expired_click_targets()
        target = self._click_targets.get(impression_id)
        if target is None or target.expires_at <= self._clock():
            return None
        if not target.clicked:
            target.clicked = True
            self._clicks[target.ad_id] += 1
            self._count_in_minute(self._clock(), "clicks")
        return target.url

    async def impressions(self, ad_id: str) -> int:
        return self._impressions[ad_id]

    async def exhausted(self, budgets: Mapping[str, int]) -> set[str]:
        return {ad_id for ad_id, budget in budgets.items() if self._impressions[ad_id] >= budget}

    async def record_decision(self, outcome: str, count: int = 1) -> None:
        self._decisions[outcome] += count
        now = self._clock()
        self._count_in_minute(now, "responses", count)
        if outcome == PLACED:
            self._count_in_minute(now, "placed", count)

    async def stats(self) -> AdStats:
        ads = {
            ad_id: AdCounters(self._impressions[ad_id], self._clicks[ad_id])
            for ad_id in self._impressions.keys() | self._clicks.keys()
        }
        return AdStats(ads=ads, decisions=dict(self._decisions))

    async def timeline(self, minutes: int, now: float) -> list[TimelinePoint]:
        return [
            TimelinePoint.from_counts(start, self._series.get(start, {}))
            for start in buckets_until(now, minutes)
        ]

    async def reset(self) -> None:
        self._clear()

    async def close(self) -> None:
        return None

    async def ping(self) -> bool:
        return True

    def sizes(self) -> dict[str, int]:
        """How many click targets, users and log entries are held (for memory checks)."""
        entries = sum(len(log) for log in self._logs.values())
        return {"click_targets": len(self._click_targets), "users": len(self._logs), "log": entries}

    def _log_delivery(self, user_key: str, at: float, ad_id: str) -> None:
        log = self._logs.setdefault(user_key, [])
        insort(log, (at, ad_id), key=_delivered_at)
        self._logs.move_to_end(user_key)
        horizon = at - self._max_window_s
        del log[: bisect_right(log, horizon, key=_delivered_at)]
        if len(log) > self._max_log_entries:  # caps and no-repeat only need the latest ones
            del log[: len(log) - self._max_log_entries]
        while self._logs:
            oldest_user, oldest_log = next(iter(self._logs.items()))
            if len(self._logs) <= self._max_users and oldest_log and oldest_log[-1][0] > horizon:
                break
            del self._logs[oldest_user]

    def _count_in_minute(self, at: float, name: str, count: int = 1) -> None:
        start = bucket_of(at)
        self._series.setdefault(start, Counter())[name] += count
        if len(self._series) > RETENTION_S // 60 + 1:
            horizon = bucket_of(self._clock() - RETENTION_S)
            for old in [minute for minute in self._series if minute < horizon]:
                del self._series[old]

    def _drop_expired_click_targets(self) -> None:
        now = self._clock()
        targets = self._click_targets
        while targets:
            impression_id, target = next(iter(targets.items()))
            if target.expires_at > now:
                break
            del targets[impression_id]


def make_ad_store(
    redis_url: str | None,
    *,
    prefix: str = "echo:ads:",
    max_window_s: float = DEFAULT_MAX_WINDOW_S,
    track_clicks: bool = True,
    timeout: float = 1.0,
    max_click_targets: int = DEFAULT_MAX_CLICK_TARGETS,
    max_users: int = DEFAULT_MAX_USERS,
) -> AdStore:
    """The store for this deployment: Redis when `redis_url` is set, else this process's memory.

    No I/O happens here; a Redis store connects on first use. `timeout` bounds each Redis call.
    """
    if redis_url is None:
        return MemoryAdStore(
            max_window_s=max_window_s,
            track_clicks=track_clicks,
            max_click_targets=max_click_targets,
            max_users=max_users,
        )
    # Imported here because redis_store builds on this module's types.
    from echo_stream.ads.redis_store import RedisAdStore

    return RedisAdStore.from_url(
        redis_url,
        prefix=prefix,
        max_window_s=max_window_s,
        timeout=timeout,
        track_clicks=track_clicks,
    )
