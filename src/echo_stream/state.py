"""What the app factory builds once and every handler shares (kept on `app.state.echo`)."""

from __future__ import annotations

from dataclasses import dataclass

from echo_stream.ads.engine import AdEngine
from echo_stream.ops.runtime import Operations
from echo_stream.routing import Router
from echo_stream.settings import Settings


@dataclass(slots=True)
class AppState:
    settings: Settings
    router: Router
    ads: AdEngine | None = None
    client_keys: tuple[str, ...] = ()
    """`ECHO_API_KEYS`, split once here rather than on every request."""
    admin_keys: tuple[str, ...] = ()
    ops: Operations | None = None
    """Metrics, limits, usage, readiness checks (`ops.readiness`) and the drain."""
