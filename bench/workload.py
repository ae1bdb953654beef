"""The bench's workload vocabulary: routes, model names that encode a stream's shape, its text.

The gateway forwards neither custom headers nor query strings, but it does pass the model name
upstream unchanged, so the shape of each fake stream (how many content chunks, how far apart) is
encoded in the model name: ``gpt-bench-c200-d0`` is 200 chunks with no delay on the OpenAI route,
``claude-bench-c40-d50`` 40 chunks 50 ms apart on the Anthropic route.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Route = Literal["openai", "anthropic", "gemini"]
ROUTES: tuple[Route, ...] = ("openai", "anthropic", "gemini")
_MODEL_PREFIX: dict[Route, str] = {"openai": "gpt", "anthropic": "claude", "gemini": "gemini"}
_SHAPE_RE = re.compile(r"-c(\d+)-d(\d+)(?:$|[^0-9])")

PROMPT = "Say hello."


@dataclass(frozen=True)
class StreamShape:
    """How the fake upstream streams: ``chunks`` content deltas, ``delay_ms`` between them."""

    chunks: int = 20
    delay_ms: int = 0


def model_name(route: Route, shape: StreamShape) -> str:
    """The model name that selects ``route`` in the gateway and ``shape`` in the fake upstream."""
    return f"{_MODEL_PREFIX[route]}-bench-c{shape.chunks}-d{shape.delay_ms}"


def shape_from_model(model: str, default: StreamShape) -> StreamShape:
    """Read the stream shape out of a model name; ``default`` when it carries none."""
    match = _SHAPE_RE.search(model)
    if match is None:
        return default
    return StreamShape(chunks=int(match.group(1)), delay_ms=int(match.group(2)))


def token(n: int, total: int) -> str:
    """The text of content chunk ``n``: a token-like word; every tenth and the last end a sentence.

    The full stops give a sentence-aware ad filter places to splice, as real text would.
    """
    end = "." if n % 10 == 9 or n == total - 1 else ""
    return f" tok{n}{end}"


def expected_tokens(chunks: int) -> list[str]:
    """Every content chunk's text, in order."""
    return [token(n, chunks) for n in range(chunks)]
