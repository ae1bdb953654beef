"""Shape checks for upstream payload values, cheap enough for the per-chunk path (one type()
comparison each): a value of the wrong type fails here, and the HTTP base turns that into a 502
naming the provider, instead of failing deep in an encoder or reaching a client."""

from __future__ import annotations

from typing import Any


def text(value: Any) -> str:
    """`value`, which must be a string."""
    if type(value) is not str:
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def optional_text(value: Any) -> str | None:
    """`value`, which must be a string or None."""
    return None if value is None else text(value)


def index(value: Any) -> int:
    """`value`, which must be an int in 0..1023 (a choice or tool-call index)."""
    if type(value) is not int or not 0 <= value < 1024:
        raise ValueError(f"expected a small index, got {value!r}")
    return value


def count(value: Any) -> int:
    """`value`, which must be a non-negative int (a token count); None counts as 0."""
    if value is None:
        return 0
    if type(value) is not int or value < 0:
        raise ValueError(f"expected a token count, got {value!r}")
    return value


def optional_count(value: Any) -> int | None:
    """`value`, a token count or None."""
    return None if value is None else count(value)
