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


async def splice_ads(
    events: EventStream,
    source: AdSource,
    *,
    min_chars: int,
    max_ads: int = 1,
    placement: Placement = "inline",
) -> EventStream:
    """Pass `events` through, adding up to `max_ads` ad blocks to choice 0's text.

    The ad is chosen only once the answer has 3/4 of the characters it needs before an ad, and
    after the text that got it there has gone out: choosing never delays a first token, and an
    answer too short for an ad costs no choice. Likewise the text before `min_chars` (where no
    ad may go) is scanned in one piece when the answer reaches it, not token by token.
    """
    scanner = PlacementScanner(min_chars)
    choose_at = max(1, min_chars * 3 // 4)
    choosing = False
    unscanned: list[str] = []  # choice 0's text so far, while it is shorter than `min_chars`
    progress = _Progress()
    outcome = "incomplete"
    scanning = max_ads > 0
    inline = placement == "inline"
    seen = 0  # a local, not `progress.seen`: this loop runs once per token
    try:
        async with aclosing(events):
            async for event in events:
                if not choosing and seen >= choose_at:
                    choosing = True
                    source.start()
                if type(event) is TextDelta and event.choice == 0:
                    text = event.text
                    start = seen
                    seen += len(text)
                    if seen < min_chars:
                        unscanned.append(text)
                        yield event
                        continue
                    if unscanned:  # no point can be in it: scanned only for the context
                        scanner.feed("".join(unscanned))
                        unscanned.clear()
                    if scanning and (points := scanner.feed(text)) and inline:
                        for part in _splice(text, start, points, source, progress, min_chars):
                            yield part
                        if progress.placed >= max_ads:
                            break
                        scanning = source.pending()
                        continue
                    yield event
                    continue
                if isinstance(event, ToolCallDelta):
                    progress.called_tools = True
                elif isinstance(event, Finish) and event.choice == 0:
                    progress.seen = seen
                    if not scanning and not progress.placed:
                        outcome = NO_AD
                    else:
                        outcome = _outcome_at_end(event, scanner, progress, min_chars)
                    if outcome == "place_now":
                        block = await source.wait()
                        if block is not None:
                            progress.placed += 1
                            yield block
                        outcome = "placed" if block is not None else NO_AD
                yield event
            else:
                return
            # Every ad is out: the rest of the answer passes straight through.
            async for event in events:
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
