"""The sensitive-topic guard: no ads next to health, self-harm, politics or minors.

Terms match as whole words or phrases, case-insensitively, with an optional plural or
possessive ending ("vote" matches "votes", "teen" matches "teen's"). Inside a phrase a space
matches any run of spaces or hyphens and a hyphen is optional, so "self-harm", "self harm" and
"selfharm" all match. Everything is compiled once, in `__init__`.

Ambiguity is settled towards suppressing the ad (a lost impression costs little; an ad beside
a suicide question costs a lot), with one exception: programming vocabulary. Compounds such as
"child process", "child node", "props.children", "minor version" and "leader election" are
masked out before the built-in topics are matched, so ordinary technical questions still get
ads (a conversation about an actual child is still caught by "child" elsewhere, "my son" ...).
Bare "minor" is not a term (it is mostly an adjective: "a minor fix"); "minors", "underage"
and ages under 18 said of a person ("a 12-year-old", "I'm 14", "she is 15 years old") are.
"kill" alone is not a term, so "kill the process" is safe; "kill myself" is. Known false
positives we accept: "symptom of a bug", "diagnosis" of a system, "votes" in consensus
algorithms other than the masked compounds, the "Great Depression".

`check` lower-cases the text once and runs one combined pattern; only a hit pays for masking
and the per-topic passes that name the topic (the most serious first: `ALL_TOPICS` order).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

__all__ = ["ALL_TOPICS", "CUSTOM_TOPIC", "SensitiveTopicGuard"]

ALL_TOPICS: tuple[str, ...] = ("self_harm", "minors", "health", "politics")
CUSTOM_TOPIC = "custom"

# fmt: off
_TERMS: dict[str, tuple[str, ...]] = {
    "self_harm": (
        "suicide", "suicidal", "kill myself", "killing myself", "end my life", "ending my life",
        "take my own life", "taking my own life", "self-harm", "self-harming", "self-injury",
        "cut myself", "cutting myself", "hurt myself", "hurting myself", "want to die",
        "wanna die", "better off dead", "don't want to live", "no reason to live",
        "slit my wrists", "overdose",
    ),
    "minors": (
        "child", "children", "kid", "kiddo", "toddler", "infant", "newborn", "teen",
        "teenager", "teenage", "adolescent", "minors", "underage", "under-age", "preteen",
        "my son", "my daughter", "my boy", "my girl", "kindergarten", "preschool",
        "elementary school", "middle school", "high schooler", "i am a minor", "i'm a minor",
        "is a minor", "as a minor",
    ),
    "health": (
        "diagnosis", "diagnosed with", "medical condition", "symptom", "medication", "medicine",
        "prescription", "prescribed", "dosage", "painkiller", "antibiotic",
        "antidepressant", "ibuprofen", "paracetamol", "acetaminophen", "opioid", "insulin",
        "cancer", "tumor", "tumour", "chemotherapy", "diabetes", "diabetic", "hiv",
        "disease", "illness", "infection", "chronic pain", "blood pressure", "heart attack",
        "seizure", "epilepsy", "asthma", "migraine", "dementia", "alzheimer", "depression",
        "anxiety", "panic attack", "bipolar", "schizophrenia", "adhd", "autism",
        "eating disorder", "anorexia", "bulimia", "pregnant", "pregnancy", "miscarriage",
        "abortion", "sexually transmitted", "mental health", "therapist", "psychiatrist",
        "my doctor", "surgery", "rehab", "addiction",
    ),
    "politics": (
        "election", "vote", "voting", "voter", "ballot", "referendum", "polling station",
        "political", "politics", "politician", "political party", "democrat", "democratic party",
        "republican", "gop", "labour party", "conservative party", "tory", "tories",
        "green party", "senator", "senate", "congressman", "congresswoman", "congress",
        "parliament", "member of parliament", "prime minister", "presidential", "mayor",
        "impeachment", "left-wing", "right-wing", "partisan", "immigration policy",
        "gun control",
    ),
}
# fmt: on

# Ages under 18: "a 12-year-old", "9yo", "I'm 14.", "she is 15 years old", "under-18s".
# A bare "10 years old" is not enough: it is as often said of a laptop or a codebase.
_AGE = r"(?:[1-9]|1[0-7])"
_PERSON_IS = r"(?:i['\u2019]m|i\s+am|(?:he|she)['\u2019]s|(?:he|she|son|daughter)\s+is)"
_PATTERNS: dict[str, tuple[str, ...]] = {
    "minors": (
        rf"{_AGE}-(?:years?|yrs?)-olds?",
        rf"{_AGE}\s*y/?o",
        rf"{_PERSON_IS}\s+{_AGE}\s*(?:years?|yrs?)[\s-]*old",
        rf"{_PERSON_IS}\s+{_AGE}(?=\s*(?:[.,!?;]|$|and\b|but\b|so\b))",
        r"under\s+the\s+age\s+of\s+\d+",
        r"under[\s-]*(?:13|16|18)s",
    ),
}

# Technical compounds that reuse sensitive words; masked before the built-in topics match.
# fmt: off
_BENIGN = (
    "child process", "child node", "child element", "child component", "child widget",
    "child class", "child theme", "child table", "child row", "child thread", "child pid",
    "child window", "child view", "child selector", "child key", "child object", "child item",
    "child entity", "child record", "child task", "child span", "child logger",
    "children prop", "props.children", "parent and child", "parent-child",
    "left child", "right child", "direct child", "direct children", "its child",
    "its children", "node's child", "node's children", "children array", "children list",
    "minor version", "minor release", "minor update", "minor change", "minor bug",
    "leader election", "election timeout", "request vote", "vote request",
)
# fmt: on


def _atoms(term: str) -> tuple[str, ...]:
    """A term as regex atoms: one per character, with the phrase rules for spaces and hyphens."""
    special = {" ": r"[\s\-]+", "-": r"[\s\-]?", "'": "['\u2019]"}
    return tuple(special.get(ch) or re.escape(ch) for ch in " ".join(term.lower().split()))


def _alternation(terms: Iterable[str]) -> str:
    """A prefix-factored (trie) alternation of `terms`.

    Python's `re` tries a flat `a|b|c...` alternative by alternative at every position; sharing
    prefixes makes a non-matching position cost a few character tests instead of one per term.
    """
    trie: dict[str, dict[str, Any]] = {}
    for term in terms:
        node = trie
        for atom in _atoms(term):
            node = node.setdefault(atom, {})
        node[""] = {}  # end of a term

    def emit(node: dict[str, dict[str, Any]]) -> str:
        branches = [atom + emit(child) for atom, child in sorted(node.items()) if atom]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"
        return f"(?:{body})?" if "" in node else body

    return emit(trie)


def _compile(terms: Iterable[str], patterns: Iterable[str] = ()) -> re.Pattern[str]:
    """One whole-word pattern for lower-case text: `terms` with a plural ending, and `patterns`."""
    alternation = _alternation(terms)
    branches = [rf"{alternation}(?:['\u2019]s|s|es)?"] if alternation else []
    branches.extend(patterns)
    if not branches:
        return re.compile(r"(?!)")  # matches nothing
    return re.compile(rf"(?<!\w)(?:{'|'.join(branches)})(?!\w)")


class SensitiveTopicGuard:
    """Says which sensitive topic, if any, a conversation touches, so no ad is shown beside it."""

    def __init__(self, topics: Iterable[str] = ALL_TOPICS, extra_terms: Iterable[str] = ()) -> None:
        if isinstance(topics, str) or isinstance(extra_terms, str):
            raise TypeError("topics and extra_terms take an iterable of names, not one string")
        chosen = {name.strip().lower().replace("-", "_") for name in topics if name.strip()}
        unknown = sorted(chosen - set(ALL_TOPICS))
        if unknown:
            raise ValueError(
                f"unknown sensitive topic(s) {', '.join(map(repr, unknown))}; "
                f"valid topics are {', '.join(ALL_TOPICS)}"
            )
        # Checked in ALL_TOPICS order so that the most serious topic is the one reported.
        self._topics = [
            (topic, _compile(_TERMS[topic], _PATTERNS.get(topic, ())))
            for topic in ALL_TOPICS
            if topic in chosen
        ]
        self._benign = _compile(_BENIGN)
        extras = [term for term in extra_terms if term.strip()]
        for term in extras:
            if not re.search(r"\w", term):
                raise ValueError(f"extra sensitive term {term!r} has no letters or digits")
        self._custom = _compile(extras) if extras else None
        active = [topic for topic, _ in self._topics]
        # Everything at once, for the common case of text that touches nothing.
        self._any = (
            _compile(
                [*extras, *(term for topic in active for term in _TERMS[topic])],
                [pattern for topic in active for pattern in _PATTERNS.get(topic, ())],
            )
            if active or extras
            else None
        )

    @property
    def topics(self) -> tuple[str, ...]:
        """The built-in topics this guard checks, in the order they are checked."""
        return tuple(topic for topic, _ in self._topics)

    def check(self, text: str) -> str | None:
        """The sensitive topic `text` touches ("custom" for an extra term), or None."""
        lowered = text.lower()
        # Most texts touch nothing, and one combined pass settles them. Masking benign
        # compounds can only remove matches (it writes "|", which no built-in term contains),
        # so a miss here is a miss after masking too.
        if self._any is None or not self._any.search(lowered):
            return None
        masked = self._benign.sub("|", lowered)
        for topic, pattern in self._topics:
            if pattern.search(masked):
                return topic
        if self._custom is not None and self._custom.search(lowered):
            return CUSTOM_TOPIC
        return None
