"""Recording: store one turn of a conversation around any face's event stream.

The interface a face uses (EchoV2's `/chat`, the OpenAI endpoint's opt-in, the web chat):

    turn = await open_turn(repository, owner=..., conversation_id=None | "<id>", prompt=...,
                           model=..., idempotency_key=...)
    # NotFound when the id is unknown or another owner's; `turn.replay` is set when the
    # idempotency key already started an answer (then don't call the provider: use `replay`).
    run = run_chat(state, chat, ...)
    events = record(repository, turn, run.events, provider=run.provider)
    # (`after=` takes a callback run with the stored outcome, e.g. to write a model title.)
    # encode `events` as usual; `turn.conversation_id` and `turn.message_id` name what was stored.

`record` passes every event through unchanged. It writes the user message and a `streaming`
assistant message concurrently with the upstream's first-token wait and holds the first event
until that write is done, so a crash always leaves the unfinished answer visible. Between chunks
it only appends to a list (no database round trip); when the stream ends it writes the outcome
once: `complete` (text, finish reason, tokens, time to first token, duration), `aborted` (the
client left: partial text) or `error` (partial text and the error). The `AdBlock`'s text never
enters `content`: the ad is stored beside it with its character position, so history can show
exactly what was shown while `content` stays the model's exact text.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from echo_stream.conversations.repository import (
    ConversationRepository,
    Message,
    Outcome,
    TurnStart,
    new_id,
)
from echo_stream.errors import (
    EchoError,
    NotFound,
    StoreUnavailable,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from echo_stream.events import (
    FLUSH,
    AdBlock,
    EventStream,
    Finish,
    FinishReason,
    TextDelta,
    Usage,
)

log = logging.getLogger(__name__)

REPLAY_POLL_SECONDS = 0.2


@dataclass(slots=True)
class Turn:
    """One question and its answer, about to be (or already) stored."""

    start: TurnStart
    replay: Message | None = None
    """The stored answer this turn's idempotency key already started, if any."""

    @property
    def conversation_id(self) -> str:
        return self.start.conversation_id

    @property
    def message_id(self) -> str:
        return self.replay.id if self.replay else self.start.message_id


async def open_turn(
    repository: ConversationRepository,
    *,
    owner: str,
    conversation_id: str | None,
    prompt: str,
    title: str,
    model: str | None,
    idempotency_key: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> Turn:
    """Check ownership and the idempotency key; nothing is written yet (`record` writes), except
    the key's claim: a turn with a key claims it before the provider is asked, so of two
    requests sent together with one key (to one process or several), one asks the provider
    and the other replays that answer."""
    try:
        if conversation_id is not None and await repository.get(owner, conversation_id) is None:
            raise NotFound(f"No conversation found with id '{conversation_id}'")
        start = TurnStart(
            owner=owner,
            conversation_id=conversation_id or new_id("conv"),
            create=conversation_id is None,
            prompt=prompt,
            title=title,
            model=model,
            provider=None,
            idempotency_key=idempotency_key,
            metadata=metadata or {},
        )
        if idempotency_key:
            existing = await _claim(repository, start, idempotency_key)
            if existing is not None:
                start = TurnStart(owner, existing.conversation_id, False, prompt, title, model,
                                  None, idempotency_key, message_id=existing.id)  # fmt: skip
                return Turn(start, replay=existing)
    except EchoError:
        raise
    except Exception as exc:
        raise StoreUnavailable(
            "The conversation store is unavailable", code="conversation_store_unavailable"
        ) from exc
    return Turn(start)


CLAIM_GRACE_SECONDS = 10.0
"""How long a claimed key's answer may take to appear in the store before the claim is taken
as abandoned (the request that claimed it failed before writing its rows)."""


async def _claim(repository: ConversationRepository, start: TurnStart, key: str) -> Message | None:
    """Claim `key` for `start`'s answer: None when claimed, else the answer to replay (one that
    another request with this key started, complete or still streaming). A key whose answer
    failed, was cut short, or never appeared is taken over."""
    owner, message_id = start.owner, start.message_id
    while True:
        holder = await repository.claim_key(owner, key, message_id, time.time())
        if holder is None:
            return None
        held_by, claimed_at = holder
        message = await repository.message(held_by)
        # The claimant writes its rows while it asks the provider: wait for them to appear.
        while message is None and time.time() - claimed_at < CLAIM_GRACE_SECONDS:
            await asyncio.sleep(REPLAY_POLL_SECONDS / 4)
            message = await repository.message(held_by)
        if message is not None and message.status in ("complete", "streaming"):
            return message
        if await repository.take_over_key(owner, key, held_by, message_id, time.time()):
            return None


async def record(
    repository: ConversationRepository,
    turn: Turn,
    events: EventStream,
    *,
    provider: str,
    after: Callable[[Outcome], None] | None = None,
) -> EventStream:
    """Pass `events` through, storing the turn (see the module docstring).

    `after`, if given, is called with the outcome once it is stored (e.g. to write a title).
    """
    turn.start.provider = provider
    begun = time.monotonic()
    # Queued now, written by the batch writer while the upstream is asked (see `writer`).
    writing: asyncio.Future[None] | None = repository.writer.enqueue(turn.start, None, time.time())
    parts: list[str] = []
    append = parts.append
    ad: dict[str, Any] | None = None
    finish: FinishReason | None = None
    usage: Usage | None = None
    ttft: float | None = None
    outcome = Outcome("aborted", "")
    try:
        async with aclosing(events):
            async for event in events:
                if writing is not None:
                    await _written(writing)
                    writing = None
                    ttft = time.monotonic() - begun
                if event is FLUSH:
                    pass
                elif isinstance(event, TextDelta):
                    if event.choice == 0:
                        if isinstance(event, AdBlock):
                            ad = ad or _ad_fields(event, len("".join(parts)))
                        else:
                            append(event.text)
                elif isinstance(event, Finish):
                    if event.choice == 0:
                        finish = finish or event.reason
                elif isinstance(event, Usage):
                    usage = event
                yield event
        if finish is None:
            outcome = Outcome("error", "", error="the answer ended before it finished")
        else:
            outcome = Outcome("complete", "", finish_reason=finish)
    except EchoError as exc:
        outcome = Outcome("error", "", error=exc.message)
        raise
    except (GeneratorExit, asyncio.CancelledError):
        raise
    except Exception as exc:
        outcome = Outcome("error", "", error=f"internal error: {type(exc).__name__}")
        raise
    finally:
        outcome.content = "".join(parts)
        outcome.ad = ad
        outcome.ttft_ms = ttft * 1000 if ttft is not None else None
        outcome.duration_ms = (time.monotonic() - begun) * 1000
        if usage is not None:
            outcome.input_tokens = usage.prompt_tokens
            outcome.output_tokens = usage.completion_tokens
        await _finalise(repository, turn, writing, outcome, after)


async def _written(writing: asyncio.Future[None]) -> None:
    try:
        # Shielded: a cancelled request must not cancel the write `_finalise` waits for.
        await asyncio.shield(writing)
    except EchoError:
        raise
    except Exception as exc:
        raise StoreUnavailable(
            "The conversation store is unavailable", code="conversation_store_unavailable"
        ) from exc


async def _finalise(
    repository: ConversationRepository,
    turn: Turn,
    writing: asyncio.Future[None] | None,
    outcome: Outcome,
    after: Callable[[Outcome], None] | None,
) -> None:
    """Write the outcome; shielded, so a cancelled request still leaves its final state."""
    if writing is None or (writing.done() and not writing.cancelled() and not writing.exception()):
        # The usual case: the rows exist; queue the outcome (a write is never withdrawn).
        row = (turn.message_id, turn.conversation_id, outcome)
        stored = repository.writer.enqueue(None, row, time.time())
        try:
            await asyncio.shield(stored)
        except Exception:
            log.exception("conversation %s: storing the answer failed", turn.conversation_id)
            return
        if after is not None:
            after(outcome)
        return

    async def finish() -> None:
        if writing is not None:
            try:
                await writing
            except Exception:
                log.warning("conversation %s: the turn was never stored", turn.conversation_id)
                return
        try:
            await repository.finish(turn.conversation_id, turn.message_id, outcome, time.time())
        except Exception:
            log.exception("conversation %s: storing the answer failed", turn.conversation_id)
            return
        if after is not None:
            after(outcome)

    task = asyncio.ensure_future(finish())
    repository.pending.add(task)
    task.add_done_callback(repository.pending.discard)
    await asyncio.shield(task)


def _ad_fields(block: AdBlock, position: int) -> dict[str, Any]:
    return {
        "ad_id": block.ad_id,
        "advertiser": block.advertiser,
        "title": block.title,
        "body": block.body,
        "url": block.url,
        "position": position,
        "text": block.text,
    }


async def replay(repository: ConversationRepository, turn: Turn, *, wait: float) -> EventStream:
    """The stored answer of a retried request as events (ad spliced back where it was shown).

    An answer still streaming for the first request is waited for (up to `wait` seconds).
    """
    message = turn.replay
    assert message is not None
    deadline = time.monotonic() + wait
    while message.status == "streaming":
        if time.monotonic() > deadline:
            raise UpstreamTimeout("the first request with this idempotency key is still answering")
        await asyncio.sleep(REPLAY_POLL_SECONDS)
        message = await repository.message(message.id) or message
    if message.status != "complete":
        raise UpstreamUnavailable(
            f"the first request with this idempotency key failed: {message.error or message.status}"
        )
    turn.replay = message
    content, ad = message.content, message.ad
    if ad is not None:
        position = int(ad.get("position", len(content)))
        if position:
            yield TextDelta(content[:position])
        yield AdBlock(str(ad.get("text", "")), 0, *(str(ad.get(k, "")) for k in _AD_KEYS))
        content = content[position:]
    if content:
        yield TextDelta(content)
    yield Finish(_finish_reason(message.finish_reason))
    if message.input_tokens is not None or message.output_tokens is not None:
        prompt, completion = message.input_tokens or 0, message.output_tokens or 0
        yield Usage(prompt, completion, prompt + completion)


_AD_KEYS = ("ad_id", "advertiser", "title", "body", "url")


def _finish_reason(reason: str | None) -> FinishReason:
    if reason in ("stop", "length", "tool_calls", "content_filter"):
        return reason  # type: ignore[return-value]
    return "stop"
