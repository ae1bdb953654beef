"""Titles from prompts, cleaned model titles, and owner strings."""

from __future__ import annotations

from echo_stream.conversations.owner import ANONYMOUS, owner_of
from echo_stream.conversations.titles import UNTITLED, clean_model_title, title_from_prompt


def test_title_is_the_first_words_on_one_line() -> None:
    assert title_from_prompt("What is\n\n  server-sent   events?") == "What is server-sent events?"
    assert title_from_prompt("one two three four five six seven eight nine") == (
        "one two three four five six seven eight…"
    )
    assert len(title_from_prompt("x" * 500)) == 80
    assert title_from_prompt("  \n ") == UNTITLED


def test_model_titles_are_cleaned() -> None:
    assert clean_model_title(' "Streaming basics." \n') == "Streaming basics"
    assert clean_model_title("**Title**") == "Title"
    assert clean_model_title('""') is None


def test_owner_never_contains_the_key_and_user_narrows_within_a_key() -> None:
    alice = owner_of("sk-alice-secret")
    assert "sk-alice-secret" not in alice and alice.startswith("key:")
    assert owner_of("sk-alice-secret") == alice != owner_of("sk-bob")
    assert owner_of("sk-alice-secret", user="carol").startswith(alice + ":user:")
    assert owner_of("sk-a", user="carol") != owner_of("sk-b", user="carol")
    assert owner_of(None) == ANONYMOUS
    assert owner_of("sk-a", subject="u-1").startswith("sub:")
