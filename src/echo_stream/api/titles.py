"""Model-written conversation titles (`CONVERSATION_TITLE_MODEL`), made after the first answer.

A new conversation is titled at once with the prompt's first words; when a title model is
configured, a short background request through the same pipeline replaces it once the first
answer is complete. It never delays the answer, and a failure leaves the first-words title.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Callable
from contextlib import aclosing

from echo_stream.api.run import run_chat
from echo_stream.conversations.recording import Turn
from echo_stream.conversations.repository import ConversationRepository, Outcome
from echo_stream.conversations.titles import clean_model_title
from echo_stream.events import AdBlock, TextDelta
from echo_stream.protocol import ChatCompletionRequest, ChatMessage
from echo_stream.state import AppState

log = logging.getLogger(__name__)

TITLE_TIMEOUT_SECONDS = 30.0
_INSTRUCTION = (
    "Write a title of at most six words for the conversation below. "
    "Answer with the title only: no quotes, no final full stop."
)


def title_after(
    state: AppState, repository: ConversationRepository, turn: Turn, base_url: str
) -> Callable[[Outcome], None] | None:
    """For `record(after=...)`: titles a new conversation once its first answer completes."""
    model = state.settings.conversation_title_model
    if not model or not turn.start.create:
        return None

    def after(outcome: Outcome) -> None:
        if outcome.status != "complete":
            return
        work = _write_title(state, repository, turn, outcome.content, model, base_url)
        # A context of its own: the title is the gateway's call, not the user's request, so it
        # must not overwrite that request's record (model, usage, limits) still being filled.
        task = asyncio.get_running_loop().create_task(work, context=contextvars.Context())
        repository.pending.add(task)
        task.add_done_callback(repository.pending.discard)

    return after


async def _write_title(
    state: AppState,
    repository: ConversationRepository,
    turn: Turn,
    answer: str,
    model: str,
    base_url: str,
) -> None:
    chat = ChatCompletionRequest(
        model=model,
        messages=[
            ChatMessage(role="system", content=_INSTRUCTION),
            ChatMessage(
                role="user",
                content=f"Question: {turn.start.prompt[:2000]}\n\nAnswer: {answer[:2000]}",
            ),
        ],
        max_tokens=24,
    )
    parts: list[str] = []
    try:
        async with asyncio.timeout(TITLE_TIMEOUT_SECONDS):
            run = run_chat(state, chat, client_key=None, base_url=base_url)
            async with aclosing(run.events) as events:
                async for event in events:
                    if isinstance(event, TextDelta) and not isinstance(event, AdBlock):
                        parts.append(event.text)
        if title := clean_model_title("".join(parts)):
            await repository.set_title(turn.conversation_id, title)
    except Exception:
        log.warning("conversation %s: the title model failed", turn.conversation_id, exc_info=True)
