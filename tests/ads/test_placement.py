"""Tests for the ad placement scanner: where an ad may go in streamed markdown."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from echo_stream.ads.placement import PlacementScanner

MARK = "▸"  # marks an expected insertion point in the unit cases below


def points(pieces: Iterable[str], min_chars: int = 0) -> list[int]:
    """Feed `pieces` to a fresh scanner; the points found, as absolute positions in the text."""
    scanner = PlacementScanner(min_chars)
    found: list[int] = []
    base = 0
    for piece in pieces:
        offsets = scanner.feed(piece)
        assert offsets == sorted(set(offsets))
        assert all(0 <= offset <= len(piece) for offset in offsets)
        found += [base + offset for offset in offsets]
        base += len(piece)
    return found


def unmark(marked: str) -> tuple[str, list[int]]:
    """Split a case written with MARKs into its text and the absolute positions of the marks."""
    parts = marked.split(MARK)
    positions, pos = [], 0
    for part in parts[:-1]:
        pos += len(part)
        positions.append(pos)
    return "".join(parts), positions


def split_at(text: str, cuts: Iterable[int]) -> list[str]:
    """Cut `text` into pieces at the given positions."""
    bounds = [0, *sorted(set(cuts)), len(text)]
    return [text[a:b] for a, b in itertools.pairwise(bounds)]


def word_pieces(text: str) -> list[str]:
    """Cut `text` the way most providers stream it: each word with the whitespace before it."""
    return re.findall(r"\s*\S+|\s+", text)


def assert_points(marked: str) -> None:
    """The scanner finds exactly the marked points, fed whole, a character or a word at a time."""
    text, expected = unmark(marked)
    assert points([text]) == expected
    assert points(list(text)) == expected
    assert points(word_pieces(text)) == expected


def test_helpers() -> None:
    assert unmark("One. ▸Two. ▸Three") == ("One. Two. Three", [5, 10])
    assert split_at("abcdef", [4, 1, 4]) == ["a", "bcd", "ef"]
    assert word_pieces("One, two.\n\n Three ") == ["One,", " two.", "\n\n Three", " "]
    assert points(["One. Tw", "o. Three"]) == [5, 10]


# --- where a point may be -------------------------------------------------------------------


@pytest.mark.parametrize(
    "marked",
    [
        "One. ▸Two! ▸Three? ▸Four.",
        "One.   ▸Two.",
        "One.\n▸Two continues the paragraph.",
        'He said "stop." ▸Then it ended.) ▸Next.',
        "It ended (quietly.) ▸Next one.",
        'Done. ▸"Quoted words" follow. ▸“Curly” too.',
        "Fin. ▸Élan is a word.",
        "Pi is 3.14. ▸The next one is v2.0. ▸Then 1.2.3. ▸Done.",
        "It happened in 2024. ▸Then it stopped.",
        "See [the docs](https://x.io/a.b). ▸Then run `make`. ▸Then rest.",
        "**Important.** ▸Read this.",
        "The first paragraph\n\n▸The second paragraph",
        "First.\n\n\n▸Third line after two blank lines.",
        "lowercase ending\n\n▸another paragraph",
        f"A word longer than any abbreviation {'x' * 60}. ▸Then more.",
        "Quotes and marks 'end here'. ▸Next (one!) ▸Then “this.” ▸Done.",
    ],
)
def test_points_in_plain_paragraphs(marked: str) -> None:
    assert_points(marked)


def test_points_as_absolute_positions() -> None:
    text = "Hello there. General Kenobi!\n\nYou are a bold one."
    assert points([text]) == [13, 30]
    assert points(split_at(text, [13, 29])) == [13, 30]


ABBREVIATIONS = [
    "e.g.", "i.e.", "etc.", "vs.", "Dr.", "Mr.", "Mrs.", "Ms.", "Prof.", "St.", "Jr.", "Sr.",
    "U.S.", "U.K.", "a.m.", "p.m.", "No.", "Fig.", "Inc.", "Ltd.", "J.", "(e.g.", "(i.e.",
    "Ph.D.", "cf.",
]  # fmt: skip


@pytest.mark.parametrize("abbreviation", ABBREVIATIONS)
def test_no_point_after_abbreviations(abbreviation: str) -> None:
    assert_points(f"Some words {abbreviation} Smith and Jones came.")


@pytest.mark.parametrize(
    "marked",
    [
        "Pi is about 3.14 Roughly, and v2.0 Beta and 1.2.3 Final.",
        "Visit https://example.com/a.b?c=d. Then rest.",
        "Visit https://example.com/a.b?c=d Today.",
        "Visit www.x.com. Then rest.",
        "Visit (WWW.x.com). Then rest.",
        f"Visit www.{'a' * 60}.com. Then rest.",
        "Mail a.b@c.com. Then rest.",
        "Wait... Then it came.",
        "Wait… Then it came.",
        "Wait.... Then it came.",
        "Step 1. Open the app.",
        "The end. then lowercase.",
        "The end. 3 more things.",
        "The end.Then no space.",
        "A colon: Then more.",
        'He said "yes," Then more.',
        "End. (then a bracket)",
    ],
)
def test_no_false_sentence_ends(marked: str) -> None:
    assert_points(marked)


# --- where a point must never be ------------------------------------------------------------


@pytest.mark.parametrize(
    "marked",
    [
        "```\nA. B\n\nC. D\n```",
        "```python\nx = 1  # A. B\n\nPrint. It\n```",
        "~~~\nA. B\n\nC. D\n~~~",
        "````md\nA. B\n```\n\nStill. Inside\n````",
        "~~~~\nA. B\n~~~\n\nStill. Inside\n~~~~",
        "```\n    ```\nIndented four. Is not a closing fence\n```",
        "<textarea>\nA. B\n\nC. D\n</textarea>",
        "<p>\nA. B\n</p>",
        "Text.\n\n    A. B\n\n    C. D",
        "Use `a. B` and ``x. `Y` z`` now",
        "| a. B | c |\n|---|---|\n| d. E | f |\nG. H",
        "- One. Two\n- Three. Four\n  Five. Six\nLazy. Line",
        "* One. Two\n+ Three. Four",
        "1. One. Two\n2) Three. Four",
        "- item\n\n  Continued. Here",
        "> A. B\nLazy. Continuation\n\n> C. D",
        "# Title. Here\n## Sub. Title",
        "<div>\nA. B\n</div>",
        "Hi <span title='a. B'>there",
        "<!--\nA. B\n\nC. D\n-->",
        "<pre>\nA. B\n\nC. D\n</pre>",
        "$$\nA. B\n\nC. D\n$$",
        "Let $x. Y$ be",
        "[A. B](u) and ![C. D](e. F) and <https://a.b. C>",
        "Here is the list:\n\nFirst item",
        "Intro\n\n- a list",
        "Intro\n\n```\ncode\n```",
        "Intro\n\n# Heading",
        "Intro\n\n| a | b |",
        "Intro\n\n> quote",
        "Intro\n\n1. item",
        "Intro\n\n    code",
        "Intro\n\n<div>",
        "Intro\n\n  indented paragraph",
        "\n\nNothing before this paragraph",
    ],
)
def test_no_points_inside_blocks_and_spans(marked: str) -> None:
    assert_points(marked)


@pytest.mark.parametrize(
    "marked",
    [
        "```\ncode\n```\n\n▸After code. ▸Yes.",
        "- a\n- b\n\n▸After the list. ▸Yes.",
        "| a | b |\n|---|---|\n\n▸After the table. ▸Yes.",
        "> quote\n\n▸After the quote. ▸Yes.",
        "# Heading\n\n▸After the heading. ▸Yes.",
        "    code\n\n▸After indented code. ▸Yes.",
        "<div>\nhi\n</div>\n\n▸After HTML. ▸Yes.",
        "$$\nx\n$$\n\n▸After math. ▸Yes.",
        "Here:\n\n- a\n\n▸After the list the colon no longer counts.",
        "# Heading\nRight under it. ▸Sentence points work.",
        "An open `span ends with its paragraph.\n\n▸Next. ▸Para.",
        "Sentence.\n# Heading\nNo point right under a heading. ▸Here yes.",
    ],
)
def test_points_after_a_block_ends(marked: str) -> None:
    assert_points(marked)


def test_split_fence_is_still_a_fence() -> None:
    pieces = ["Intro.\n\n`", "`", "`py\nA. B\n\nC. D\n`", "``", "\n\nAfter. ", "Yes"]
    text = "".join(pieces)
    assert points(pieces) == [text.index("After"), text.index("Yes")]


def test_point_at_offset_zero_of_the_next_piece() -> None:
    scanner = PlacementScanner()
    assert scanner.feed("One. ") == []
    assert scanner.feed("Two") == [0]
    assert scanner.feed(".\n\n") == []
    assert scanner.feed("Three") == [0]


def test_point_confirmed_later_in_the_same_piece() -> None:
    scanner = PlacementScanner()
    assert scanner.feed("One. Two. Three") == [5, 10]


def test_min_chars() -> None:
    text = "One. Two. Three. Four."
    assert points([text]) == [5, 10, 17]
    assert points([text], min_chars=10) == [10, 17]
    assert points(list(text), min_chars=11) == [17]
    assert points([text], min_chars=100) == []


# --- end_is_safe ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "safe"),
    [
        ("", True),
        ("One sentence.", True),
        ("One sentence. ", True),
        ("One sentence.\n\n", True),
        ("Half a sente", False),
        ("Half a sentence\n", False),
        ("Dr.", False),
        ("Look at `code. ", False),
        ("Intro.\n\n```python\nx = 1\n", False),
        ("Intro.\n\n```python\nx = 1\n```", True),
        ("Intro.\n\n```python\nx = 1\n```\n", True),
        ("Intro.\n\n``", False),
        ("Intro.\n\n    code\n\n", False),
        ("- item one\n", False),
        ("- item one\n\n", True),
        ("| a | b |\n", False),
        ("# Heading", False),
        ("# Heading\n", True),
        ("Steps:\n\n", False),
        ("Steps:", False),
        ("$$\nx = 1\n", False),
        ("<pre>\ncode\n", False),
    ],
)
def test_end_is_safe(text: str, safe: bool) -> None:
    for pieces in ([text], list(text)):
        scanner = PlacementScanner()
        for piece in pieces:
            scanner.feed(piece)
        assert scanner.end_is_safe() is safe


# --- a realistic answer ---------------------------------------------------------------------

ANSWER = """\
To read a CSV file in Python, use the built-in `csv` module. ▸It handles quoting for you.

▸There are three common approaches:

- `csv.reader` for rows as lists. It is the simplest.
- `csv.DictReader` for rows as dicts. Keys come from the header.
- `pandas.read_csv` for data frames. It needs pandas installed.

▸Here is an example:

```python
import csv

with open("data.csv", newline="") as f:
    for row in csv.DictReader(f):
        print(row["name"])  # Prints each name. One per line.
```

▸The `newline=""` argument matters on Windows. ▸Without it, you may see blank rows.
"""


def test_realistic_answer_gets_points_only_in_plain_paragraphs() -> None:
    text, expected = unmark(ANSWER)
    assert points([text]) == expected
    assert points(text[i : i + 4] for i in range(0, len(text), 4)) == expected
    scanner = PlacementScanner()
    scanner.feed(text)
    assert scanner.end_is_safe()


# --- properties -----------------------------------------------------------------------------

TOKENS = [
    "```", "~~~", "`", "``", "$", "$$", "\n", "\n\n", " ", "    ", "\t", "\r\n", ". ", "! ", "? ",
    "...", "…", "e.g.", "Dr.", "J.", "A", "b", "Zed", "The", "3.14", "1. ", "2) ", "- ", "* ",
    "# ", "> ", "|", "<div>", "<pre>", "</pre>", "<!--", "-->", "<a", ">", "[", "]", "(", ")",
    "](", "https://", "www.", "@", ":", "\\", '"', "“", "”", "😀", "é", "Über", "---", "===",
    "**", "_",
]  # fmt: skip

markdownish = st.lists(st.sampled_from(TOKENS) | st.text(max_size=3), max_size=60).map("".join)


@settings(max_examples=150, deadline=None)
@given(text=markdownish, data=st.data())
def test_chunking_does_not_change_the_points(text: str, data: st.DataObject) -> None:
    cuts = data.draw(st.lists(st.integers(0, len(text)), max_size=len(text)))
    whole = points([text])
    assert points(list(text)) == whole
    assert points(split_at(text, cuts)) == whole
    scanners = [PlacementScanner(), PlacementScanner()]
    scanners[0].feed(text)
    for piece in split_at(text, cuts):
        scanners[1].feed(piece)
    assert scanners[0].end_is_safe() == scanners[1].end_is_safe()


@settings(max_examples=80, deadline=None)
@given(text=markdownish, min_chars=st.integers(0, 200))
def test_min_chars_only_filters(text: str, min_chars: int) -> None:
    assert points([text], min_chars) == [p for p in points([text]) if p >= min_chars]


@dataclass(frozen=True)
class Span:
    """A stretch of a generated document and what it is."""

    kind: str
    start: int
    end: int


WORDS = [
    "alpha", "Beta", "gamma", "Delta", "e.g.", "Dr.", "3.14", "v2.0", "https://x.io/a.b",
    "a.b@c.io", "J.", "etc.", "😀", "naïve", "Über", "(Note.)", '"Quote."', "Zeta",
]  # fmt: skip


@st.composite
def sentences(draw: st.DrawFn) -> str:
    """A run of words ending in some punctuation."""
    words = draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=5))
    return " ".join(words) + draw(st.sampled_from([".", "!", "?", "...", ":", ""]))


@st.composite
def documents(draw: st.DrawFn) -> tuple[str, list[Span]]:
    """A markdown-ish document and the spans of its blocks and inline code."""
    text, spans = "", []
    for _ in range(draw(st.integers(1, 7))):
        if text:
            text += "\n\n"
        start = len(text)
        kind = draw(st.sampled_from(["para", "para", "list", "code", "table", "heading", "quote"]))
        if kind == "para":
            lines = draw(st.lists(sentences(), min_size=1, max_size=4))
            for i, line in enumerate(lines):
                if i:
                    text += draw(st.sampled_from([" ", "\n"]))
                if draw(st.booleans()):
                    code_start = len(text) + len(line) + 1
                    line += " `Code. Span` Tail."
                    spans.append(Span("inline code", code_start, code_start + 12))
                text += line
        elif kind == "list":
            marker = draw(st.sampled_from(["- ", "* ", "1. "]))
            items = draw(st.lists(sentences(), min_size=1, max_size=3))
            text += "\n".join(marker + item + " More. Words." for item in items)
        elif kind == "code":
            body = "\n".join(draw(st.lists(sentences(), max_size=3)))
            text += draw(st.sampled_from(["```", "```python\n", "~~~\n"])).rstrip("\n")
            text += "\n" + body + "\n\nAfter. Blank\n" + text[start : start + 3]
        elif kind == "table":
            text += f"| {draw(sentences())} Next. | x |\n|---|---|\n| Cell. Two | y |"
        elif kind == "heading":
            text += "# " + draw(sentences()) + " Head. Line"
        else:
            text += "> " + draw(sentences()) + "\n> Quoted. Line"
        spans.append(Span(kind, start, len(text)))
    return text, spans


@settings(max_examples=60, deadline=None)
@given(doc=documents(), min_chars=st.integers(0, 100), data=st.data())
def test_points_only_in_plain_paragraphs(
    doc: tuple[str, list[Span]], min_chars: int, data: st.DataObject
) -> None:
    text, spans = doc
    cuts = data.draw(st.lists(st.integers(0, len(text)), max_size=20))
    found = points(split_at(text, cuts), min_chars)
    for p in found:
        assert p >= min_chars
        assert any(s.kind == "para" and s.start <= p < s.end for s in spans), (text, p)
        assert not any(s.kind == "inline code" and s.start < p < s.end for s in spans)
        before = text[:p].rstrip()
        if text[:p].endswith("\n\n"):
            assert not before.endswith(":")  # a colon introduces what follows


@settings(max_examples=40, deadline=None)
@given(doc=documents())
def test_paragraph_breaks_before_plain_paragraphs_are_found(doc: tuple[str, list[Span]]) -> None:
    text, spans = doc
    found = set(points([text]))
    blocks = [s for s in spans if s.kind != "inline code"]
    for after in blocks[1:]:
        if after.kind != "para":
            continue
        # Only the colon rule and a non-letter first character stand in the way.
        expected = not text[: after.start].rstrip().endswith(":") and text[after.start].isalpha()
        assert (after.start in found) == expected, (text, after.start)


@settings(max_examples=150, deadline=None)
@given(text=markdownish | documents().map(lambda doc: doc[0]))
def test_word_pieces_find_the_same_points(text: str) -> None:
    """Pieces shaped like most providers' tokens, which take the scanner's shortcuts."""
    pieces = word_pieces(text)
    assert points(pieces) == points([text])
    scanners = [PlacementScanner(), PlacementScanner()]
    scanners[0].feed(text)
    for piece in pieces:
        scanners[1].feed(piece)
    assert scanners[0].end_is_safe() == scanners[1].end_is_safe()
