"""The splice stage: text never held back, ads only at safe points, the answer kept byte-exact."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

from hypothesis import given, settings
from hypothesis import strategies as st

from echo_stream.ads.filter import NO_AD, splice_ads
from echo_stream.events import (
    AdBlock,
    Event,
    Finish,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    Usage,
)

AD = "\n\n[ad]\nSponsored · Test: **T** — body\n[/ad][link]https://ad.example[/link]\n\n"


class Source:
    """An ad source whose choice is ready (or not) as the test says."""

    def __init__(self, ready: bool = True, blocks: int = 5) -> None:
        self.is_ready = ready
        self.blocks = blocks
        self.outcome: tuple[str, int] | None = None
        self.out: list[Event] = []  # what the consumer had received (set by `run`)
        self.started_after: int | None = None
        """How many events had gone out when the choice started (None: never started)."""

    def start(self) -> None:
        if self.started_after is None:
            self.started_after = len(self.out)

    def ready(self) -> AdBlock | None:
        if not self.is_ready or not self.blocks:
            return None
        self.blocks -= 1
        return AdBlock(
            AD, ad_id="test", advertiser="Test", title="T", body="body", url="https://ad.example"
        )

    async def wait(self) -> AdBlock | None:
        self.is_ready = True
        return self.ready()

    def pending(self) -> bool:
        return self.blocks > 0

    def finish(self, outcome: str, placed: int) -> None:
        self.outcome = (outcome, placed)


async def _events(items: list[Event]) -> AsyncIterator[Event]:
    for item in items:
        yield item


def run(pieces: list[str], source: Source, finish: str = "stop", **options: object) -> list[Event]:
    async def main() -> list[Event]:
        items: list[Event] = [TextDelta(p) for p in pieces]
        items += [Finish(finish), Usage(1, 2, 3)]  # type: ignore[arg-type]
        async for event in splice_ads(_events(items), source, **options):  # type: ignore[arg-type]
            source.out.append(event)
        return source.out

    return asyncio.run(main())


def text_of(events: list[Event]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


ANSWER = (
    "Paris is the capital of France. It has about two million people, e.g. in the centre. "
    "The Eiffel Tower was built in 1889 for the World's Fair.\n\n"
    "Here is some code:\n\n```python\nprint('a. B')\n```\n\nThat is all for now. Enjoy your trip."
)


def test_ad_goes_at_first_safe_point_after_min_length() -> None:
    source = Source()
    events = run([ANSWER[i : i + 7] for i in range(0, len(ANSWER), 7)], source, min_chars=40)
    out = text_of(events)
    assert out.count(AD) == 1
    assert out.replace(AD, "") == ANSWER
    assert out.index(AD) == ANSWER.index("The Eiffel")  # after "people, e.g. in the centre. "
    assert source.outcome == ("placed", 1)


def test_the_choice_starts_after_three_quarters_of_the_minimum_have_gone_out() -> None:
    source = Source()
    run(["0123456789"] * 10, source, min_chars=60)
    assert source.started_after == 5  # 45 characters out: the first token never waits for it


def test_an_answer_too_short_for_an_ad_costs_no_choice() -> None:
    source = Source()
    events = run(["Hi there."], source, min_chars=40)
    assert text_of(events) == "Hi there."
    assert source.started_after is None
    assert source.outcome == ("too_short", 0)


def test_ad_is_its_own_delta_and_text_is_split_not_delayed() -> None:
    source = Source()
    events = run(["Short first sentence. Second", " one here."], source, min_chars=5)
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert deltas == ["Short first sentence. ", AD, "Second", " one here."]


def test_not_ready_at_safe_points_falls_back_to_the_end() -> None:
    source = Source(ready=False)
    events = run([ANSWER], source, min_chars=40)
    texts = [e.text for e in events if isinstance(e, TextDelta)]
    assert texts == [ANSWER, AD]
    assert isinstance(events[-2], Finish) and isinstance(events[-1], Usage)


def test_end_placement_puts_the_ad_after_the_answer() -> None:
    events = run([ANSWER], Source(), min_chars=10, placement="end")
    assert [e.text for e in events if isinstance(e, TextDelta)] == [ANSWER, AD]


def test_short_answers_get_no_ad() -> None:
    source = Source()
    events = run(["Hi there. How are you?"], source, min_chars=200)
    assert AD not in text_of(events)
    assert source.outcome == ("too_short", 0)


def test_tool_call_responses_get_no_ad() -> None:
    async def main() -> list[Event]:
        items: list[Event] = [
            TextDelta(ANSWER),
            ToolCallDelta(0, "{}", "c1", "f"),
            Finish("tool_calls"),
        ]
        return [e async for e in splice_ads(_events(items), source, min_chars=5, placement="end")]

    source = Source()
    assert AD not in text_of(asyncio.run(main()))
    assert source.outcome == ("tool_calls", 0)


def test_content_filter_and_unclosed_code_get_no_ad() -> None:
    source = Source()
    run(["x" * 300], source, finish="content_filter", min_chars=10, placement="end")
    assert source.outcome == ("content_filter", 0)
    source = Source()
    run(
        ["Intro text here.\n\n```python\nwhile True:\n    pass"],
        source,
        min_chars=5,
        placement="end",
    )
    assert source.outcome == ("unsafe_end", 0)


def test_max_ads_are_spaced_by_min_length() -> None:
    text = "".join(f"Sentence number {i} is here. " for i in range(40))
    events = run(
        [text[i : i + 5] for i in range(0, len(text), 5)], Source(), min_chars=100, max_ads=3
    )
    out = text_of(events)
    assert out.count(AD) == 3
    positions = []
    rest = out
    while AD in rest:
        positions.append(len(rest[: rest.index(AD)]))
        rest = rest.replace(AD, "", 1)
    assert positions[0] >= 100 and all(b - a >= 100 for a, b in itertools.pairwise(positions))
    assert rest == text


def test_no_ad_outcome_when_source_has_nothing() -> None:
    source = Source(blocks=0)
    run([ANSWER], source, min_chars=10)
    assert source.outcome == (NO_AD, 0)


def test_closed_stream_counts_as_incomplete() -> None:
    async def main() -> None:
        stream = splice_ads(_events([TextDelta(ANSWER), Finish("stop")]), source, min_chars=10)
        await anext(stream)
        await stream.aclose()

    source = Source()
    asyncio.run(main())
    assert source.outcome is not None and source.outcome[0] == "incomplete"


_markdown = st.lists(
    st.sampled_from(
        [
            "Plain sentence one. ",
            "Dr. Smith met Mr. Jones at 3.14 p.m. today. ",
            "Visit https://x.example/a.b now. ",
            "Mail a.b@c.example please! ",
            "\n\n",
            "- item one\n- item two\n",
            "```\ncode. Here\n```\n",
            "`x. Y` inline. ",
            "| a | b |\n|---|---|\n",
            "# Heading. Yes\n",
            "> quote. Here\n",
            "Wait... What? ",
            "Café ☕ naïve 日本語。 ",
            "Emoji 🎉 here. Next one. ",
            "v2.0 is out. So is 1.2.3. ",
        ]
    ),
    max_size=25,
).map("".join)


@settings(max_examples=150, deadline=None)
@given(
    text=st.one_of(_markdown, st.text(max_size=400)),
    cuts=st.lists(st.integers(min_value=0, max_value=500), max_size=30),
    min_chars=st.integers(min_value=0, max_value=300),
    ready=st.booleans(),
)
def test_removing_the_ad_gives_back_the_exact_answer(
    text: str, cuts: list[int], min_chars: int, ready: bool
) -> None:
    bounds = sorted({0, len(text), *(c % (len(text) + 1) for c in cuts)})
    pieces = [text[a:b] for a, b in itertools.pairwise(bounds)] or [text]
    source = Source(ready=ready, blocks=1)
    events = run(pieces, source, min_chars=min_chars)
    out = text_of(events)
    assert out.replace(AD, "") == text
    assert out.count(AD) <= 1
    if out.count(AD) == 1:
        assert len(out[: out.index(AD)]) >= min(min_chars, len(text))
    else:
        assert source.outcome is not None and source.outcome[0] in ("too_short", "unsafe_end")


def test_answer_ending_in_a_list_item_still_gets_its_ad_at_the_end() -> None:
    source = Source()
    answer = "Here are the steps you need to follow today:\n\n- first step\n- last item"
    events = run([answer], source, min_chars=10, placement="end")
    assert [e.text for e in events if isinstance(e, TextDelta)] == [answer, AD]
    assert source.outcome == ("placed", 1)


def test_scanning_stops_once_no_ad_can_come() -> None:
    source = Source(blocks=0)
    text = "One sentence here. Another one there. " * 20
    events = run([text[i : i + 9] for i in range(0, len(text), 9)], source, min_chars=10)
    assert text_of(events) == text
    assert source.outcome == (NO_AD, 0)


def test_the_ad_is_an_ad_block_event_carrying_its_fields() -> None:
    events = run(["Short first sentence. ", "Second one here."], Source(), min_chars=10)
    blocks = [e for e in events if isinstance(e, AdBlock)]
    assert len(blocks) == 1
    assert (blocks[0].ad_id, blocks[0].advertiser, blocks[0].url) == (
        "test",
        "Test",
        "https://ad.example",
    )
    plain = "".join(
        e.text for e in events if isinstance(e, TextDelta) and not isinstance(e, AdBlock)
    )
    assert plain == "Short first sentence. Second one here."


def _run_items(items: list[Event], source: Source, **options: object) -> list[Event]:
    async def main() -> list[Event]:
        return [e async for e in splice_ads(_events(items), source, **options)]  # type: ignore[arg-type]

    return asyncio.run(main())


def test_reasoning_never_counts_toward_placement_and_passes_untouched() -> None:
    thinking = [ReasoningDelta(ANSWER[i : i + 9]) for i in range(0, len(ANSWER), 9)]
    source = Source()
    events = _run_items([*thinking, TextDelta("Hi there."), Finish("stop")], source, min_chars=40)
    assert [e for e in events if isinstance(e, ReasoningDelta)] == thinking
    assert not any(isinstance(e, AdBlock) for e in events)
    assert source.outcome == ("too_short", 0)


def test_an_ad_goes_in_the_answer_never_in_the_reasoning() -> None:
    source = Source()
    items: list[Event] = [
        ReasoningDelta("First thought. Second thought. "),
        *(TextDelta(ANSWER[i : i + 7]) for i in range(0, len(ANSWER), 7)),
        ReasoningDelta("A late thought. "),
        Finish("stop"),
    ]
    events = _run_items(items, source, min_chars=40)
    out = text_of(events)
    assert out.replace(AD, "") == ANSWER
    assert out.index(AD) == ANSWER.index("The Eiffel")  # as if the reasoning were not there
    thoughts = "".join(e.text for e in events if isinstance(e, ReasoningDelta))
    assert thoughts == "First thought. Second thought. A late thought. "
