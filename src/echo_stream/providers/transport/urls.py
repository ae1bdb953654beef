"""The one way an upstream URL is built from request data.

A path template is ours (`"/v1beta/models/{model}:streamGenerateContent"`); every value put
into it is percent-encoded as a single path segment, so no model name can add a segment, walk
up with `..`, start a query or fragment, or break the request line. Every adapter builds its
URLs here.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from urllib.parse import quote, urlencode, urlsplit

_FIELDS = string.Formatter()


def segment(value: str) -> str:
    """`value` percent-encoded as one path segment (UTF-8; `/`, `?`, `#`, `%`, spaces, controls
    and a bare `.` or `..` all escaped)."""
    encoded = quote(value, safe="")
    if encoded in (".", ".."):  # unreserved, so quote() keeps them; as a segment they walk up
        encoded = encoded.replace(".", "%2E")
    return encoded


def check_base_url(base_url: str) -> str:
    """A configured base URL without its trailing slash; refuses anything but plain http(s)."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) base URL: {base_url!r}")
    if parts.query or parts.fragment or not base_url.isascii() or not base_url.isprintable():
        raise ValueError(f"a base URL takes no query, fragment or odd characters: {base_url!r}")
    if " " in base_url:
        raise ValueError(f"a base URL takes no spaces: {base_url!r}")
    return base_url.rstrip("/")


def build_url(
    base_url: str, template: str, query: Mapping[str, str] | None = None, **values: str
) -> str:
    """`base_url` + `template` with each `{name}` replaced by `segment(values[name])`, then
    `query` (encoded) if given."""
    names = {name for _, name, _, _ in _FIELDS.parse(template) if name is not None}
    if names != set(values):
        raise ValueError(f"template {template!r} needs {sorted(names)}, got {sorted(values)}")
    path = template.format(**{name: segment(value) for name, value in values.items()})
    url = check_base_url(base_url) + path
    if query:
        url += "?" + urlencode(query)
    return url
