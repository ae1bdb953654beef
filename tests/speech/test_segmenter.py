"""The segmenter: where answers are cut for speech, and what is said of their markdown."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from echo_stream.providers.mock import _ANSWER
from echo_stream.speech.segmenter import CODE_PLACEHOLDER, Segmenter, SpokenText

ANSWER = _ANSWER.format(topic="voices")


def segments(pieces: list[str], **options: int) -> list[str]:
    segmenter = Segmenter(**options)
    out: list[str] = []
    for piece in pieces:
        out += segmenter.feed(piece)
    return out + segmenter.flush()


def spoken(markdown: str) -> str:
    text = SpokenText()
    return " ".join((text.feed(markdown) + text.flush()).split())


def test_cuts_at_the_first_sentence_end_after_the_target() -> None:
    sentence = "This sentence is exactly long enough. "
    out = segments([sentence * 6], target=100, first_target=100)
    # 38 characters a sentence: the third one ends past 100 characters.
    assert out[0] == (sentence * 3).strip()
    assert out[1] == (sentence * 3).strip()


def test_the_first_segment_is_shorter() -> None:
    text = "Hello there, friend. " + "Then a much longer second sentence follows it here. " * 4
    out = segments([text], target=100, first_target=15)
    assert out[0] == "Hello there, friend."
    assert all(len(s) >= 100 for s in out[1:-1])
    # The first segment may end at a clause end too; later ones wait for a sentence end.
    text = "Well, here is a first clause, and then more words. " * 4
    out = segments([text], target=60, first_target=20)
    assert out[0] == "Well, here is a first clause,"
    assert out[1] == "and then more words. Well, here is a first clause, and then more words."


def test_no_cut_after_abbreviations_decimals_initials_or_in_urls() -> None:
    text = (
        "Some units (e.g. metres and feet) are used here. Pi is about 3.14 and J. Smith knows it. "
        "Read https://example.com/a.b?q=1. It helps. The end."
    )
    out = segments([text], target=30, first_target=30)
    assert out == [
        "Some units (e.g. metres and feet) are used here.",
        "Pi is about 3.14 and J. Smith knows it.",
        "Read example.com. It helps. The end.",
    ]


def test_clause_end_then_word_boundary_when_no_sentence_ends() -> None:
    clause = "words without any full stop in them, "
    out = segments([clause * 12], target=100, first_target=100, max_chars=200)
    assert all(len(s) <= 200 for s in out)
    assert all(s.endswith(",") for s in out[:-1])
    no_clause = "word " * 100
    out = segments([no_clause], target=100, first_target=100, max_chars=200)
    assert all(len(s) <= 200 for s in out) and len(out) >= 3
    assert " ".join(out).split() == no_clause.split()


def test_code_blocks_are_replaced_by_a_placeholder() -> None:
    text = "Run this:\n\n```python\nprint('a. b. c.')\nx = 1\n```\n\nThen it works."
    assert spoken(text) == f"Run this: {CODE_PLACEHOLDER} Then it works."


def test_urls_links_and_markdown_syntax_are_not_read_verbatim() -> None:
    text = (
        "# Title\n\nSee [the guide](https://docs.example.org/guide) and "
        "https://www.python.org/downloads/. Use `run_chat` **now**, _really_.\n\n"
        "- first item\n- second item\n\n> a quote\n\n---\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
        "<b>bold</b> ![a cat](cat.png) and a very long `x = some_function(argument, other)`."
    )
    assert spoken(text) == (
        "Title. See the guide and python.org. Use run_chat now, really. first item. "
        "second item. a quote. a, b. 1, 2. bold a cat and a very long this code."
    )


def test_an_unclosed_fence_says_nothing_more() -> None:
    assert segments(["Look:\n```\nsecret code. More code.\n"]) == ["Look: " + CODE_PLACEHOLDER]


def test_only_markup_gives_no_segment() -> None:
    assert segments(["```\ncode\n```\n", "---\n"]) == [CODE_PLACEHOLDER]
    assert segments(["**", "  ", "\n\n"]) == []


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(ANSWER) - 1), max_size=80))
def test_cuts_do_not_depend_on_how_the_answer_was_chunked(offsets: list[int]) -> None:
    cuts = sorted(set(offsets))
    pieces = [ANSWER[i:j] for i, j in zip([0, *cuts], [*cuts, len(ANSWER)], strict=True)]
    assert segments(pieces) == segments([ANSWER])


def test_the_mock_answer_is_said_in_order_without_code() -> None:
    out = segments([ANSWER])
    assert out[0].startswith("Thanks for asking")
    assert CODE_PLACEHOLDER in " ".join(out)
    assert "print(" not in " ".join(out) and "http" not in " ".join(out)
    assert out[-1].endswith("handy for demos and tests.")


RICH = (
    "# Title\n\nSee [the guide](https://docs.example.org/guide) and https://www.python.org/x. "
    "Use `run_chat` **now**, _really_. Some units (e.g. metres) measure 3.14 things.\n\n"
    "- first item\n- second item\n\n> a quote\n\n---\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
    "```js\nlet x = 1;\n```\n<b>bold</b> ![a cat](cat.png) and `x = some_function(arg, other)`. "
    'A <a href="https://x.org">real link</a> ends it.'
)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(RICH) - 1), max_size=60))
def test_markdown_handling_does_not_depend_on_chunking(offsets: list[int]) -> None:
    cuts = sorted(set(offsets))
    pieces = [RICH[i:j] for i, j in zip([0, *cuts], [*cuts, len(RICH)], strict=True)]
    options = {"target": 30, "first_target": 20, "max_chars": 80}
    assert segments(pieces, **options) == segments([RICH], **options)
