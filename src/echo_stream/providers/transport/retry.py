"""When a request to a provider is sent again: the one retry rule.

A POST to a model provider is not idempotent (it is billed, and may have side effects), so it is
sent again only when it provably did not reach the provider, or when the provider asked for it:

- the connection could not be made (`ConnectFailed`, `ConnectTimeout`, including waiting for a
  pooled connection): counts against `max_retries`, with backoff;
- a pooled keep-alive connection was found dead before any response byte
  (`StaleConnection`): sent once more at once on a fresh connection, not counted;
- the provider answered 429 or 5xx (`RETRY_STATUSES`): counts against `max_retries`.

Never after a read timeout or a broken connection on a request that was sent: the provider
may be working on it.
"""

from __future__ import annotations

from typing import Final

from echo_stream.providers.transport.errors import NotSent, StaleConnection, TransportError

RETRY_STATUSES: Final = frozenset({429, 500, 502, 503, 504, 529})


def retry_now(error: TransportError, stale_retried: bool) -> bool:
    """A stale pooled connection: send again at once, once per request, uncounted."""
    return isinstance(error, StaleConnection) and not stale_retried


def may_retry_error(error: TransportError) -> bool:
    """Whether a failed attempt may be sent again (counted against `max_retries`)."""
    return isinstance(error, NotSent)


def may_retry_status(status: int) -> bool:
    """Whether the provider asked for the request to be sent again."""
    return status in RETRY_STATUSES


def backoff(attempt: int) -> float:
    """Seconds to wait before counted retry number `attempt + 1`."""
    return min(0.25 * 2.0**attempt, 2.0)
