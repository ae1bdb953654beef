"""What the app factory builds once and every handler shares (kept on `app.state.echo`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from echo_stream.events import EventStream
from echo_stream.protocol import ChatCompletionRequest
from echo_stream.routing import Router
from echo_stream.settings import Settings


class AdStageFactory(Protocol):
    """Decides per request whether an ad stage joins the pipeline."""

    def stage(
        self, request: ChatCompletionRequest, client_key: str | None
    ) -> AdStageRunner | None: ...

    async def aclose(self) -> None: ...


class AdStageRunner(Protocol):
    def __call__(self, events: EventStream) -> EventStream: ...


@dataclass(slots=True)
class AppState:
    settings: Settings
    router: Router
    ads: AdStageFactory | None = None
