"""Built-in model catalog, listed by `GET /v1/models` when no config file declares models.

Only providers with a key (or, for OpenAI-compatible upstreams, a base URL) are listed, so a
LibreChat model picker shows what will actually answer. Any other name with a known prefix
still routes (see `routing.PREFIXES`); this list is what the picker offers.
"""

from __future__ import annotations

CATALOG: dict[str, tuple[str, ...]] = {
    "openai": (
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-4.1",
        "gpt-4.1-mini",
        "gpt-4.1-nano",
        "o1",
        "o3",
        "o3-mini",
        "o4-mini",
    ),
    "anthropic": (
        "claude-3-5-sonnet-20241022",
        "claude-3-opus-20240229",
        "claude-3-5-haiku-20241022",
        "claude-3-7-sonnet-20250219",
        "claude-sonnet-4-20250514",
        "claude-opus-4-20250514",
        "claude-sonnet-4-5",
    ),
    "google": (
        "gemini-2.0-flash-exp",
        "gemini-1.5-pro-latest",
        "gemini-2.0-flash",
        "gemini-2.5-flash",
        "gemini-2.5-pro",
    ),
    "mock": ("echo-mock",),
}
