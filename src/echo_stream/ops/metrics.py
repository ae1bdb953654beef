"""Prometheus metrics, updated once per request from its `RequestRecord`.

Nothing is counted on the per-chunk path: the observing stage keeps plain integers on the
record and `Metrics.observe` adds them up when the request ends. With several workers
(`PROMETHEUS_MULTIPROC_DIR` set by the launcher) prometheus-client writes each worker's values
to files in that directory and `/metrics` sums them (`render`).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client import multiprocess as multiprocess

from echo_stream.ops.record import RequestRecord

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
CONTENT_TYPE = CONTENT_TYPE_LATEST
_FLUSH_EVERY_S = 1.0


def multiprocess_dir() -> str | None:
    """The directory shared by the workers' metric files, when several workers run."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class Metrics:
    """The gateway's metrics, in their own registry (one per app, so tests stay apart)."""

    def __init__(self) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]
        # `_created` series double the output and nobody reads them
        self.registry = registry = CollectorRegistry(auto_describe=True)
        labels = ("route", "model", "provider", "status")
        self.requests = Counter("echo_requests", "Requests answered", labels, registry=registry)
        self.ttft = Histogram(
            "echo_time_to_first_token_seconds",
            "From the request's arrival to the first answer event",
            ("model", "provider"),
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.duration = Histogram(
            "echo_request_duration_seconds",
            "From the request's arrival to the end of its response",
            ("route", "streamed"),
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.chunks = Counter(
            "echo_stream_chunks",
            "Upstream reads passed on to clients (one write each when streaming)",
            ("provider",),
            registry=registry,
        )
        self.tokens = Counter(
            "echo_tokens",
            "Tokens reported by providers",
            ("model", "provider", "direction"),
            registry=registry,
        )
        self.upstream_errors = Counter(
            "echo_upstream_errors",
            "Failed answers by error type",
            ("provider", "type"),
            registry=registry,
        )
        self.retries = Counter(
            "echo_upstream_retries",
            "Upstream retries by what was retried",
            ("provider", "kind"),
            registry=registry,
        )
        self.active_streams = Gauge(
            "echo_active_streams",
            "Streamed responses in progress",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.ad_decisions = Counter(
            "echo_ad_decisions",
            "Ad decisions per response",
            ("decision", "reason"),
            registry=registry,
        )
        self.ad_impressions = Counter(
            "echo_ad_impressions", "Ad blocks delivered in completed responses", registry=registry
        )
        self.ad_clicks = Counter("echo_ad_clicks", "Ad links followed", registry=registry)
        # `labels()` validates and locks on every call; one dict lookup per request is enough.
        self._answers: dict[tuple[str, str, str, str, bool | None], _AnswerSeries] = {}
        self._decisions: dict[tuple[str, str], Counter] = {}
        # prometheus-client spends ~2 µs on each `inc`; counters are summed here and handed over
        # a second later (and before every scrape), histograms observed at once.
        self._pending: dict[Counter, float] = {}
        self._flush_scheduled = False
        self.open_streams = 0
        """Streamed answers in progress, kept by the observing stage; the gauge reads it."""

    def observe(self, record: RequestRecord) -> None:
        """Add one finished request to the metrics."""
        # A model name is a label only once it routed: clients choose names, routes are finite.
        model = (record.model or "") if record.provider is not None else ""
        provider = record.provider or ""
        key = (record.route, model, provider, str(record.status), record.streamed)
        series = self._answers.get(key)
        if series is None:
            series = self._answers[key] = self._series(key)
        pending = self._pending
        pending[series.requests] = pending.get(series.requests, 0) + 1
        series.duration.observe(record.duration_s)
        if (answer := series.answer) is not None:  # the request reached a model
            if record.ttft_s is not None:
                answer.ttft.observe(record.ttft_s)
            for counter, amount in (
                (answer.chunks, record.chunks),
                (answer.tokens_in, record.input_tokens),
                (answer.tokens_out, record.output_tokens),
            ):
                if amount:
                    pending[counter] = pending.get(counter, 0) + amount
        if record.error_type is not None and record.provider is not None:
            self.upstream_errors.labels(provider, record.error_type).inc()
        for kind in record.retries:
            self.retries.labels(provider, kind).inc()
        if record.ad is not None:
            decision = (record.ad, record.ad_reason or "")
            child = self._decisions.get(decision)
            if child is None:
                child = self._decisions[decision] = self.ad_decisions.labels(*decision)
            pending[child] = pending.get(child, 0) + 1
        if record.ad_impressions:
            pending[self.ad_impressions] = (
                pending.get(self.ad_impressions, 0) + record.ad_impressions
            )
        if record.ad_clicks:
            self.ad_clicks.inc(record.ad_clicks)
        if not self._flush_scheduled:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
            else:
                loop.call_later(_FLUSH_EVERY_S, self.flush)
                self._flush_scheduled = True

    def flush(self) -> None:
        """Hand the counts summed since the last flush to prometheus-client (a worker's scraped
        files thus lag by at most a second, idle or not)."""
        self._flush_scheduled = False
        self.active_streams.set(self.open_streams)
        pending, self._pending = self._pending, {}
        for counter, amount in pending.items():
            counter.inc(amount)

    def _series(self, key: tuple[str, str, str, str, bool | None]) -> _AnswerSeries:
        route, model, provider, status, streamed = key
        answer = None
        if provider:
            answer = _ModelSeries(
                ttft=self.ttft.labels(model, provider),
                chunks=self.chunks.labels(provider),
                tokens_in=self.tokens.labels(model, provider, "input"),
                tokens_out=self.tokens.labels(model, provider, "output"),
            )
        return _AnswerSeries(
            requests=self.requests.labels(route, model, provider, status),
            duration=self.duration.labels(route, _flag(streamed)),
            answer=answer,
        )

    def render(self) -> bytes:
        """The text exposition format, summed over every worker in multi-process mode."""
        self.flush()
        if (directory := multiprocess_dir()) is not None:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)


@dataclass(slots=True, frozen=True)
class _ModelSeries:
    """The labelled children of a request that reached a model."""

    ttft: Histogram
    chunks: Counter
    tokens_in: Counter
    tokens_out: Counter


@dataclass(slots=True, frozen=True)
class _AnswerSeries:
    """The labelled children one kind of request updates."""

    requests: Counter
    duration: Histogram
    answer: _ModelSeries | None


def _flag(value: bool | None) -> str:
    return "" if value is None else str(value).lower()
