"""EchoV2's chat API: `POST /chat` and `POST /chat/conversation`, always stored.

Both build a `ChatCompletionRequest`, start it with `run_chat`, and wrap the events in the
stages EchoV2 promised its front end: a fallback (one collected retry when streaming fails
before the first chunk), the total and between-chunks budgets, and recording. The wire format
is `faces.echov2`. Request bodies are validated here with clear 400s: prompt size, control
characters, ids, and a `provider` that must agree with where `model` routes.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from echo_stream.api.edge import header, parse_body, read_body, require_key
from echo_stream.api.record import IDEMPOTENCY_HEADER, conversation_id_param, require_store
from echo_stream.api.run import run_chat
from echo_stream.api.titles import title_after
from echo_stream.conversations.owner import owner_of
from echo_stream.conversations.recording import open_turn, record, replay
from echo_stream.conversations.repository import history_messages
from echo_stream.conversations.titles import title_from_prompt
from echo_stream.errors import InvalidRequest, NotFound
from echo_stream.events import EventStream
from echo_stream.faces.echov2 import collect_echov2, encode_echov2
from echo_stream.protocol import ChatCompletionRequest, ChatMessage
from echo_stream.settings import Settings
from echo_stream.state import AppState
from echo_stream.streaming.budget import within_budget
from echo_stream.streaming.fallback import with_fallback
from echo_stream.streaming.response import DeferredJSONResponse, EventStreamResponse

router = APIRouter(tags=["EchoV2"])

# C0 controls but tab, newline and carriage return; DEL; C1 controls.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


class ChatBody(BaseModel):
    """`POST /chat`."""

    model_config = ConfigDict(extra="ignore")
    prompt: str = Field(min_length=1)
    model: str | None = Field(None, min_length=1, max_length=200)
    provider: str | None = Field(None, min_length=1, max_length=32)
    conversation_id: str | None = Field(None, max_length=40)
    stream: bool = True
    idempotency_key: str | None = Field(None, min_length=1, max_length=200)
    user: str | None = Field(None, max_length=200)


class TurnMessage(BaseModel):
    role: Literal["system", "user", "assistant"]
    content: str


class ConversationBody(ChatBody):
    """`POST /chat/conversation`: `messages` as context, or a stored `conversation_id`."""

    prompt: str | None = None  # type: ignore[assignment]
    messages: list[TurnMessage] | None = Field(None, min_length=1, max_length=500)


class Usage(BaseModel):
    input_tokens: int
    output_tokens: int
    total_tokens: int


class ChatAnswer(BaseModel):
    """The answer of `stream: false` (the streamed `done` event carries the same fields)."""

    response: str
    conversation_id: str
    message_id: str
    model: str
    provider: str
    finish_reason: str | None
    usage: Usage | None


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """A model's JSON schema with its `$defs` inlined, for `openapi_extra`."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk(defs[ref.removeprefix("#/$defs/")])
            return {k: walk(v) for k, v in node.items()}
        return [walk(v) for v in node] if isinstance(node, list) else node

    return walk(schema)  # type: ignore[no-any-return]


def _docs(body: type[BaseModel]) -> dict[str, Any]:
    schema = _inline(body.model_json_schema())
    return {
        "openapi_extra": {
            "requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}
        },
        "responses": {
            200: {
                "model": ChatAnswer,
                "description": "`stream: false`: the answer. `stream: true`: text/event-stream "
                'of `{"chunk", "type": "content"}`, then `{"type": "done", ...}` or '
                '`{"type": "error", "message"}`.',
            }
        },
        "response_model": None,
    }


def check_prompt(text: str, settings: Settings, param: str = "prompt") -> str:
    """The prompt if it is acceptable: not blank, not too long, no control characters."""
    if len(text) > settings.chat_max_prompt_chars:
        raise InvalidRequest(
            f"'{param}' is {len(text)} characters long; the limit is "
            f"{settings.chat_max_prompt_chars}",
            param=param,
            code="prompt_too_long",
        )
    if match := _CONTROL.search(text):
        raise InvalidRequest(
            f"'{param}' contains the control character U+{ord(match.group()):04X} at "
            f"position {match.start()}",
            param=param,
            code="invalid_characters",
        )
    if not text.strip():
        raise InvalidRequest(f"'{param}' is empty", param=param)
    return text


@router.post("/chat", **_docs(ChatBody))
async def chat(request: Request) -> Response:
    """Ask one question (optionally in a stored conversation); streamed or whole; always stored."""
    state: AppState = request.app.state.echo
    client_key = require_key(request, state.client_keys)
    body = parse_body(ChatBody, await read_body(request, state.settings.max_request_bytes))
    prompt = check_prompt(body.prompt, state.settings)
    context: list[dict[str, str]] = []
    if body.conversation_id is not None:
        context = await _stored_context(state, client_key, body)
    return await _answer(state, request, client_key, body, prompt, context)


@router.post("/chat/conversation", **_docs(ConversationBody))
async def chat_conversation(request: Request) -> Response:
    """Continue a conversation: given `messages`, or a stored `conversation_id` as context."""
    state: AppState = request.app.state.echo
    client_key = require_key(request, state.client_keys)
    body = parse_body(ConversationBody, await read_body(request, state.settings.max_request_bytes))
    if body.messages:
        context = [{"role": m.role, "content": m.content} for m in body.messages]
        if body.prompt is None:
            if context[-1]["role"] != "user":
                raise InvalidRequest("The last message must be the user's", param="messages")
            body.prompt = context.pop()["content"]
    elif body.conversation_id is not None:
        context = await _stored_context(state, client_key, body)
    else:
        raise InvalidRequest("Send 'messages' or a 'conversation_id'", param="messages")
    if body.prompt is None:
        raise InvalidRequest("Missing required parameter: 'prompt'", param="prompt")
    for index, message in enumerate(context):
        check_prompt(message.get("content") or " ", state.settings, f"messages.{index}.content")
    prompt = check_prompt(body.prompt, state.settings)
    return await _answer(state, request, client_key, body, prompt, context)


async def _stored_context(
    state: AppState, client_key: str | None, body: ChatBody
) -> list[dict[str, str]]:
    repository = require_store(state)
    owner = owner_of(client_key, user=body.user)
    conversation_id = conversation_id_param(body.conversation_id, "conversation_id")
    if conversation_id is None:
        return []
    if await repository.get(owner, conversation_id) is None:
        raise NotFound(f"No conversation found with id '{conversation_id}'")
    return history_messages(await repository.messages(conversation_id))


async def _answer(
    state: AppState,
    request: Request,
    client_key: str | None,
    body: ChatBody,
    prompt: str,
    context: list[dict[str, str]],
) -> Response:
    settings = state.settings
    repository = require_store(state)
    messages = [ChatMessage.model_validate(m) for m in context]
    messages.append(ChatMessage(role="user", content=prompt))
    chat = ChatCompletionRequest(
        model=body.model or settings.chat_default_model,
        messages=messages,
        stream=body.stream,
        user=body.user,
    )
    base_url = str(request.base_url)
    run = run_chat(state, chat, client_key=client_key, base_url=base_url)
    try:
        if body.provider is not None and body.provider != run.provider:
            raise InvalidRequest(
                f"Model '{chat.model}' is served by '{run.provider}', not '{body.provider}'",
                param="provider",
            )
        turn = await open_turn(
            repository,
            owner=owner_of(client_key, user=body.user),
            conversation_id=conversation_id_param(body.conversation_id, "conversation_id"),
            prompt=prompt,
            title=title_from_prompt(prompt),
            model=chat.model,
            idempotency_key=body.idempotency_key or header(request, IDEMPOTENCY_HEADER),
        )
    except BaseException:
        await run.events.aclose()
        raise
    events: EventStream
    if turn.replay is not None:
        await run.events.aclose()
        events = replay(repository, turn, wait=settings.chat_total_timeout)
    else:
        events = run.events
        if settings.chat_stream_fallback:
            retry = lambda: run_chat(state, chat, client_key=client_key, base_url=base_url).events  # noqa: E731
            events = with_fallback(events, retry)
        events = within_budget(events, settings.chat_total_timeout, settings.chat_chunk_timeout)
        after = title_after(state, repository, turn, base_url)
        events = record(repository, turn, events, provider=run.provider, after=after)
    fields = {"conversation_id": turn.conversation_id, "message_id": turn.message_id,
              "model": chat.model, "provider": run.provider}  # fmt: skip
    headers = {"X-Conversation-Id": turn.conversation_id}
    if body.stream:
        return EventStreamResponse(encode_echov2(events, fields), headers)
    return DeferredJSONResponse(lambda: collect_echov2(events, fields), headers)
