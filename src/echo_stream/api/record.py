"""Storage for any chat face: the store, the caller's identity, and the OpenAI opt-in.

The OpenAI endpoint stores a turn only when asked: the request header
`X-Conversation-Id: new` (start one) or `X-Conversation-Id: <id>` (append to an owned one), or
the same value in the body's `metadata.conversation_id`. The response then carries
`X-Conversation-Id: <id>`. The client still sends the whole `messages` list (OpenAI semantics);
the gateway stores the last user message and the answer.
"""

from __future__ import annotations

import re

from fastapi import Request

from echo_stream.api.edge import header
from echo_stream.api.run import ChatRun
from echo_stream.api.titles import title_after
from echo_stream.conversations.owner import owner_of
from echo_stream.conversations.recording import open_turn, record, replay
from echo_stream.conversations.repository import ConversationRepository
from echo_stream.conversations.titles import title_from_prompt
from echo_stream.errors import InvalidRequest, StoreUnavailable
from echo_stream.events import EventStream
from echo_stream.protocol import ChatCompletionRequest
from echo_stream.state import AppState

CONVERSATION_HEADER = b"x-conversation-id"
IDEMPOTENCY_HEADER = b"idempotency-key"
_ID = re.compile(r"[A-Za-z0-9_-]{1,40}")


def require_store(state: AppState) -> ConversationRepository:
    """The conversation store, or a 503 when the app's lifespan has not opened it."""
    if state.conversations is None:
        raise StoreUnavailable(
            "The conversation store is not open", code="conversation_store_unavailable"
        )
    return state.conversations


def conversation_id_param(value: str | None, param: str) -> str | None:
    """A checked conversation id; `new` and None mean "start a new conversation"."""
    if value is None or value == "new":
        return None
    if not _ID.fullmatch(value):
        raise InvalidRequest(f"Invalid value for '{param}': not a conversation id", param=param)
    return value


def requested_conversation(request: Request, chat: ChatCompletionRequest) -> str | None:
    """`new` or an id when the OpenAI request asks for storage; None when it does not."""
    asked = header(request, CONVERSATION_HEADER)
    if asked is not None:
        return asked.strip() or None
    extra = chat.model_extra or {}
    metadata = extra.get("metadata")
    if isinstance(metadata, dict) and isinstance(value := metadata.get("conversation_id"), str):
        # Ours, not the upstream's: OpenAI refuses `metadata` on requests it does not store.
        del metadata["conversation_id"]
        if not metadata:
            del extra["metadata"]
        return value.strip() or None
    return None


async def record_if_asked(
    state: AppState,
    request: Request,
    chat: ChatCompletionRequest,
    run: ChatRun,
    client_key: str | None,
) -> tuple[EventStream, dict[str, str]]:
    """The OpenAI endpoint's opt-in: `run.events` recorded, and the response header to add."""
    asked = requested_conversation(request, chat)
    if asked is None:
        return run.events, {}
    param = "X-Conversation-Id"
    try:
        repository = require_store(state)
        prompt = next((m.text() for m in reversed(chat.messages) if m.role == "user"), "")
        turn = await open_turn(
            repository,
            owner=owner_of(client_key, user=chat.user),
            conversation_id=conversation_id_param(asked, param),
            prompt=prompt,
            title=title_from_prompt(prompt),
            model=chat.model,
            idempotency_key=header(request, IDEMPOTENCY_HEADER),
        )
    except BaseException:
        await run.events.aclose()
        raise
    if turn.replay is not None:
        await run.events.aclose()
        events = replay(repository, turn, wait=state.settings.chat_total_timeout)
    else:
        after = title_after(state, repository, turn, str(request.base_url))
        events = record(repository, turn, run.events, provider=run.provider, after=after)
    return events, {"X-Conversation-Id": turn.conversation_id}
