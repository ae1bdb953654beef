"""Several rounds of the same case combined into one result (`bench.run --repeat N`).

On a shared machine one round of a load can be 10-20 % off (the storm ±50 %). With `--repeat`,
every system is started, measured and stopped once per round, so rounds interleave the systems
in time, and each figure of a case is the median of its rounds. Failures are never averaged
away: error counts, lost and mismatched streams are summed over the rounds, and a case is
clean only if every round was.
"""

from __future__ import annotations

import statistics
from typing import Any

_SUMMED = frozenset({"error_count", "lost_text_streams", "chunk_count_mismatches"})


def combine(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One case's rounds as one result: medians of figures, sums of failures."""
    if len(rounds) == 1:
        return rounds[0]
    combined: dict[str, Any] = _merge(rounds)
    combined["rounds"] = len(rounds)
    return combined


def _merge(values: list[Any], key: str = "") -> Any:
    first = values[0]
    if isinstance(first, dict):
        if key == "errors":  # error messages -> how often, over all rounds
            total: dict[str, int] = {}
            for errors in values:
                for message, count in errors.items():
                    total[message] = total.get(message, 0) + count
            return total
        keys = dict.fromkeys(k for value in values if isinstance(value, dict) for k in value)
        return {
            k: _merge([v[k] for v in values if isinstance(v, dict) and k in v], k) for k in keys
        }
    if isinstance(first, bool):
        return all(values) if key == "clean" else first
    if isinstance(first, int | float):
        numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        if key in _SUMMED:
            return sum(numbers)
        return statistics.median(numbers) if numbers else None
    if first is None:
        numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        return statistics.median(numbers) if numbers else None
    return first
