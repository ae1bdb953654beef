"""Garbage-collector settings for a server that holds many streams at once.

CPython's cyclic collector runs a young collection every 700 net allocations and, every so often,
a full one that walks every tracked object. With a thousand streams open, a full walk takes
milliseconds and lands on whichever request happened to allocate: first tokens queue behind it.
At start-up the gateway freezes what it has built so far (modules, settings, the app: never
garbage, and never walked again) and collects young objects less often. Reference counting
still frees almost everything at once; the collector only finds cycles, which remain collected.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 20_000
"""Net allocations between young collections (CPython's default: 700)."""


def tune_collector() -> None:
    """Freeze the start-up heap and space out collections (call once the app has started)."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
