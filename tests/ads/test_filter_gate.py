"""The ad stage's gate (`AdSplice.passes`): what the relay writes for a read is what the stage
would have handed on, ads included, and the answer is the same as when the stage sees every
read."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from hypothesis import given, settings
from hypothesis import strategies as st

from echo_stream.ads.filter import AdSplice
from echo_stream.events import AdBlock, Event, Finish, TextDelta, Usage
from tests.ads.test_filter import AD, ANSWER, Source, text_of


def _answer(
    reads: list[list[str]], source: Source, *, relay: bool, **options: object
) -> tuple[list[Event], int]:
    """The events out of the stage, with the reads the gate lets through written "by the relay"
    (straight to the output, as `streaming.relay` does) when `relay`; and how many it took."""
    splice = AdSplice(source, **options)  # type: ignore[arg-type]
    taken = 0

    async def upstream() -> AsyncIterator[Event]:
        nonlocal taken
        for read in reads:
            # The stage has handed on everything before this read (it is waiting for the next
            # event), as when the connection offers a read to the relay.
            if relay and (out := splice.passes(read)) is not None:
                taken += 1
                source.out.extend(TextDelta(text) for text in out)  # (the relay writes text)
                continue
            for text in read:
                yield TextDelta(text)
        yield Finish("stop")
        yield Usage(1, 2, 3)

    async def main() -> list[Event]:
        async for event in splice(upstream()):
            source.out.append(event)
        return source.out

    return _as_written(asyncio.run(main())), taken


def _as_written(events: list[Event]) -> list[Event]:
    """The events as the chunk encoder writes them: an ad block's text is content like any."""
    return [TextDelta(e.text) if isinstance(e, AdBlock) else e for e in events]


def _reads(text: str, size: int, per_read: int) -> list[list[str]]:
    pieces = [text[i : i + size] for i in range(0, len(text), size)]
    return [pieces[i : i + per_read] for i in range(0, len(pieces), per_read)]


def test_a_long_answer_is_relayed_but_for_the_read_that_starts_the_choice() -> None:
    reads = _reads(ANSWER * 3, 5, 2)
    seen, relayed = Source(), Source()
    expected, _ = _answer(reads, seen, relay=False, min_chars=60)
    got, taken = _answer(reads, relayed, relay=True, min_chars=60)
    assert got == expected
    assert text_of(got).count(AD) == 1 and text_of(got).replace(AD, "") == ANSWER * 3
    assert relayed.outcome == seen.outcome == ("placed", 1)
    assert relayed.started_after == seen.started_after  # the choice starts where it did
    assert taken == len(reads) - 1  # the one reaching 45 characters (3/4 of 60): the choice


def test_a_short_answer_is_relayed_whole_and_costs_no_choice() -> None:
    reads = _reads("Hi there. How are you today?", 4, 1)
    source = Source()
    got, taken = _answer(reads, source, relay=True, min_chars=200)
    assert text_of(got) == "Hi there. How are you today?"
    assert taken == len(reads)
    assert source.started_after is None and source.outcome == ("too_short", 0)


def test_the_gate_hands_on_what_the_stage_would() -> None:
    splice = AdSplice(Source(), min_chars=20)
    assert splice.passes(["0123456789"]) == ["0123456789"]  # 10 < 15 (3/4 of 20): context only
    assert splice.passes(["01234"]) is None  # reaching 15: the stage starts the choice itself
    assert splice._progress.seen == 10  # what it declined is not counted
    splice._choosing = True  # (as the stage does when it sees that read)
    rest = " more words, to go past the minimum. Another sentence. And another one."
    assert splice.passes(["Some text. Then", rest]) == ["Some text. ", AD, "Then", rest]
    assert splice.passes(["After the ad."]) == ["After the ad."]  # every ad out: as they come


@settings(max_examples=150, deadline=None)
@given(
    text=st.sampled_from([ANSWER, ANSWER * 2, "Short. Answer.", "```\ncode. A.\n```\n" * 20]),
    size=st.integers(1, 40),
    per_read=st.integers(1, 4),
    min_chars=st.integers(0, 120),
    ready=st.booleans(),
    max_ads=st.integers(0, 2),
)
def test_relaying_what_the_gate_allows_changes_nothing(
    text: str, size: int, per_read: int, min_chars: int, ready: bool, max_ads: int
) -> None:
    reads = _reads(text, size, per_read)
    options = {"min_chars": min_chars, "max_ads": max_ads}
    seen, relayed = Source(ready=ready), Source(ready=ready)
    expected, _ = _answer(reads, seen, relay=False, **options)
    got, _ = _answer(reads, relayed, relay=True, **options)
    assert got == expected
    assert relayed.outcome == seen.outcome
    assert relayed.started_after == seen.started_after
