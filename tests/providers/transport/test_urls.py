"""The URL builder: every value is one percent-encoded segment; templates and bases are ours."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import pytest

from echo_stream.providers.transport.urls import build_url, check_base_url, segment

NASTY = [
    "../../../v1beta/files#",
    "gemini-2.5-flash:generateContent?key=zzz&alt=json#",
    "a b",
    "a%2Fb",
    "a\r\nX-Injected: 1",
    "gemini-€",
    "x" * 10_000,
    "..",
    ".",
    "a/b",
    "\x00\x7f",
]


@pytest.mark.parametrize("value", NASTY)
def test_a_value_stays_one_segment_of_the_path(value: str) -> None:
    url = build_url(
        "https://host.example/base/", "/models/{model}:run", {"alt": "sse"}, model=value
    )
    parts = urlsplit(url)
    assert parts.netloc == "host.example"
    assert parts.query == "alt=sse" and parts.fragment == ""
    assert parts.path.startswith("/base/models/") and parts.path.endswith(":run")
    encoded = parts.path.removeprefix("/base/models/").removesuffix(":run")
    assert "/" not in encoded and encoded not in (".", "..")
    assert unquote(encoded) == value
    assert url.isascii() and url.isprintable() and " " not in url


def test_dots_alone_are_escaped_but_inside_names_kept() -> None:
    assert segment("..") == "%2E%2E"
    assert segment(".") == "%2E"
    assert segment("gemini-2.5-flash") == "gemini-2.5-flash"


def test_template_and_values_must_match() -> None:
    with pytest.raises(ValueError, match="needs"):
        build_url("https://h", "/models/{model}")
    with pytest.raises(ValueError, match="needs"):
        build_url("https://h", "/x", model="m")


@pytest.mark.parametrize(
    "base",
    ["ftp://h", "https://", "https://h/?q=1", "https://h/#f", "https://h/€", "https://h/a b"],
)
def test_odd_base_urls_are_refused(base: str) -> None:
    with pytest.raises(ValueError):
        check_base_url(base)


def test_base_url_trailing_slash_is_dropped() -> None:
    assert build_url("http://127.0.0.1:9/v1/", "/chat/completions") == (
        "http://127.0.0.1:9/v1/chat/completions"
    )
