"""What the app factory builds once and every handler shares (kept on `app.state.echo`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from echo_stream.ads.engine import AdEngine
from echo_stream.conversations.repository import ConversationRepository
from echo_stream.ops.runtime import Operations
from echo_stream.routing import Router
from echo_stream.sessions.service import SessionService
from echo_stream.settings import Settings
from echo_stream.speech.registry import Speech


@dataclass(slots=True)
class AppState:
    settings: Settings
    router: Router
    ads: AdEngine | None = None
    client_keys: tuple[str, ...] = ()
    """`ECHO_API_KEYS`, split once here rather than on every request."""
    admin_keys: tuple[str, ...] = ()
    conversations: ConversationRepository | None = None
    """The conversation store; opened (and migrated) by the app's lifespan."""
    speech: Speech | None = None
    """TTS providers for the voice stream (`POST /api/stream`)."""
    sessions: SessionService = field(default_factory=SessionService.disabled)
    """Session streams (the n8n hand-off); answers 503 until a JWT key is configured."""
    ops: Operations | None = None
    """Metrics, limits, usage, readiness checks (`ops.readiness`) and the drain."""
