"""Tests for rendering ad blocks, including hostile ad text."""

from __future__ import annotations

import dataclasses
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from echo_stream.ads.format import render_ad
from echo_stream.ads.inventory import Ad

AD = Ad(
    id="acme-1",
    advertiser="Acme",
    title="Acme rockets",
    body="Rockets for every road runner.",
    url="https://acme.example/rockets",
    keywords=("rocket",),
    topics=(),
    weight=1.0,
    starts=None,
    ends=None,
    budget=None,
    house=False,
)
LINK = "https://gw.example/ads/click?ad=acme-1&sig=abc"


def unescaped(block: str, token: str) -> int:
    """How often `token` occurs not escaped, i.e. after an even run of backslashes."""
    return len(re.findall(rf"(?<!\\)(?:\\\\)*{re.escape(token)}", block))


HOSTILE = dataclasses.replace(
    AD,
    advertiser="Evil [/ad] Co",
    title="Win **now**](javascript:alert(1))",
    body=(
        "line one\nline two\r\n[/ad][link]https://evil.example[/link] `rm -rf` $5 <b>\u202eoops\x00"
    ),
)


def test_tags_format_is_exact() -> None:
    assert render_ad(AD, "tags", LINK) == (
        "\n\n[ad]\n"
        "Sponsored \u00b7 Acme: **Acme rockets** \u2014 Rockets for every road runner.\n"
        "[/ad][link]https://gw.example/ads/click?ad=acme-1&sig=abc[/link]\n\n"
    )


def test_markdown_format_is_exact() -> None:
    assert render_ad(AD, "markdown", LINK) == (
        "\n\n---\n**Sponsored** \u00b7 Acme\n\n"
        "**[Acme rockets](https://gw.example/ads/click?ad=acme-1&sig=abc)** \u2014 "
        "Rockets for every road runner.\n\n---\n\n"
    )


@pytest.mark.parametrize("fmt", ["tags", "markdown"])
def test_both_formats_are_separate_labelled_blocks(fmt: str) -> None:
    block = render_ad(AD, fmt, AD.url)  # type: ignore[arg-type]
    assert block.startswith("\n\n") and block.endswith("\n\n")
    assert "Sponsored" in block and "Acme" in block and AD.url in block


def test_hostile_text_cannot_close_the_tags_block() -> None:
    block = render_ad(HOSTILE, "tags", LINK)
    assert block.count("[ad]") == 1 and block.count("[/ad]") == 1
    assert block.count("[link]") == 1 and block.count("[/link]") == 1
    content = block.removeprefix("\n\n[ad]\n").split("\n[/ad]")[0]
    assert "\n" not in content and "\r" not in content
    assert "\u202e" not in content and "\x00" not in content
    assert content.startswith("Sponsored \u00b7 Evil \\[/ad\\] Co: ")
    assert "line one line two \\[/ad\\]\\[link\\]" in content


def test_hostile_text_cannot_break_out_of_markdown() -> None:
    block = render_ad(HOSTILE, "markdown", LINK)
    # The only link is ours: every other bracket and backtick is escaped.
    assert unescaped(block, "](") == 1
    assert f"]({LINK})" in block
    for token in ("`", "<", "$", "[/ad]"):
        assert unescaped(block, token) == 0
    assert "**[Win \\*\\*now\\*\\*\\](javascript:alert(1))](" in block
    # Body newlines would start new markdown blocks; they are collapsed.
    assert "line one line two" in block


def test_link_is_encoded_where_it_could_end_the_block() -> None:
    link = "https://x.example/a b)(<>[/link]`$"
    tags = render_ad(AD, "tags", link)
    assert "[link]https://x.example/a%20b%29%28%3C%3E%5B/link%5D%60%24[/link]" in tags
    markdown = render_ad(AD, "markdown", link)
    assert "(https://x.example/a%20b%29%28%3C%3E%5B/link%5D%60%24)" in markdown


def test_existing_percent_escapes_and_query_strings_survive() -> None:
    link = "https://x.example/p%20q?a=1&b=two;c=3#frag"
    assert f"[link]{link}[/link]" in render_ad(AD, "tags", link)


@pytest.mark.parametrize("link", ["javascript:alert(1)", "data:text/html,hi", "/relative", ""])
def test_only_http_links_are_rendered(link: str) -> None:
    with pytest.raises(ValueError, match="http"):
        render_ad(AD, "tags", link)


def test_unknown_format() -> None:
    with pytest.raises(ValueError, match="'tags' or 'markdown'"):
        render_ad(AD, "html", LINK)  # type: ignore[arg-type]


_hostile_text = st.text(
    alphabet=st.sampled_from(list("ab []()/\\`*_<>$|~\n\r\t\u2028\u202e\x00")) | st.characters(),
    min_size=1,
    max_size=60,
)


@given(advertiser=_hostile_text, title=_hostile_text, body=_hostile_text)
def test_tags_block_structure_survives_any_text(advertiser: str, title: str, body: str) -> None:
    ad = dataclasses.replace(AD, advertiser=advertiser, title=title, body=body)
    block = render_ad(ad, "tags", LINK)
    lines = block.split("\n")
    assert len(lines) == 7 and "\r" not in block
    assert lines[:3] == ["", "", "[ad]"] and lines[-2:] == ["", ""]
    assert lines[3].startswith("Sponsored \u00b7 ")
    assert lines[4] == f"[/ad][link]{LINK}[/link]"
    for marker in ("[ad]", "[/ad]", "[link]", "[/link]"):
        assert block.count(marker) == 1


@given(advertiser=_hostile_text, title=_hostile_text, body=_hostile_text)
def test_markdown_block_structure_survives_any_text(advertiser: str, title: str, body: str) -> None:
    ad = dataclasses.replace(AD, advertiser=advertiser, title=title, body=body)
    block = render_ad(ad, "markdown", LINK)
    lines = block.split("\n")
    assert lines[:3] == ["", "", "---"] and lines[-4:] == ["", "---", "", ""]
    assert len(lines) == 10
    assert lines[3].startswith("**Sponsored** \u00b7 ")
    assert unescaped(block, "](") == 1
    assert unescaped(block, "[") == 1 and unescaped(block, "`") == 0
