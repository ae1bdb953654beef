"""Finding safe points to splice an ad block into markdown answer text that streams in pieces.

A point is either a paragraph break in front of a new plain paragraph, or a sentence end inside
a plain paragraph; never inside code, tables, lists, quotes, headings, HTML, math or links.

The scanner is a character-at-a-time state machine, and a point is decided by the character
right after it (the first character of the next sentence or paragraph). So every point can be
reported in the call that feeds that character, and the points found never depend on how the
answer was chunked. Whole lines that cannot hold a point (code, list items, table rows) are
skipped with `str.find`, and plain words are taken in one regex match, to keep a call cheap.
"""

from __future__ import annotations

import re
from enum import Enum, auto

__all__ = ["PlacementScanner"]


class _Block(Enum):
    """The markdown block the scanner is in."""

    NONE = auto()  # between blocks
    PARA = auto()  # plain paragraph: the only block with sentence points
    LIST = auto()
    QUOTE = auto()
    TABLE = auto()
    HTML = auto()  # HTML block that a blank line ends
    RAW_HTML = auto()  # <pre>, <script>, <style>, <textarea>, <!--: ends at its closing marker
    FENCE = auto()
    INDENT_CODE = auto()
    MATH = auto()  # $$ ... $$
    CLOSED = auto()  # a heading, rule or closing line: the block ends with the line


class _Line(Enum):
    """What the scanner does with the characters of the current line."""

    START = auto()  # reading indentation and the first characters, to classify the line
    PARA = auto()  # a plain paragraph line: inline scanning
    FENCE = auto()  # a line inside a fenced block: is it the closing fence?
    RAW = auto()  # inside raw HTML or $$ math: looking for the closing marker
    SKIP = auto()  # nothing on the rest of this line matters


_SPACE = " \t\r\n"
# A sentence may start with one of these as well as with an uppercase letter.
_SENTENCE_OPENERS = '"\u201c'
# Stripped from a word before checking its sentence-ending punctuation.
_CLOSERS = ")]\"'\u201d\u2019*_"
_OPENERS = "([\"'\u201c\u2018*_<"
# fmt: off
_ABBREVIATIONS = frozenset({
    "e.g", "i.e", "etc", "vs", "cf", "al", "approx", "dr", "mr", "mrs", "ms", "prof", "st", "mt",
    "jr", "sr", "u.s", "u.k", "a.m", "p.m", "no", "nos", "fig", "figs", "inc", "ltd", "co", "corp",
    "dept", "est", "vol", "ch", "sec", "eq", "ref", "gen", "gov", "sen", "rep", "rev", "capt",
    "lt", "col", "sgt", "hon", "ave", "rd", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep",
    "sept", "oct", "nov", "dec",
})
# fmt: on
# Raw HTML blocks, which only their closing marker ends (blank lines do not).
# fmt: off
_RAW_HTML = {"<!--": "-->", "<pre": "</pre>", "<script": "</script>", "<style": "</style>",
             "<textarea": "</textarea>"}
# fmt: on
# Characters that mean nothing special in plain paragraph text (taken in bulk by `feed`).
_ORDINARY = re.compile(r"[^\s.!?:/@\\`$\[\]()<>|\"\u201c]+")
_SPAN = "\x00"  # stands in a word for a whole code span, link or formula
_WORD_CAP = 48  # longer words are never abbreviations; keep only their tail


def _ends_sentence(word: str) -> bool:
    """True if `word`, followed by whitespace, ends a sentence."""
    if "://" in word or "@" in word or word.lower().lstrip(_OPENERS).startswith("www."):
        return False  # URLs and e-mail addresses
    core = word.rstrip(_CLOSERS)
    if not core or core[-1] not in ".!?":
        return False
    if core.endswith("..") or core.rstrip(".!?").endswith("…"):
        return False  # an ellipsis trails off rather than ends
    if core[-1] != ".":
        return True
    stem = core[:-1].lstrip(_OPENERS)
    if not stem or stem.lower() in _ABBREVIATIONS:
        return False
    if len(stem) == 1 and stem.isalpha():
        return False  # an initial, as in "J. Smith"
    if stem.isdigit() and len(stem) <= 3:
        return False  # a list marker such as "2."
    parts = stem.split(".")
    # Initialisms like "U.S." or "Ph.D." rather than a word at a sentence end.
    return len(parts) == 1 or not all(p.isalpha() and len(p) <= 2 for p in parts)


def _classify(head: str, eol: bool) -> _Block | None:
    """The block a line opens, judging by its first non-blank characters (None: need more).

    `_Block.PARA` means the line opens no block: it is text.
    """
    first, size = head[0], len(head)
    if first.isalpha():
        return _Block.PARA
    if first in "`~":
        run = size - len(head.lstrip(first))
        if run == size and not eol and size < 32:
            return None  # the fence's length decides which fence closes it
        return _Block.FENCE if run >= 3 else _Block.PARA
    if first == "#":
        run = size - len(head.lstrip("#"))
        if run == size and run <= 6:
            return _Block.CLOSED if eol else None
        return _Block.CLOSED if run <= 6 and head[run] in " \t" else _Block.PARA
    if first == ">":
        return _Block.QUOTE
    if first == "|":
        return _Block.TABLE
    if first in "-*+" and (size == 1 or head[1] in " \t"):
        return _Block.LIST if size > 1 or eol else None
    if first in "-*_=" and not head.strip(first + " \t"):
        # A rule or setext underline; decided early since both end the block.
        return _Block.CLOSED if size >= 3 or eol else None
    if first.isdigit():
        digits = size - len(head.lstrip("0123456789"))
        if digits == size:
            return None if digits < 10 and not eol else _Block.PARA
        if digits > 9 or head[digits] not in ".)":
            return _Block.PARA
        if size == digits + 1:
            return _Block.LIST if eol else None
        return _Block.LIST if head[digits + 1] in " \t" else _Block.PARA
    if first in "<$":
        if size == 1:
            return _Block.PARA if eol else None
        if first == "$":
            return _Block.MATH if head[1] == "$" else _Block.PARA
        if head[1].isalpha() or head[1] in "/!?":
            return _html_block(head + "\n" if eol else head)
        return _Block.PARA
    return _Block.PARA


def _html_block(head: str) -> _Block | None:
    """HTML or RAW_HTML for a line that starts with a tag; None while the tag name may go on."""
    low = head.lower()
    for opener in _RAW_HTML:
        if low.startswith(opener):
            after = low[len(opener) : len(opener) + 1]
            if opener == "<!--" or after in (" ", "\t", ">", "\n"):
                return _Block.RAW_HTML
            if not after:
                return None
        elif opener.startswith(low):
            return None
    return _Block.HTML


class _Inline:
    """Inline state of a plain paragraph: open spans and the sentence in progress."""

    __slots__ = (
        "after_bracket", "cand", "code", "dollars", "escaped", "link", "lt", "math", "paren",
        "pipe", "tag", "ticks", "url", "word",
    )  # fmt: skip

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget everything: a new paragraph starts."""
        self.code = self.ticks = self.math = self.dollars = self.link = self.paren = 0
        self.after_bracket = self.tag = self.lt = self.url = self.escaped = False
        self.cand = False  # the last word ended a sentence; only whitespace since
        self.pipe = False  # a "|" in plain text: the paragraph is really a table
        self.word = ""  # the word in progress (plain text; each span counts as _SPAN)

    def is_plain(self) -> bool:
        """True outside every inline span, with nothing pending."""
        return not (
            self.code or self.ticks or self.math or self.dollars or self.link or self.paren
            or self.after_bracket or self.tag or self.lt or self.url or self.escaped
        )  # fmt: skip

    def at_sentence_end(self) -> bool:
        """True if the text so far ends a sentence (possibly followed by whitespace)."""
        if not self.is_plain():
            return False
        return _ends_sentence(self.word) if self.word else self.cand

    def add(self, text: str) -> None:
        """Append plain text to the word in progress."""
        word = self.word + text
        self.word = word if len(word) <= _WORD_CAP else word[-_WORD_CAP:]

    def step(self, c: str) -> bool:
        """Consume one character; True if a sentence starts at it."""
        if self.ticks:
            if c == "`":
                self.ticks += 1
                return False
            self._end_tick_run()
        if self.code:  # only a backtick run as long as the opening one ends a code span
            if c == "`":
                self.ticks = 1
            return False
        if self.dollars:
            if c == "$":
                self.dollars += 1
                return False
            self._end_dollar_run(c)
        if self.math:
            if self.escaped:
                self.escaped = False
            elif c == "\\":
                self.escaped = True
            elif c == "$":
                self.dollars = 1
            return False
        pending = self.escaped or self.tag or self.lt or self.url or self.after_bracket
        if pending and self._leave_pending(c):
            return False
        if self.paren or self.link:
            self._link_char(c)
            return False
        if c in _SPACE:
            if self.word:
                self.cand = _ends_sentence(self.word)
                self.word = ""
            return False
        starts = self.cand and (c.isupper() or c in _SENTENCE_OPENERS)
        self.cand = False
        if c == "`":
            self.ticks = 1
        elif c == "$":
            self.dollars = 1
        elif c == "[":
            self.link = 1
        elif c == "<":
            self.lt = True
        elif c == "\\":
            self.escaped = True
        elif c == "|":
            self.pipe = True
        else:
            self.add(c)
            self._check_url(c)
        return starts

    def _leave_pending(self, c: str) -> bool:
        """Handle `c` after an escape, "<", URL or "]"; True if nothing more is to be done."""
        if self.escaped:
            self.escaped = False
            if c in _SPACE:
                return False  # a hard line break, not an escaped character
            if not (self.link or self.paren):
                self.cand = False
                self.add(c)
            return True
        if self.tag:
            self.tag = c != ">"
            return True
        if self.lt:
            self.lt = False
            if c.isalpha() or c in "/!?":
                self.tag = True  # an HTML tag or an autolink
                return True
            self.add("<")
        if self.url:
            if c not in _SPACE:
                return True
            self.url = False
        if self.after_bracket:
            self.after_bracket = False
            if c in "([":
                self.paren, self.link = (1, 0) if c == "(" else (0, 1)
                return True
            self.add(_SPAN)  # plain brackets after all
        return False

    def _link_char(self, c: str) -> None:
        """Consume a character of link text "[...]" or of a link target "(...)"."""
        if self.paren:
            if c == "(":
                self.paren += 1
            elif c == ")":
                self.paren -= 1
                if not self.paren:
                    self.add(_SPAN)
            return
        if c == "[":
            self.link += 1
        elif c == "]":
            self.link -= 1
            self.after_bracket = not self.link
        elif c == "`":
            self.ticks = 1
        elif c == "\\":
            self.escaped = True

    def _end_tick_run(self) -> None:
        """A run of backticks ended: it opens or closes a code span, or is code content."""
        run, self.ticks = self.ticks, 0
        if not self.code:
            self.code = run
        elif run == self.code:
            self.code = 0
            self.add(_SPAN)

    def _end_dollar_run(self, c: str) -> None:
        """A run of "$" ended just before `c`: math opens or closes, or it was a price."""
        run, self.dollars = self.dollars, 0
        if self.math:
            if run >= self.math:
                self.math = 0
                self.add(_SPAN)
        elif run >= 2:
            self.math = 2
        elif c in _SPACE or c.isdigit():
            self.add("$")  # "$5", not the start of inline math
        else:
            self.math = 1

    def _check_url(self, c: str) -> None:
        """Enter URL mode once the word turns out to be a URL ("://" or a leading "www.")."""
        word = self.word
        if (c == "/" and word.endswith("://")) or (
            c == "." and word.lower().lstrip(_OPENERS) == "www."
        ):
            self.url = True


class PlacementScanner:
    """Finds safe points to insert an ad block into markdown answer text that arrives in pieces."""

    def __init__(self, min_chars: int = 0) -> None:
        self._min_chars = min_chars
        self._pos = 0  # characters fed so far
        self._block = _Block.NONE
        self._blank = False  # a blank line follows the last content line
        self._seen_content = False
        self._colon = False  # the last content line ended with ":"
        self._inline = _Inline()
        self._fence_char = "`"
        self._fence_len = 3
        self._fence_indent = 0
        self._raw_end = ""
        self._new_line(_Line.START)

    def feed(self, text: str) -> list[int]:
        """Consume the next piece of the answer; return offsets into it of newly confirmed points.

        Offsets are in 0..len(text), increasing, and only those with at least `min_chars`
        characters of the answer before them.
        """
        points: list[int] = []
        base, i, n = self._pos, 0, len(text)
        inline = self._inline
        while i < n:
            line = self._line
            if line is _Line.SKIP:  # jump to the end of the line, noting its last character
                end = text.find("\n", i)
                stop = n if end < 0 else end
                tail = text[i:stop].rstrip(" \t\r")
                if tail:
                    self._last = tail[-1]
                if end < 0:
                    break
                i = end
            elif line is _Line.PARA and not inline.cand and inline.is_plain():
                match = _ORDINARY.match(text, i)
                if match:  # a run of plain word characters: no point can be among them
                    i = match.end()
                    inline.add(match.group())
                    self._last = text[i - 1]
                    continue
            if self._step(text[i]) and base + i >= self._min_chars:
                points.append(i)
            i += 1
        self._pos = base + n
        return points

    def end_is_safe(self) -> bool:
        """True if an ad added after all text fed so far would not land inside code, a table, etc.

        False, for example, while a fenced code block is still open; also mid-sentence, after a
        list item or table row that more may follow, and after a line ending in ":".
        """
        line, block = self._line, self._block
        if self._pos == 0:
            return True
        if block is _Block.FENCE:
            # Right after a complete closing fence whose line end has not arrived yet.
            return line is _Line.FENCE and self._run >= self._fence_len
        if block in (_Block.RAW_HTML, _Block.MATH, _Block.INDENT_CODE):
            return False
        if line is _Line.PARA:
            return self._inline.at_sentence_end()
        if line is not _Line.START or self._head:
            return False  # inside a list item, table row, heading...; or a marker half read
        if self._colon:
            return False
        if self._blank or block is _Block.NONE:
            return True
        # Just after a line end: a paragraph may end here, a list or table may go on.
        return block is _Block.PARA and self._inline.at_sentence_end()

    def _new_line(self, line: _Line) -> None:
        """Start reading a new line in the given mode."""
        self._line = line
        self._indent = 0
        self._head = ""  # the first non-blank characters, while the line is being classified
        self._last = ""  # the last non-blank character so far
        self._run = 0  # fence characters opening a line inside a fence
        self._trailing = False  # only blanks may follow that run on a closing fence
        self._tail = ""  # the last few characters, in raw HTML or math

    def _step(self, c: str) -> bool:
        """Consume one character; True if it is the first character after a safe point."""
        if c == "\n":
            self._end_line()
            return False
        line = self._line
        if line is _Line.START:
            return self._line_start(c)
        if c not in " \t\r":
            self._last = c
        if line is _Line.PARA:
            return self._para_char(c)
        if line is _Line.FENCE:
            self._fence_line_char(c)
        elif line is _Line.RAW:
            end = self._raw_end
            self._tail = (self._tail + c.lower())[-len(end) :]
            if self._tail == end:
                self._block, self._line = _Block.CLOSED, _Line.SKIP
        return False

    def _line_start(self, c: str) -> bool:
        """Consume a character at the start of a line, until the line is classified."""
        if not self._head:
            if c in " \r":
                self._indent += c == " "
                return False
            if c == "\t":
                self._indent += 4 - self._indent % 4
                return False
        self._head += c
        kind = self._decide(eol=False)
        return False if kind is None else self._open_line(kind)

    def _decide(self, eol: bool) -> _Block | None:
        """The block the current line belongs to, given its head and context (None: need more)."""
        head, block = self._head, self._block
        lazy = (_Block.PARA, _Block.QUOTE, _Block.TABLE, _Block.HTML)
        if self._indent >= 4 and not (block is _Block.LIST and head[0] in "`~"):
            # Indented code cannot interrupt a paragraph, and lists hold indented lines.
            return block if block is _Block.LIST or block in lazy else _Block.INDENT_CODE
        kind = _classify(head, eol)
        if kind is not _Block.PARA:
            return kind
        if block in lazy:
            return block  # a continuation line (lazy, for quotes, tables and HTML)
        if block is _Block.LIST and (not self._blank or self._indent):
            return block
        return _Block.PARA

    def _open_line(self, kind: _Block) -> bool:
        """Enter the block the current line belongs to; True if a paragraph starts at a point."""
        head, was_blank = self._head, self._blank
        self._blank = False
        stripped = head.rstrip(" \t\r")
        if stripped:
            self._last = stripped[-1]
        point = False
        if kind is _Block.PARA and self._block is not _Block.PARA:  # a new paragraph
            point = (
                was_blank and self._seen_content and not self._colon
                and self._indent == 0 and len(head) == 1 and head.isalpha()
            )  # fmt: skip
            self._inline.reset()
        self._seen_content = True
        self._block = kind
        if kind is _Block.PARA:
            self._line = _Line.PARA
            starts = False
            for c in head:  # replay the characters held back while classifying
                starts = self._para_char(c)
                if self._line is not _Line.PARA:
                    break
            return point or starts
        if kind is _Block.FENCE:
            self._fence_char, self._fence_indent = head[0], self._indent
            self._fence_len = len(head) - len(head.lstrip(head[0]))
            self._line = _Line.SKIP  # the info string does not matter
        elif kind is _Block.MATH:
            self._raw_end, self._line = "$$", _Line.RAW
        elif kind is _Block.RAW_HTML:
            low = head.lower()
            self._raw_end = next(end for start, end in _RAW_HTML.items() if low.startswith(start))
            self._line = _Line.RAW
        else:
            self._line = _Line.SKIP
        return False

    def _para_char(self, c: str) -> bool:
        """Consume a character of a plain paragraph line; True if a sentence starts at it."""
        starts = self._inline.step(c)
        if self._inline.pipe:  # a table row without a leading "|"
            self._block, self._line = _Block.TABLE, _Line.SKIP
            return False
        return starts

    def _fence_line_char(self, c: str) -> None:
        """Consume a character of a line inside a fence, watching for the closing fence."""
        if not self._run and c in " \t":
            self._indent += 1 if c == " " else 4 - self._indent % 4
            if self._indent >= self._fence_indent + 4:
                self._line = _Line.SKIP
        elif c == self._fence_char and not self._trailing:
            self._run += 1
        elif c in " \t\r" and self._run >= self._fence_len:
            self._trailing = True
        else:
            self._line = _Line.SKIP

    def _end_line(self) -> None:
        """Handle a line end: decide a line still being classified, close blocks that end here."""
        if self._line is _Line.START:
            if not self._head:
                self._blank = True
                if self._block in (_Block.PARA, _Block.QUOTE, _Block.TABLE, _Block.HTML):
                    self._block = _Block.NONE
                self._new_line(_Line.START)
                return
            self._open_line(self._decide(eol=True) or _Block.PARA)
        line = self._line
        if line is _Line.PARA:
            self._inline.step("\n")
        elif line is _Line.FENCE and self._run >= self._fence_len:
            self._block = _Block.NONE
        if self._block is _Block.CLOSED:
            self._block = _Block.NONE
        self._colon = self._last == ":"
        if self._block is _Block.FENCE:
            self._new_line(_Line.FENCE)
        elif self._block in (_Block.RAW_HTML, _Block.MATH):
            self._new_line(_Line.RAW)
        else:
            self._new_line(_Line.START)
