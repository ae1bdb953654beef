"""Rendering an ad as the text block spliced into a streamed answer.

Two formats:

* `tags`, the seed format the Echo LibreChat front end renders as a card::

      \\n\\n[ad]\\nSponsored · {advertiser}: **{title}** — {body}\\n[/ad][link]{url}[/link]\\n\\n

* `markdown`, for stock LibreChat or any markdown viewer: a sponsored section between two rules.

Ad text comes from an operator's file, so it is treated as hostile: whitespace (newlines
included) collapses to single spaces, control and bidi-override characters are dropped, and
markdown punctuation is backslash-escaped. The escaping also neutralises the tag markers: an
escaped `\\[/ad\\]` is no longer `[/ad]`. The link is percent-encoded where it could end the
markdown link or the `[link]` tag, and must be http(s).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal
from urllib.parse import quote

from echo_stream.ads.inventory import Ad

__all__ = ["AdFormat", "render_ad"]

AdFormat = Literal["tags", "markdown"]

_SEPARATOR = "\u00b7"  # middle dot
_DASH = "\u2014"  # em dash
# What can open or close inline markdown mid-line (links, code, emphasis, HTML, tables,
# strikethrough, LibreChat's `$` math) or a tag; `(`, `!`, `#` are inert once `[` is escaped.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|~$])")
# Unicode bidi embeddings/overrides/isolates can visually reorder the rest of the answer.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f")
# Kept as is: inert in both formats. Everything else ("()[]<>$` \" and spaces) is encoded.
_URL_SAFE = ":/?#@!&'*+,;=%-._~"


def render_ad(ad: Ad, fmt: AdFormat, link: str) -> str:
    """The ad as a block starting and ending with a blank line, pointing at `link`."""
    url = _safe_link(link)
    advertiser = _inline(ad.advertiser)
    title = _inline(ad.title)
    body = _inline(ad.body)
    if fmt == "tags":
        content = f"Sponsored {_SEPARATOR} {advertiser}: **{title}** {_DASH} {body}"
        return f"\n\n[ad]\n{content}\n[/ad][link]{url}[/link]\n\n"
    if fmt == "markdown":
        return (
            f"\n\n---\n**Sponsored** {_SEPARATOR} {advertiser}\n\n"
            f"**[{title}]({url})** {_DASH} {body}\n\n---\n\n"
        )
    raise ValueError(f"unknown ad format {fmt!r}; expected 'tags' or 'markdown'")


def _inline(text: str) -> str:
    """Ad text made safe to sit inside one line of markdown."""
    kept = "".join(
        " " if unicodedata.category(ch) == "Cc" else ch for ch in text if ch not in _BIDI_CONTROLS
    )
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(kept.split()))


def _safe_link(link: str) -> str:
    """`link` percent-encoded so it cannot end the link or tag; only http(s) is accepted."""
    if not link.lower().startswith(("http://", "https://")):
        raise ValueError(f"ad link must start with http:// or https://, got {link[:40]!r}")
    return quote(link.strip(), safe=_URL_SAFE)
