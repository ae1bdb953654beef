"""The conversations API for front ends: list, read, rename and delete the caller's history.

Everything is scoped to the caller (client key, plus the optional `user` query parameter within
that key): another caller's conversation answers 404 exactly like an unknown one.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from starlette.responses import Response

from echo_stream.api.edge import parse_body, read_body, require_key
from echo_stream.api.record import conversation_id_param, require_store
from echo_stream.conversations.owner import owner_of
from echo_stream.conversations.repository import Conversation, ConversationRepository, Message
from echo_stream.errors import InvalidRequest, NotFound
from echo_stream.state import AppState

router = APIRouter(prefix="/v1/conversations", tags=["Conversations"])

UserParam = Query(None, max_length=200, description="Narrow to one end user of this key")


class Ad(BaseModel):
    """The sponsored block shown with an answer: where, and exactly as shown."""

    ad_id: str
    advertiser: str
    title: str
    body: str
    url: str
    position: int = Field(description="Character offset in `content` where the block was shown")
    text: str = Field(description="The rendered block as shown")


class MessageOut(BaseModel):
    id: str
    role: Literal["user", "assistant", "system"]
    content: str = Field(description="The model's own text, never the ad")
    status: Literal["complete", "streaming", "aborted", "error"]
    finish_reason: str | None
    model: str | None
    provider: str | None
    input_tokens: int | None
    output_tokens: int | None
    error: str | None
    created_at: int
    ad: Ad | None


class ConversationOut(BaseModel):
    id: str
    object: Literal["conversation"] = "conversation"
    title: str
    model: str | None
    created_at: int
    updated_at: int
    metadata: dict[str, Any]


class ConversationWithMessages(ConversationOut):
    messages: list[MessageOut]


class ConversationList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ConversationOut]
    has_more: bool
    next_cursor: str | None


class Rename(BaseModel):
    title: str = Field(min_length=1, max_length=200)


def conversation_out(conversation: Conversation) -> ConversationOut:
    """The API shape of a stored conversation."""
    return ConversationOut(
        id=conversation.id,
        title=conversation.title,
        model=conversation.model,
        created_at=int(conversation.created_at),
        updated_at=int(conversation.updated_at),
        metadata=conversation.metadata,
    )


def message_out(message: Message) -> MessageOut:
    """The API shape of a stored message."""
    return MessageOut(
        id=message.id,
        role=message.role,
        content=message.content,
        status=message.status,
        finish_reason=message.finish_reason,
        model=message.model,
        provider=message.provider,
        input_tokens=message.input_tokens,
        output_tokens=message.output_tokens,
        error=message.error,
        created_at=int(message.created_at),
        ad=Ad.model_validate(message.ad) if message.ad else None,
    )


def _caller(request: Request, user: str | None) -> tuple[ConversationRepository, str]:
    state: AppState = request.app.state.echo
    client_key = require_key(request, state.client_keys)
    return require_store(state), owner_of(client_key, user=user)


def _not_found(conversation_id: str) -> NotFound:
    return NotFound(f"No conversation found with id '{conversation_id}'")


@router.get("", response_model=ConversationList)
async def list_conversations(
    request: Request,
    limit: int = Query(20, ge=1, le=100),
    cursor: str | None = Query(None, max_length=200),
    user: str | None = UserParam,
) -> ConversationList:
    """The caller's conversations, newest first (by `updated_at`), a page at a time."""
    repository, owner = _caller(request, user)
    items, next_cursor = await repository.page(owner, limit, cursor)
    return ConversationList(
        data=[conversation_out(c) for c in items],
        has_more=next_cursor is not None,
        next_cursor=next_cursor,
    )


@router.get("/{conversation_id}", response_model=ConversationWithMessages)
async def get_conversation(
    request: Request, conversation_id: str, user: str | None = UserParam
) -> ConversationWithMessages:
    """One of the caller's conversations with its messages, oldest first."""
    repository, owner = _caller(request, user)
    checked = conversation_id_param(conversation_id, "conversation_id")
    conversation = await repository.get(owner, checked) if checked else None
    if conversation is None:
        raise _not_found(conversation_id)
    messages = await repository.messages(conversation.id)
    return ConversationWithMessages(
        **conversation_out(conversation).model_dump(),
        messages=[message_out(m) for m in messages],
    )


@router.patch("/{conversation_id}", response_model=ConversationOut, openapi_extra={
    "requestBody": {"required": True, "content": {"application/json": {
        "schema": Rename.model_json_schema()}}},
})  # fmt: skip
async def rename_conversation(
    request: Request, conversation_id: str, user: str | None = UserParam
) -> ConversationOut:
    """Rename one of the caller's conversations."""
    repository, owner = _caller(request, user)
    state: AppState = request.app.state.echo
    body = parse_body(Rename, await read_body(request, state.settings.max_request_bytes))
    title = " ".join(body.title.split())
    if not title:
        raise InvalidRequest("'title' is empty", param="title")
    checked = conversation_id_param(conversation_id, "conversation_id")
    if not checked or not await repository.rename(owner, checked, title, time.time()):
        raise _not_found(conversation_id)
    conversation = await repository.get(owner, checked)
    if conversation is None:
        raise _not_found(conversation_id)
    return conversation_out(conversation)


@router.delete("/{conversation_id}", status_code=204, response_class=Response)
async def delete_conversation(
    request: Request, conversation_id: str, user: str | None = UserParam
) -> Response:
    """Delete one of the caller's conversations and all its messages, for good."""
    repository, owner = _caller(request, user)
    checked = conversation_id_param(conversation_id, "conversation_id")
    if not checked or not await repository.delete(owner, checked):
        raise _not_found(conversation_id)
    return Response(status_code=204)
