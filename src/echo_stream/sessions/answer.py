"""One session's answer as it is generated: logged burst by burst, kept for the callback.

Text is appended to the store once per upstream read (at each `FLUSH`), so a burst of tokens that
arrived together is one event, as the OpenAI face makes it one write. Ads (`AdBlock`) are shown to
the viewer like any text but kept out of `answer`, which is the model's own words; the callback
lists them with their position.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from echo_stream.events import AdBlock, EventStream, Finish, Flush, TextDelta, Usage


class LogWriter(Protocol):
    """Where the answer's events are written (a `SessionStore`, or one teed to a live log)."""

    async def append(self, session_id: str, text: str) -> str:
        """Add a piece of text; returns its event id."""

    async def conclude(self, session_id: str, end: dict[str, Any], ttl: float) -> bool:
        """Add the end (keeping the session `ttl` s more), then claim the callback: True when
        this caller is to send it (the session is still there and nobody claimed it before)."""


def estimate_tokens(text: str) -> int:
    """About four characters a token (OpenAI's rule of thumb), never zero for non-empty text."""
    return (len(text) + 3) // 4


@dataclass(slots=True)
class Answer:
    """What the generation produced so far."""

    parts: list[str] = field(default_factory=list)
    ads: list[dict[str, Any]] = field(default_factory=list)
    usage: Usage | None = None
    finish_reason: str | None = None
    _pending: list[str] = field(default_factory=list)
    _length: int = 0

    @property
    def text(self) -> str:
        """The model's answer without ads."""
        return "".join(self.parts)

    def take(self, event: object) -> None:
        """Account for one pipeline event (text is held until the next flush)."""
        if isinstance(event, AdBlock):
            self.ads.append(
                {
                    "ad_id": event.ad_id,
                    "advertiser": event.advertiser,
                    "title": event.title,
                    "url": event.url,
                    "position": self._length,
                }
            )
            self._pending.append(event.text)
        elif isinstance(event, TextDelta):
            if event.choice == 0 and event.text:
                self.parts.append(event.text)
                self._length += len(event.text)
                self._pending.append(event.text)
        elif isinstance(event, Usage):
            self.usage = event
        elif isinstance(event, Finish) and event.choice == 0:
            self.finish_reason = event.reason

    def pending(self) -> str:
        """The text shown since the last flush, and forget it."""
        text = "".join(self._pending)
        self._pending.clear()
        return text

    def token_counts(self, prompt: str) -> tuple[int, int, bool]:
        """(input, output, estimated): the provider's usage, else an estimate."""
        if self.usage is not None:
            return self.usage.prompt_tokens, self.usage.completion_tokens, False
        return estimate_tokens(prompt), estimate_tokens(self.text), True

    async def record(self, store: LogWriter, session_id: str, events: EventStream) -> None:
        """Consume `events`, appending the viewer's text to the session's log at each flush."""
        async for event in events:
            if isinstance(event, Flush):
                if text := self.pending():
                    await store.append(session_id, text)
            else:
                self.take(event)
        if text := self.pending():
            await store.append(session_id, text)
