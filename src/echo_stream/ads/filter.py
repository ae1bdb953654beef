"""The ad stage of the pipeline: splices ad blocks into the answer as it streams.

Text passes through at once; the scanner reports only safe points that the text already fed
has confirmed, and the stage splits the piece that confirmed one: left part, ad, right part.
The ad is always an `AdBlock` (a text delta) of its own, so removing the ad blocks from the
answer gives back the upstream's text exactly, whatever the chunking. Only choice 0 gets ads
(the engine keeps `n > 1`, JSON mode and the like out before this stage is added).
"""

from __future__ import annotations

from contextlib import aclosing
from dataclasses import dataclass
from typing import Literal, Protocol

from echo_stream.ads.placement import PlacementScanner
from echo_stream.events import AdBlock, EventStream, Finish, TextDelta, ToolCallDelta

Placement = Literal["inline", "end"]
NO_AD = "no_ad"
"""Outcome when the source had nothing to serve; the source substitutes its own reason."""


class AdSource(Protocol):
    """Where the stage gets ad blocks; the engine's per-response plan implements it."""

    def start(self) -> None:
        """Begin choosing (idempotent); `wait` starts it too."""
        ...

    def ready(self) -> AdBlock | None:
        """The next ad block if one is already chosen; never waits."""
        ...

    def pending(self) -> bool:
        """False once it is settled that no further block will come (the scanner can stop)."""
        ...

    async def wait(self) -> AdBlock | None:
        """The next ad block, waiting briefly if the choice is still running."""
        ...

    def finish(self, outcome: str, placed: int) -> None:
        """How the response ended: "placed", or why it got no ad."""
        ...


@dataclass(slots=True)
class _Progress:
    seen: int = 0  # characters of choice 0's answer so far
    last_ad_at: int = 0
    placed: int = 0
    called_tools: bool = False


def splice_ads(
    events: EventStream,
    source: AdSource,
    *,
    min_chars: int,
    max_ads: int = 1,
    placement: Placement = "inline",
) -> EventStream:
    """Pass `events` through, adding up to `max_ads` ad blocks to choice 0's text (`AdSplice`)."""
    return AdSplice(source, min_chars=min_chars, max_ads=max_ads, placement=placement)(events)


class AdSplice:
    """One response's ad stage: call it on the events to get them with the ads spliced in.

    The ad is chosen only once the answer has 3/4 of the characters it needs before an ad, and
    after the text that got it there has gone out: choosing never delays a first token, and an
    answer too short for an ad costs no choice. Likewise the text before `min_chars` (where no
    ad may go) is scanned in one piece when the answer reaches it, not token by token.

    `passes` lets `streaming.relay` write a read of plain text without this stage seeing its
    events, doing to the text exactly what the stage would (`_text`, shared by both): its
    state is therefore kept here, not in the generator's locals.
    """

    __slots__ = (
        "_choose_at", "_choosing", "_inline", "_max_ads", "_min_chars", "_progress", "_scanner",
        "_scanning", "_source", "_through", "_unscanned",
    )  # fmt: skip

    def __init__(
        self,
        source: AdSource,
        *,
        min_chars: int,
        max_ads: int = 1,
        placement: Placement = "inline",
    ) -> None:
        self._source = source
        self._min_chars = min_chars
        self._max_ads = max_ads
        self._inline = placement == "inline"
        self._scanner = PlacementScanner(min_chars)
        self._choose_at = max(1, min_chars * 3 // 4)
        self._choosing = False
        self._unscanned: list[str] = []  # choice 0's text so far, while shorter than `min_chars`
        self._progress = _Progress()
        self._scanning = max_ads > 0
        self._through = False
        """Every ad is out: the rest of the answer passes straight through."""

    def __call__(self, events: EventStream) -> EventStream:
        return self._run(events)

    def passes(self, texts: list[str]) -> list[str] | None:
        """For `streaming.relay`: choice 0's next pieces of text, `texts`, as this stage would
        hand them on (the same pieces, or with an ad's text spliced in), taken as if the stage
        had seen them; None, changing nothing, when the stage must see them itself (they
        would start the choice of an ad, which belongs to the response's task)."""
        if self._through:
            return texts
        if not self._choosing and self._progress.seen + sum(map(len, texts)) >= self._choose_at:
            return None  # (a read more than needed, at most: the stage starts the choice)
        out: list[str] = []
        for i, text in enumerate(texts):
            parts = self._text(text)
            if parts is None:
                out.append(text)
            else:
                out += [part.text for part in parts]
            if self._through:
                out += texts[i + 1 :]
                break
        return out

    def _text(self, text: str) -> list[TextDelta] | None:
        """Take the next piece of choice 0's text: None if it goes on unchanged, else the
        pieces to send in its place (an ad spliced in; `_through` is set once every ad is out)."""
        progress = self._progress
        start = progress.seen
        progress.seen = seen = start + len(text)
        if seen < self._min_chars:  # no ad can go in it: kept only as the scanner's context
            self._unscanned.append(text)
            return None
        scanner, unscanned = self._scanner, self._unscanned
        if unscanned:  # no point can be in it: scanned only for the context
            scanner.feed("".join(unscanned))
            unscanned.clear()
        if not (self._scanning and (points := scanner.feed(text)) and self._inline):
            return None
        parts = _splice(text, start, points, self._source, progress, self._min_chars)
        if progress.placed >= self._max_ads:
            self._through = True
        else:
            self._scanning = self._source.pending()
        return parts

    async def _run(self, events: EventStream) -> EventStream:
        source, progress, min_chars = self._source, self._progress, self._min_chars
        outcome = "incomplete"
        try:
            async with aclosing(events):
                async for event in events:
                    if not self._choosing and progress.seen >= self._choose_at:
                        self._choosing = True
                        source.start()
                    if type(event) is TextDelta and event.choice == 0:
                        parts = self._text(event.text)
                        if parts is None:
                            yield event
                            continue
                        for part in parts:
                            yield part
                        if self._through:
                            break
                        continue
                    if isinstance(event, ToolCallDelta):
                        progress.called_tools = True
                    elif isinstance(event, Finish) and event.choice == 0:
                        if not self._scanning and not progress.placed:
                            outcome = NO_AD
                        else:
                            outcome = _outcome_at_end(event, self._scanner, progress, min_chars)
                        if outcome == "place_now":
                            block = await source.wait()
                            if block is not None:
                                progress.placed += 1
                                yield block
                            outcome = "placed" if block is not None else NO_AD
                    yield event
                else:
                    return
                async for event in events:  # every ad is out: the rest passes straight through
                    yield event
                outcome = "placed"
        finally:
            source.finish(outcome, progress.placed)


def _splice(
    text: str,
    start: int,
    points: list[int],
    source: AdSource,
    progress: _Progress,
    min_chars: int,
) -> list[TextDelta]:
    """`text` as it goes out: split around an ad at the first usable point, if one is ready."""
    for point in points:
        if progress.placed and start + point - progress.last_ad_at < min_chars:
            continue  # keep later ads at least `min_chars` apart
        block = source.ready()
        if block is None:
            break
        progress.placed += 1
        progress.last_ad_at = start + point
        parts = [TextDelta(text[:point]), block, TextDelta(text[point:])]
        return [part for part in parts if part.text]
    return [TextDelta(text)]


def _outcome_at_end(
    finish: Finish, scanner: PlacementScanner, progress: _Progress, min_chars: int
) -> str:
    """When choice 0 finishes: "place_now" to add an ad after the final text, else the outcome."""
    if progress.placed:
        return "placed"
    if progress.called_tools or finish.reason == "tool_calls":
        return "tool_calls"
    if finish.reason == "content_filter":
        return "content_filter"
    if progress.seen == 0 or progress.seen < min_chars:
        return "too_short"
    scanner.feed("\n\n")  # the ad block opens with a blank line, which closes lists and tables
    if not scanner.end_is_safe():
        return "unsafe_end"  # e.g. the answer ends inside an unclosed code block
    return "place_now"
