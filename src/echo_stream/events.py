"""The internal stream vocabulary.

Every provider adapter turns its upstream stream into these few events; every later stage of the
pipeline (ad filter, usage/finish bookkeeping, SSE encoder, non-streaming collector) speaks only
these. They are small slotted dataclasses because one is built per upstream chunk.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Literal

FinishReason = Literal["stop", "length", "tool_calls", "content_filter"]


@dataclass(slots=True)
class TextDelta:
    """A piece of the answer's text for one choice.

    Treated as immutable like the others, but not `frozen`: a frozen dataclass's `__init__`
    sets each field through `object.__setattr__`, which made building one cost 3.4x (525 vs
    153 ns), and one is built per upstream chunk.
    """

    text: str
    choice: int = 0


@dataclass(slots=True)
class AdBlock(TextDelta):
    """A sponsored block spliced into choice 0's text by the ad stage.

    It *is* a piece of the answer's text (`text` is the block rendered in `AD_FORMAT`), so a face
    that only knows text (OpenAI chunks) sends it as content; a face with its own ad event (a card
    in the web chat, the stored position in a conversation) reads the fields. Removing every
    `AdBlock` from a stream gives back the model's answer byte for byte.
    """

    ad_id: str = ""
    advertiser: str = ""
    title: str = ""
    body: str = ""
    url: str = ""
    """The link as shown: the click tracker's URL when click tracking is on."""


@dataclass(slots=True, frozen=True)
class RefusalDelta:
    """A piece of a refusal message (OpenAI's `delta.refusal`)."""

    text: str
    choice: int = 0


@dataclass(slots=True, frozen=True)
class ReasoningDelta:
    """A piece of the model's reasoning ("thinking") for one choice, as a provider sends it.

    Deliberately not a `TextDelta`: it is not part of the answer, so the ad stage never counts it
    toward placement, voice never speaks it, and a face that has no place for reasoning simply
    ignores it. Faces that can show it (Lobe's `reasoning` event, OpenAI-compatible
    `delta.reasoning_content`) map it explicitly.
    """

    text: str
    choice: int = 0


@dataclass(slots=True, frozen=True)
class ToolCallDelta:
    """A fragment of one tool call; `id` and `name` are set only on a call's first fragment."""

    index: int
    arguments: str
    id: str | None = None
    name: str | None = None
    choice: int = 0


@dataclass(slots=True, frozen=True)
class Finish:
    """The end of one choice, with the OpenAI finish reason."""

    reason: FinishReason
    choice: int = 0


@dataclass(slots=True, frozen=True)
class Usage:
    """Token counts for the whole response (all choices)."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None


class Flush:
    """The provider has handed over everything it has for now: write what is pending.

    Adapters yield it after the events of each upstream read, so the encoder sends a burst of
    tokens that arrived together as one write, without ever holding a token back.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "FLUSH"


FLUSH = Flush()

AnswerEvent = TextDelta | AdBlock | RefusalDelta | ReasoningDelta | ToolCallDelta | Finish | Usage
"""What an answer is made of; `Event` adds the `FLUSH` marker."""

Event = AnswerEvent | Flush

EventStream = AsyncGenerator[Event, None]
"""What an adapter's `stream` returns and what every pipeline stage consumes and produces."""
