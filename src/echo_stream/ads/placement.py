"""Finding safe points to splice an ad block into markdown answer text that streams in pieces.

A point is either a paragraph break in front of a new plain paragraph, or a sentence end inside
a plain paragraph; never inside code, tables, lists, quotes, headings, HTML, math or links.

The scanner is a character-at-a-time state machine, and a point is decided by the character
right after it (the first character of the next sentence or paragraph). So every point can be
reported in the call that feeds that character, and the points found never depend on how the
answer was chunked. Inside a plain paragraph the characters go to `InlineScanner` (module
`inline`), which tracks code spans, links and the like, and judges sentence ends.

Feeding is the ad filter's main cost per streamed piece, so the common shapes are cheap: plain
words and spaces in the middle of a paragraph (most pieces, whatever the provider) are taken a
word at a time rather than a character at a time, and the rest of a line that cannot hold a
point (code, list items, table rows) is skipped with `str.find`.
"""

from __future__ import annotations

from typing import NewType

from echo_stream.ads.inline import PLAIN_RUN, InlineScanner

__all__ = ["PlacementScanner"]

_BlockKind = NewType("_BlockKind", str)
_LineMode = NewType("_LineMode", str)


class _Block:
    """The markdown block the scanner is in.

    Constants rather than an `Enum` (here and in `_Line`): on CPython 3.11 every lookup of an
    Enum member costs about 0.1 µs, and the scanner makes many of them per piece.
    """

    NONE = _BlockKind("none")  # between blocks
    PARA = _BlockKind("para")  # plain paragraph: the only block with sentence points
    LIST = _BlockKind("list")
    QUOTE = _BlockKind("quote")
    TABLE = _BlockKind("table")
    HTML = _BlockKind("html")  # HTML block that a blank line ends
    # <pre>, <script>, <style>, <textarea>, <!--: ends at its closing marker
    RAW_HTML = _BlockKind("raw_html")
    FENCE = _BlockKind("fence")
    INDENT_CODE = _BlockKind("indent_code")
    MATH = _BlockKind("math")  # $$ ... $$
    CLOSED = _BlockKind("closed")  # a heading, rule or closing line: the block ends with the line


class _Line:
    """What the scanner does with the characters of the current line."""

    START = _LineMode("start")  # reading indentation and the first characters, to classify it
    PARA = _LineMode("para")  # a plain paragraph line: inline scanning
    FENCE = _LineMode("fence")  # a line inside a fenced block: is it the closing fence?
    RAW = _LineMode("raw")  # inside raw HTML or $$ math: looking for the closing marker
    SKIP = _LineMode("skip")  # nothing on the rest of this line matters


# Blocks that a blank line ends, and that a line opening no other block continues (lazily).
_OPEN_TEXT_BLOCKS = (_Block.PARA, _Block.QUOTE, _Block.TABLE, _Block.HTML)

# Raw HTML blocks, which only their closing marker ends (blank lines do not).
# fmt: off
_RAW_HTML = {"<!--": "-->", "<pre": "</pre>", "<script": "</script>", "<style": "</style>",
             "<textarea": "</textarea>"}
# fmt: on


def _classify(head: str, eol: bool) -> _BlockKind | None:
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


def _html_block(head: str) -> _BlockKind | None:
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


class PlacementScanner:
    """Finds safe points to insert an ad block into markdown answer text that arrives in pieces."""

    _line: _LineMode  # set by `_new_line`

    def __init__(self, min_chars: int = 0) -> None:
        self._min_chars = min_chars
        self._pos = 0  # characters fed so far
        self._block: _BlockKind = _Block.NONE
        self._blank = False  # a blank line follows the last content line
        self._seen_content = False
        self._colon = False  # the last content line ended with ":"
        self._inline = InlineScanner()
        self._plain = False  # on a paragraph line, outside every inline span
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
        base = self._pos
        self._pos = base + len(text)
        # Shortcuts for the most common pieces; `_scan` would take them the same way, only slower.
        if self._plain:  # on a paragraph line, outside code spans, links...
            points: list[int] = []
            if text.isalnum() or (text[1:].isalnum() and text[0] == " "):  # " word": most pieces
                self._last = text[-1]
                self._inline.take_word(text, 0, len(text), points, self._min_chars - base)
                return points
            if PLAIN_RUN.fullmatch(text):  # a few plain words
                last = text[-1]
                if last != " " or (last := text.rstrip(" ")[-1:]):
                    self._last = last
                self._inline.take_plain(text, 0, len(text), points, self._min_chars - base)
                self._plain = not self._inline.url  # a "www." may have begun a URL
                return points
        elif self._line is _Line.SKIP and "\n" not in text:  # more of a list item, code line...
            self._note_last(text, 0, len(text))
            return []
        return self._scan(text, base)

    def _scan(self, text: str, base: int) -> list[int]:
        """Consume `text`, which starts at answer offset `base`, in the general way; its points."""
        points: list[int] = []
        i, n = 0, len(text)
        inline = self._inline
        first = self._min_chars - base  # the first offset in `text` that may be a point
        while i < n:
            line = self._line
            if line is _Line.SKIP:  # jump to the end of the line
                end = text.find("\n", i)
                self._note_last(text, i, n if end < 0 else end)
                if end < 0:
                    break
                i = end
            elif line is _Line.PARA and text[i] != "\n":
                start = i
                i = inline.scan_line(text, i, points, first)
                self._note_last(text, start, i)
                if inline.pipe:  # a table row without a leading "|"
                    self._block, self._line = _Block.TABLE, _Line.SKIP
                continue
            c = text[i]
            if c == "\n":
                self._end_line()
            elif self._step(c) and i >= first:
                points.append(i)
            i += 1
        self._plain = self._line is _Line.PARA and inline.is_plain()
        return points

    def _note_last(self, text: str, start: int, stop: int) -> None:
        """Remember the last non-blank character of `text[start:stop]`, if it has one."""
        tail = text[start:stop].rstrip(" \t\r")
        if tail:
            self._last = tail[-1]

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

    def _new_line(self, line: _LineMode) -> None:
        """Start reading a new line in the given mode."""
        self._line = line
        self._indent = 0
        self._head = ""  # the first non-blank characters, while the line is being classified
        self._last = ""  # the last non-blank character so far
        self._run = 0  # fence characters opening a line inside a fence
        self._trailing = False  # only blanks may follow that run on a closing fence
        self._tail = ""  # the last few characters, in raw HTML or math

    def _step(self, c: str) -> bool:
        """Consume a character other than a line end; True if it is the first after a point."""
        line = self._line
        if line is _Line.START:
            return self._line_start(c)
        if c not in " \t\r":
            self._last = c
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

    def _decide(self, eol: bool) -> _BlockKind | None:
        """The block the current line belongs to, given its head and context (None: need more)."""
        head, block = self._head, self._block
        if self._indent >= 4 and not (block is _Block.LIST and head[0] in "`~"):
            # Indented code cannot interrupt a paragraph, and lists hold indented lines.
            if block is _Block.LIST or block in _OPEN_TEXT_BLOCKS:
                return block
            return _Block.INDENT_CODE
        kind = _classify(head, eol)
        if kind is not _Block.PARA:
            return kind
        if block in _OPEN_TEXT_BLOCKS:
            return block  # a continuation line (lazy, for quotes, tables and HTML)
        if block is _Block.LIST and (not self._blank or self._indent):
            return block
        return _Block.PARA

    def _open_line(self, kind: _BlockKind) -> bool:
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
                if self._block in _OPEN_TEXT_BLOCKS:
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
