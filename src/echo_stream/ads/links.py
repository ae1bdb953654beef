"""The gateway's own base URL, which tracked ad links point at (`/v1/ads/click/{id}`).

Building it from the request (Host header checks included) costs more than the rest of a short
request's routing, and only a response that gets a tracked ad needs it; so a handler may pass a
function that builds it, called only then.
"""

from __future__ import annotations

from collections.abc import Callable

BaseUrl = str | Callable[[], str]


def resolve_base_url(base_url: BaseUrl) -> str:
    """The base URL itself."""
    return base_url if isinstance(base_url, str) else base_url()
