"""Ad counters over time: per-minute buckets of responses, placements, impressions and clicks.

The all-time counters (`AdStats`) answer "how much"; the dashboard also asks "when". Each store
keeps one small bucket per minute for a day (`RETENTION_S`) and answers `timeline` with the last
N minutes, zero-filled, oldest first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

BUCKET_S = 60
"""The width of one bucket: a minute."""
RETENTION_S = 24 * 3600 + BUCKET_S
"""How long buckets are kept: the longest timeline asked for, plus the bucket being filled."""
MAX_MINUTES = 24 * 60

FIELDS = ("responses", "placed", "impressions", "clicks")
"""What a bucket counts: ad decisions, those that placed an ad, impressions, clicks."""


def bucket_of(at: float) -> int:
    """The unix second at which the minute holding `at` starts."""
    return int(at // BUCKET_S) * BUCKET_S


def buckets_until(now: float, minutes: int) -> list[int]:
    """The starts of the last `minutes` buckets up to and including the one holding `now`."""
    last = bucket_of(now)
    return [last - BUCKET_S * back for back in range(minutes - 1, -1, -1)]


@dataclass(frozen=True, slots=True)
class TimelinePoint:
    """One minute's counters."""

    start: int
    """Unix time the minute starts."""
    responses: int = 0
    placed: int = 0
    impressions: int = 0
    clicks: int = 0

    @classmethod
    def from_counts(cls, start: int, counts: Mapping[str, int | str]) -> TimelinePoint:
        """A point from a bucket's stored counts (missing fields are zero)."""
        values = {name: int(counts.get(name, 0)) for name in FIELDS}
        return cls(start, **values)

    def to_dict(self) -> dict[str, int]:
        """A JSON-ready view."""
        return {
            "start": self.start,
            "responses": self.responses,
            "placed": self.placed,
            "impressions": self.impressions,
            "clicks": self.clicks,
        }
