"""Conversation titles: the first words of the prompt, tidied (a model may replace it later)."""

from __future__ import annotations

import re

_SPACE = re.compile(r"\s+")
TITLE_WORDS = 8
TITLE_CHARS = 80
UNTITLED = "New conversation"


def title_from_prompt(prompt: str) -> str:
    """Up to eight words (and 80 characters) of the prompt, on one line."""
    words = _SPACE.sub(" ", prompt).strip().split(" ")
    title = " ".join(words[:TITLE_WORDS])
    if len(title) > TITLE_CHARS:
        title = title[: TITLE_CHARS - 1].rstrip() + "…"
    elif len(words) > TITLE_WORDS:
        title += "…"
    return title or UNTITLED


def clean_model_title(text: str) -> str | None:
    """A model-written title, stripped of quotes and trailing punctuation; None if unusable."""
    line = _SPACE.sub(" ", text).strip().strip("\"'`*#").strip().rstrip(".")
    if not line:
        return None
    return line[:TITLE_CHARS]
