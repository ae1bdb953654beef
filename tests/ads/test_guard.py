"""Tests for the sensitive-topic guard."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from echo_stream.ads.guard import ALL_TOPICS, CUSTOM_TOPIC, SensitiveTopicGuard

GUARD = SensitiveTopicGuard()


@pytest.mark.parametrize(
    "text",
    [
        "I want to kill myself",
        "I've been thinking about suicide lately.",
        "is SELF-HARM ever ok",
        "I keep self harming",
        "I don't want to live anymore",
        "honestly I don\u2019t want to live",
        "everyone would be better off dead without me",
        "how many pills is an overdose",
    ],
)
def test_self_harm(text: str) -> None:
    assert GUARD.check(text) == "self_harm"


@pytest.mark.parametrize(
    "text",
    [
        "My doctor says the medication has side effects",
        "What are the symptoms of diabetes?",
        "I was diagnosed with ADHD last year",
        "Is ibuprofen safe with my blood pressure?",
        "coping with Anxiety and depression",
        "early signs of Alzheimer's",
        "I'm pregnant and have a migraine",
    ],
)
def test_health(text: str) -> None:
    assert GUARD.check(text) == "health"


@pytest.mark.parametrize(
    "text",
    [
        "Who should I vote for in the election?",
        "Are Republicans or Democrats better on taxes?",
        "write a letter to my senator",
        "how does the referendum ballot work",
        "is the Labour Party left-wing?",
        "explain the Tories' housing plan",
    ],
)
def test_politics(text: str) -> None:
    assert GUARD.check(text) == "politics"


@pytest.mark.parametrize(
    "text",
    [
        "birthday party ideas for kids",
        "my son keeps lying to me",
        "homework help for my daughter's math class",
        "a good phone for a teenager",
        "I'm 14. what games should I play",
        "my 12-year-old wants social media",
        "she is 15 years old and wants a job",
        "can minors open a bank account",
        "apps for under-18s",
        "toddler sleep schedule",
        "my child won't eat vegetables",
    ],
)
def test_minors(text: str) -> None:
    assert GUARD.check(text) == "minors"


@pytest.mark.parametrize(
    "text",
    [
        "How do I kill the process listening on port 8080?",
        "kill -9 the worker and restart it",
        "Spawn a child process in Node and pipe its stdout",
        "kill all child processes when the parent exits",
        "a node's children in a binary tree: the left child and right child",
        "React props.children is undefined",
        "style the child elements with a CSS child selector",
        "bump the minor version for a minor bug fix",
        "it was a minor issue",
        "Raft leader election and the election timeout",
        "import multiprocessing as mp",
        "functions without side effects are easier to test",
        "this laptop is 10 years old",
        "I'm 14 minutes late for the standup",
        "a short history of the story of Python",
        "What should I cook for dinner? A quick pasta recipe please.",
        "Compare AWS and GCP for hosting a Django app.",
        "Devoted fans devote time to the hobby",
        "",
    ],
)
def test_ordinary_text_is_not_sensitive(text: str) -> None:
    assert GUARD.check(text) is None


def test_whole_words_only() -> None:
    # "tory" inside "history", "kid" inside "kidney beans" (a food), "hiv" inside "archive".
    assert GUARD.check("history of kidneys in the archive") is None
    assert GUARD.check("kidney stones") is None  # a known miss: we do not list every organ


def test_a_real_child_is_still_caught_next_to_a_masked_compound() -> None:
    assert GUARD.check("my child process crashed, and my child is sick") == "minors"


def test_most_serious_topic_is_reported_first() -> None:
    assert GUARD.check("my teen talks about suicide and the election") == "self_harm"
    assert GUARD.check("medication for my kid") == "minors"


def test_disabling_builtin_topics() -> None:
    guard = SensitiveTopicGuard(topics=["health"])
    assert guard.topics == ("health",)
    assert guard.check("who should I vote for") is None
    assert guard.check("symptoms of flu and a fever infection") == "health"
    assert SensitiveTopicGuard(topics=[]).check("suicide election child cancer") is None


def test_topic_names_are_normalised() -> None:
    assert SensitiveTopicGuard(topics=[" Self-Harm ", "POLITICS", ""]).topics == (
        "self_harm",
        "politics",
    )


def test_unknown_topic_names_the_valid_ones() -> None:
    with pytest.raises(ValueError) as caught:
        SensitiveTopicGuard(topics=["health", "gambling"])
    message = str(caught.value)
    assert "'gambling'" in message
    for topic in ALL_TOPICS:
        assert topic in message


def test_a_single_string_is_refused() -> None:
    with pytest.raises(TypeError):
        SensitiveTopicGuard(topics="health")


def test_extra_terms() -> None:
    guard = SensitiveTopicGuard(topics=[], extra_terms=["crypto", "Acme Corp", "C++", "  "])
    assert guard.check("Should I buy CRYPTO now?") == CUSTOM_TOPIC
    assert guard.check("news about acme   corp") == CUSTOM_TOPIC
    assert guard.check("learning c++ in 2025") == CUSTOM_TOPIC
    assert guard.check("cryptography basics") is None
    assert guard.check("learning c in 2025") is None


def test_builtin_topics_win_over_extra_terms() -> None:
    guard = SensitiveTopicGuard(extra_terms=["crypto"])
    assert guard.check("crypto and the election") == "politics"
    assert guard.check("crypto and chill") == CUSTOM_TOPIC


def test_extra_terms_need_a_word_character() -> None:
    with pytest.raises(ValueError, match="letters or digits"):
        SensitiveTopicGuard(extra_terms=["--"])


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz .,!?'-\n", max_size=200))
def test_check_returns_a_known_topic_or_none(text: str) -> None:
    assert GUARD.check(text) in (*ALL_TOPICS, None)


@given(st.text(max_size=100), st.text(max_size=100))
def test_a_sensitive_phrase_is_caught_anywhere(before: str, after: str) -> None:
    text = f"{before} I want to kill myself. {after}"
    assert GUARD.check(text) is not None
