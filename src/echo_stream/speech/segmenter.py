"""Cutting a streamed markdown answer into segments worth speaking.

Two streaming stages. `SpokenText` turns markdown into what should be said, releasing only what
can no longer change (complete words, complete links and code spans):

- fenced code blocks are *replaced* by one short spoken sentence, `CODE_PLACEHOLDER`;
- inline code is read when it is short (a name such as `run_chat`), else replaced by "this code";
- URLs (bare, `<autolinks>`, `www.`) are *replaced* by their host name ("docs.python.org");
- markdown links and images are read as their text (the target is skipped);
- markdown syntax is *skipped*: heading, list and quote markers, emphasis, strike-through, HTML
  tags, backslash escapes, table pipes (read as commas), rules and table separator rows.
  A heading, list item or table row that ends without punctuation gets a "." so it ends a
  sentence (a pause) instead of running into the next line.

`Segmenter` cuts that text: at the first sentence end once a segment holds `target` characters
(about 100, as in the original), then, when it has grown past `max_chars` without one, at the
last clause end (, ; : or a dash), then between words. The first segment has its own, smaller
target and may also end at a clause end, so the first audio comes sooner. Sentence ends are
judged by the project's one rule (`echo_stream.sentences.ends_sentence`: no cut after "e.g.",
inside "3.14", after an initial).
"""

from __future__ import annotations

import re

from echo_stream.sentences import ends_sentence

__all__ = ["CODE_PLACEHOLDER", "Segmenter", "SpokenText"]

CODE_PLACEHOLDER = "See the code on screen."
_INLINE_CODE_MAX = 30  # longer inline code is not read out
_HOLD_MAX = 500  # an unclosed "[" or "`" held back longer than this is let through as text

_FENCE = re.compile(r"(`{3,}|~{3,})")
_HEADING = re.compile(r"#{1,6}(?:[ \t]+|$)")
_LIST = re.compile(r"(?:[-*+]|\d{1,9}[.)])[ \t]+")
_QUOTE = re.compile(r">[ \t]?")
_RULE = re.compile(r"([-*_])[ \t]*(?:\1[ \t]*){2,}")
_TABLE_SEPARATOR = re.compile(r"\|?[ \t]*:?-+:?[ \t]*(?:\|[ \t]*:?-+:?[ \t]*)*\|?")

_IMAGE_OR_LINK = re.compile(r"!?\[([^\]\n]*)\]\([^)\n]*\)")
_AUTOLINK = re.compile(r"<((?:https?|ftp)://[^>\s]+)>")
_URL = re.compile(r"(?:\b(?:https?|ftp)://|\bwww\.)[^\s<>()\[\]\"']+")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_HTML_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>")
_EMPHASIS = re.compile(r"\*\*|__|~~|(?<![\w*])[*_]+|[*_]+(?![\w*])")
_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|<>~])")
_PIPES = re.compile(r"[ \t]*\|[ \t]*")
_SPACES = re.compile(r"[ \t]+")
_WORD = re.compile(r"\S+(?=\s)")
_CLAUSE_END = (",", ";", ":", "\u2014", "\u2013", "-")


def _host(url: str) -> str:
    """The host of a URL, as a stand-in for reading the URL out."""
    rest = url.split("://", 1)[-1]
    host = re.split(r"[/?#:]", rest, maxsplit=1)[0]
    return host.removeprefix("www.")


def _replace_url(match: re.Match[str]) -> str:
    url = match.group(0)
    trailing = len(url) - len(url.rstrip(".,;:!?"))
    tail = url[len(url) - trailing :] if trailing else ""
    return _host(url[: len(url) - trailing]) + tail


def _code_span(match: re.Match[str]) -> str:
    code = match.group(2).strip()
    return code if len(code) <= _INLINE_CODE_MAX else "this code"


def clean_inline(text: str) -> str:
    """Inline markdown of complete words -> the words to say (see the module docstring)."""
    text = _CODE_SPAN.sub(_code_span, text)
    text = _IMAGE_OR_LINK.sub(r"\1", text)
    text = _AUTOLINK.sub(lambda m: _host(m.group(1)), text)
    text = _URL.sub(_replace_url, text)
    text = _HTML_TAG.sub("", text)
    text = _ESCAPE.sub(r"\1", text)
    return _EMPHASIS.sub("", text)


def _unclosed_from(text: str) -> int:
    """Where the first inline construct that may still close begins (a code span, a link or
    image, an HTML tag), or -1."""
    starts = []
    if text.count("`") % 2:
        starts.append(text.rfind("`"))
    bracket = text.rfind("[")
    if bracket >= 0 and not re.match(r"\[[^\]\n]*\]\([^)\n]*\)", text[bracket:]):
        starts.append(bracket - 1 if text[bracket - 1 : bracket] == "!" else bracket)
    tag = text.rfind("<")
    if tag >= 0 and ">" not in text[tag:] and re.match(r"</?[A-Za-z]", text[tag:]):
        starts.append(tag)
    return min(starts, default=-1)


class SpokenText:
    """Markdown in, in pieces; the text to speak out, as soon as it can no longer change."""

    def __init__(self) -> None:
        self._pending = ""
        self._line_start = True
        self._kind = "para"  # para | heading | list | table | quote
        self._fence = ""  # the opening fence while inside a fenced code block
        self._skip_line = False  # the rest of the line says nothing (a fence's info string)
        self._line_text = ""  # spoken text of the current line so far

    def feed(self, text: str) -> str:
        """Take the next piece of markdown; return the newly settled spoken text."""
        self._pending += text
        return self._run(final=False)

    def flush(self) -> str:
        """The answer has ended: return whatever is left to say."""
        return self._run(final=True)

    def _run(self, final: bool) -> str:
        out: list[str] = []
        while self._pending:
            if self._line_start:
                if not self._start_line(out, final):
                    break
                continue
            newline = self._pending.find("\n")
            if newline < 0:
                if self._kind != "table" or final:  # a table row is read whole, pipes as commas
                    out.append(self._partial_line(final))
                break
            line, self._pending = self._pending[:newline], self._pending[newline + 1 :]
            out.append(self._end_line(line))
        if final and not self._line_start:
            out.append(self._end_line(""))
        return "".join(out)

    def _start_line(self, out: list[str], final: bool) -> bool:
        """Classify the line at the head of the pending text; False while more is needed."""
        newline = self._pending.find("\n")
        line = self._pending if newline < 0 else self._pending[:newline]
        head = line.lstrip(" \t")
        if newline < 0 and not final and (len(head) < 8 or _may_be_rule(head)):
            return False  # too little to tell "---" from "- item" or "```" from "``x``"
        if self._fence:
            if newline < 0 and not final:
                return False
            self._pending = "" if newline < 0 else self._pending[newline + 1 :]
            fence = head.rstrip()
            if fence.startswith(self._fence) and not fence.strip(self._fence[0]):
                self._fence = ""
            return True
        rest = self._classify(head, out)
        if rest is None:  # a line that says nothing: skip it whole
            self._pending = "" if newline < 0 else self._pending[newline + 1 :]
            return True
        self._pending = rest + self._pending[len(line) :]
        self._line_start = False
        return True

    def _classify(self, head: str, out: list[str]) -> str | None:
        """The line's text after its block marker; None for a line with nothing to say."""
        if not head.strip():
            return None
        if fence := _FENCE.match(head):
            self._fence = fence.group(1)
            out.append(f" {CODE_PLACEHOLDER} ")
            return None
        if _RULE.fullmatch(head.rstrip()) or _is_separator(head):
            return None
        self._kind = "para"
        while quote := _QUOTE.match(head):
            head, self._kind = head[quote.end() :], "quote"
        if heading := _HEADING.match(head):
            return self._set("heading", head[heading.end() :])
        if item := _LIST.match(head):
            return self._set("list", head[item.end() :])
        if head.startswith("|"):
            return self._set("table", head)
        return head

    def _set(self, kind: str, rest: str) -> str:
        self._kind = kind
        return rest

    def _partial_line(self, final: bool) -> str:
        """Release the settled part of an unfinished line; keep the rest pending."""
        text = self._pending
        # Up to and with the last blank: the word before it is complete, so it may end a segment.
        cut = len(text) if final else max(text.rfind(" "), text.rfind("\t")) + 1
        if cut <= 0:
            return ""
        held = _unclosed_from(text[:cut])
        if held >= 0 and cut - held < _HOLD_MAX:
            cut = held
        settled, self._pending = text[:cut], text[cut:]
        return self._speak(settled)

    def _end_line(self, line: str) -> str:
        """Finish the current line (its last part is `line`); the spoken text it still owes."""
        spoken = self._speak(line)
        said = (self._line_text + spoken).rstrip()
        self._line_start, self._line_text = True, ""
        if self._kind != "para" and said and said[-1].isalnum():
            spoken = spoken.rstrip() + "."
        return spoken + " "

    def _speak(self, markdown: str) -> str:
        text = clean_inline(markdown)
        if self._kind == "table":
            text = _PIPES.sub(", ", text).strip(", ")
        text = _SPACES.sub(" ", text)
        self._line_text += text
        return text


def _may_be_rule(head: str) -> bool:
    """True while a line's head may still turn out to be a rule or a table separator row."""
    return head[0] in "|-*_" and not head.strip("|-*_:= \t")


def _is_separator(head: str) -> bool:
    return "-" in head and bool(_TABLE_SEPARATOR.fullmatch(head.strip()))


class Segmenter:
    """Markdown in, in pieces; speakable segments out, in order."""

    def __init__(self, target: int = 100, first_target: int = 40, max_chars: int = 250) -> None:
        self._target = target
        self._first_target = min(first_target, target)
        self._max = max(max_chars, target)
        self._spoken = SpokenText()
        self._buffer = ""
        self._count = 0  # segments cut so far

    def feed(self, markdown: str) -> list[str]:
        """Take the next piece of the answer; return the segments it completes."""
        self._buffer += self._spoken.feed(markdown)
        return self._cut(final=False)

    def flush(self) -> list[str]:
        """The answer has ended: return the remaining segments."""
        self._buffer += self._spoken.flush()
        return self._cut(final=True)

    def _cut(self, final: bool) -> list[str]:
        segments: list[str] = []
        while (end := self._next_cut(final)) is not None:
            segment, self._buffer = " ".join(self._buffer[:end].split()), self._buffer[end:]
            if any(c.isalnum() for c in segment):
                segments.append(segment)
                self._count += 1
        return segments

    def _next_cut(self, final: bool) -> int | None:
        """Where the next segment ends in the buffer, or None if it has not ended yet."""
        buffer = self._buffer.lstrip()
        skipped = len(self._buffer) - len(buffer)
        if not buffer:
            self._buffer = ""
            return None
        target = self._first_target if self._count == 0 else self._target
        limit = self._max if self._count else min(self._max, self._first_target * 5 // 2)
        clause = word = None
        first = self._count == 0
        for match in _WORD.finditer(buffer):
            end, text = match.end(), match.group()
            if end > limit:
                break
            # The first segment may also end at a clause end, so the first audio comes sooner.
            if end >= target and (ends_sentence(text) or (first and text.endswith(_CLAUSE_END))):
                return skipped + end
            word = end
            if end >= target // 2 and text.endswith(_CLAUSE_END):
                clause = end
        if final:
            return len(self._buffer)
        if len(buffer) <= limit:
            return None
        return skipped + (clause or word or limit)
