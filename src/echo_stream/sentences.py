"""Where a sentence ends: the one judgement shared by the ad placement and the voice segmenter.

`ends_sentence` looks at one whitespace-delimited word and rules out abbreviations ("e.g."),
initials ("J."), list markers ("2."), initialisms ("U.S."), ellipses, URLs and e-mail addresses.
A decimal such as "3.14" never reaches it as a sentence end, since its "." is inside the word.
Pure text, no I/O: it sits at the bottom of the layers so any stage may use it.
"""

from __future__ import annotations

__all__ = ["CLOSERS", "OPENERS", "ends_sentence"]

# Stripped from a word before checking its sentence-ending punctuation.
CLOSERS = ")]\"'\u201d\u2019*_"
OPENERS = "([\"'\u201c\u2018*_<"
# fmt: off
_ABBREVIATIONS = frozenset({
    "e.g", "i.e", "etc", "vs", "cf", "al", "approx", "dr", "mr", "mrs", "ms", "prof", "st", "mt",
    "jr", "sr", "u.s", "u.k", "a.m", "p.m", "no", "nos", "fig", "figs", "inc", "ltd", "co", "corp",
    "dept", "est", "vol", "ch", "sec", "eq", "ref", "gen", "gov", "sen", "rep", "rev", "capt",
    "lt", "col", "sgt", "hon", "ave", "rd", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep",
    "sept", "oct", "nov", "dec",
})
# fmt: on
# After a word of letters, "." ends no sentence in these cases: abbreviations, and "www." URLs.
_NOT_AFTER_DOT = _ABBREVIATIONS | {"www"}


def ends_sentence(word: str) -> bool:
    """True if `word`, followed by whitespace, ends a sentence."""
    core = word.rstrip(CLOSERS)
    if not core or core[-1] not in ".!?":
        return False
    mark, stem = core[-1], core[:-1].lstrip(OPENERS)
    if stem.isalpha() and len(stem) > 1:  # a plain word: of the rules below only two can apply
        return mark != "." or stem.lower() not in _NOT_AFTER_DOT
    if "://" in word or "@" in word or word.lower().lstrip(OPENERS).startswith("www."):
        return False  # URLs and e-mail addresses
    if core.endswith("..") or core.rstrip(".!?").endswith("…"):
        return False  # an ellipsis trails off rather than ends
    if mark != ".":
        return True
    if not stem or stem.lower() in _ABBREVIATIONS:
        return False
    if len(stem) == 1 and stem.isalpha():
        return False  # an initial, as in "J. Smith"
    if stem.isdigit() and len(stem) <= 3:
        return False  # a list marker such as "2."
    parts = stem.split(".")
    # Initialisms like "U.S." or "Ph.D." rather than a word at a sentence end.
    return len(parts) == 1 or not all(p.isalpha() and len(p) <= 2 for p in parts)
