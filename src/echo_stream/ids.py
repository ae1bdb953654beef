"""Identifiers that name things but guard nothing: request ids, completion and message ids.

They only have to be unique, so they come from a per-process pseudo-random generator seeded
from the OS, not from `secrets` (a system call each, twice per request). Anything that guards
access (stream tokens, session ids, ad impression ids in click links) still uses `secrets`.
A forked child reseeds, so workers never share a sequence.
"""

from __future__ import annotations

import os
import random
import secrets

_ids = random.Random(secrets.randbits(128))


def _reseed() -> None:
    _ids.seed(secrets.randbits(128))


os.register_at_fork(after_in_child=_reseed)


def hex_id(prefix: str, digits: int = 24) -> str:
    """`prefix` and `digits` random hex digits (`digits` a multiple of 4 bits' worth)."""
    # %-formatting: an f-string's nested width (`:0{digits}x`) builds its format spec on every
    # call, twice as slow (~0.75 µs against ~0.35 µs; two ids per request).
    return "%s%0*x" % (prefix, digits, _ids.getrandbits(digits * 4))  # noqa: UP031
