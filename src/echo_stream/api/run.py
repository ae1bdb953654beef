"""The one way any face starts an answer: route, ad stage, first-token guard -> internal events.

Every endpoint (the OpenAI API, and each other face: stored conversations, session streams,
the voice stream, the web chat) builds a `ChatCompletionRequest`, calls `run_chat`, and encodes
the events it gets into its own wire format. Routing, retries, timeouts and ads therefore live
in one place; a face never re-implements them. So do per-key limits, the drain and the
request's record (model, provider, tokens, time to first token: `ops.stage`), so every face is
observed. Disconnect handling comes from handing the encoded bytes to
`streaming.response.EventStreamResponse` (or `DeferredJSONResponse`).
"""

from __future__ import annotations

from dataclasses import dataclass

from echo_stream.ads.links import BaseUrl
from echo_stream.events import EventStream
from echo_stream.ops.record import RequestRecord, current_record, key_id
from echo_stream.ops.stage import Admit, observed_source
from echo_stream.protocol import ChatCompletionRequest
from echo_stream.state import AppState
from echo_stream.streaming.pipeline import Stage, build_pipeline, first_event_within
from echo_stream.streaming.relay import Gate


@dataclass(slots=True, frozen=True)
class ChatRun:
    """One answer on its way: where it went and the events that make it up."""

    provider: str
    """The provider adapter's name (`openai`, `anthropic`, `google`, `mock`)."""
    upstream_model: str
    events: EventStream
    """Provider events after the first-token guard and the ad stage (ads arrive as `AdBlock`)."""
    gate: Gate | None = None
    """The ad stage's say on a read of plain text (`AdSplice.passes`), which `streaming.relay`
    asks before writing it; None when no stage touches text (no ad stage)."""


def run_chat(
    state: AppState, chat: ChatCompletionRequest, *, client_key: str | None, base_url: BaseUrl
) -> ChatRun:
    """Start `chat` through the pipeline; raises `ModelNotFound` for a name that routes nowhere.

    Nothing is sent upstream until the first event is awaited. `base_url` (the gateway's own,
    for ad click links) may be a function, called only if an ad link needs it.
    """
    record = current_record()
    if record is not None:
        record.model = chat.model
        record.key_id = key_id(client_key) if client_key else None
        record.user = chat.user
        record.streamed = bool(chat.stream)
    route = state.router.resolve(chat.model)
    stages: list[Stage] = []
    ad_stage = None if state.ads is None else state.ads.stage(chat, client_key, base_url)
    if ad_stage is not None:
        stages.append(ad_stage)
    events = route.provider.stream(chat, route.upstream_model)
    if record is not None and state.ops is not None:
        record.provider = route.provider.name
        source = _observed(state, record, events)
    else:  # outside a request (the gateway's own calls, e.g. titles): only the guard
        timeout = state.settings.upstream_first_token_timeout
        source = first_event_within(events, timeout, route.provider.name)
    pipeline = build_pipeline(source, stages)
    gate = None if ad_stage is None else ad_stage.passes
    return ChatRun(route.provider.name, route.upstream_model, pipeline, gate=gate)


def _observed(state: AppState, record: RequestRecord, events: EventStream) -> EventStream:
    """The provider's events behind the key's limits and the first-token guard, observed."""
    assert state.ops is not None
    limiter = state.ops.limiter
    admit: Admit | None = None
    if limiter is not None:

        async def admit() -> None:
            # `=`: a retried answer (EchoV2's fallback) shows its latest state, once.
            record.response_headers = await limiter.admit(record.key_id, record.user)

    return observed_source(
        events,
        record,
        first_token_s=state.settings.upstream_first_token_timeout,
        drain=state.ops.drain,
        admit=admit,
        metrics=state.ops.metrics,
    )
