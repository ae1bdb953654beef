"""Inline markdown in a plain paragraph: open spans, and where sentences end and start.

`InlineScanner` follows one paragraph a character at a time (`step`), or a run of plain words
and spaces a word at a time (`take_plain`): most streamed pieces are such runs. A sentence end
is judged word by word (`ends_sentence`, shared with the voice segmenter: module
`echo_stream.sentences`), with abbreviations, initials, decimals, URLs,
e-mail addresses and ellipses ruled out.
"""

from __future__ import annotations

import re

from echo_stream.sentences import CLOSERS as _CLOSERS
from echo_stream.sentences import OPENERS as _OPENERS
from echo_stream.sentences import ends_sentence

__all__ = ["PLAIN_RUN", "InlineScanner", "ends_sentence"]

_SPACE = " \t\r\n"
# A sentence may start with one of these as well as with an uppercase letter.
_SENTENCE_OPENERS = '"\u201c'
# A word can only end a sentence if its last character is one of these.
_MAY_END = ".!?" + _CLOSERS
# Plain words and the spaces between them: nothing that opens a span, and no "/" of a URL's
# "://". `InlineScanner.take_plain` takes such a run in one go, a word at a time.
_RUN_BREAKS = "\t\r\n/`$[<\\|"
PLAIN_RUN = re.compile(f"[^{re.escape(_RUN_BREAKS)}]+")
# What a URL or code span swallows without a second look: up to a space, or a backtick.
_URL_REST = re.compile(r"[^ \t\r\n]+")
_CODE_REST = re.compile(r"[^`\n]+")
_SPAN = "\x00"  # stands in a word for a whole code span, link or formula
_WORD_CAP = 48  # longer words are never abbreviations; keep only their tail


class InlineScanner:
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
        return ends_sentence(self.word) if self.word else self.cand

    def add(self, text: str) -> None:
        """Append plain text to the word in progress."""
        word = self.word + text
        self.word = word if len(word) <= _WORD_CAP else word[-_WORD_CAP:]

    def scan_line(self, text: str, start: int, points: list[int], first: int) -> int:
        """Consume `text` from `start` up to a line end; return where it stopped.

        Appends to `points` the offsets, from `first` on, where sentences start. Stops early,
        after a "|", when the paragraph turns out to be a table.
        """
        i, n = start, len(text)
        while i < n:
            c = text[i]
            if c not in _RUN_BREAKS and self.is_plain():
                run = PLAIN_RUN.match(text, i)
                if run:
                    i = run.end()
                    self.take_plain(text, run.start(), i, points, first)
                    continue
            if c == "\n":
                break
            if self.step(c) and i >= first:
                points.append(i)
            i += 1
            # A URL or code span goes on: skip to where it may end.
            if self.url:
                if rest := _URL_REST.match(text, i):
                    i = rest.end()
            elif self.code and not self.ticks:
                if rest := _CODE_REST.match(text, i):
                    i = rest.end()
            elif self.pipe:
                break
        return i

    def take_plain(self, text: str, start: int, end: int, points: list[int], first: int) -> None:
        """Consume `text[start:end]`, a `PLAIN_RUN` met while plain, as `step` would.

        Appends to `points` the offsets, from `first` on, where sentences start.
        """
        if text.find(" ", start + 1, end) < 0:
            self.take_word(text, start, end, points, first)
            return
        word, cand, url = self.word, self.cand, False
        at = start
        for k, part in enumerate(text[start:end].split(" ")):
            if k:  # a space: the word in progress ends, and so does a URL
                if word:
                    cand = word[-1] in _MAY_END and ends_sentence(word)
                    word = ""
                url = False
                at += 1
            if part:
                if cand:  # only spaces since a sentence end, so no word in progress
                    if at >= first and _opens_sentence(part[0]):
                        points.append(at)
                    cand = False
                at += len(part)
                if "." in part and (dot := _url_dot(word, part)) >= 0:
                    part = part[: dot + 1]  # the rest of a "www." URL is not read
                    url = True
                word += part
                if len(word) > _WORD_CAP:
                    word = word[-_WORD_CAP:]
        self.word, self.cand, self.url = word, cand, url

    def take_word(self, text: str, start: int, end: int, points: list[int], first: int) -> None:
        """`take_plain` for a run with a space at most at its start (most pieces): no loop."""
        word = self.word
        if text[start] == " ":  # the word in progress ends, and so does a URL
            if word:
                self.cand = word[-1] in _MAY_END and ends_sentence(word)
                word = ""
            self.url = False
            start += 1
            if start == end:
                self.word = ""
                return
        if self.cand:  # only spaces since a sentence end, so no word in progress
            if start >= first and _opens_sentence(text[start]):
                points.append(start)
            self.cand = False
        part = text[start:end]
        if "." in part and (dot := _url_dot(word, part)) >= 0:
            part = part[: dot + 1]  # the rest of a "www." URL is not read
            self.url = True
        word += part
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
                self.cand = ends_sentence(self.word)
                self.word = ""
            return False
        starts = self.cand and _opens_sentence(c)
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


def _url_dot(word: str, part: str) -> int:
    """The "." in `part`, which continues `word`, where `_check_url` would see a URL; or -1."""
    if not ("w." in part or "W." in part or (part[0] == "." and word[-1:] in ("w", "W"))):
        return -1
    dot = part.find(".")
    while dot >= 0:
        head = (word + part[: dot + 1])[-_WORD_CAP:]
        if head.lower().lstrip(_OPENERS) == "www.":
            return dot
        dot = part.find(".", dot + 1)
    return -1


def _opens_sentence(c: str) -> bool:
    """True if a sentence may start with the character `c`."""
    return c.isupper() or c in _SENTENCE_OPENERS
