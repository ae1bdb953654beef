"""OpenAI text chunks recognised from their bytes, for the relay.

Nearly every event of an OpenAI stream is laid out byte for byte the same way (the captures in
`shared/reference/provider-streams/` and OpenAI's current `service_tier`, `usage: null` and
`obfuscation` fields; the gpt-5 models send no `logprobs` and a null fingerprint):

    data: {"id":"...","object":"chat.completion.chunk","created":N,"model":"...",
           "system_fingerprint":"...","choices":[{"index":0,"delta":{"content":"..."},
           "logprobs":null,"finish_reason":null}]}

For a read made only of such events, one regular expression per event finds choice 0's text
without the SSE split, the JSON decoding of the whole object and the walk through its dicts
(`PayloadDecoder.peek`, `_plain_text`).

The pattern only says yes where the general path would return exactly the same texts: every
key is fixed and appears once, the other strings are printable ASCII without escapes, numbers
are plain integers, the text is a valid non-empty JSON string (and is decoded by orjson, which
checks its UTF-8 and escapes). Anything else (a role, a finish, usage, another server's layout,
`data:` without its space, CRLF framing) is None, and the caller takes the general path.
"""

from __future__ import annotations

import re

import orjson

_NAME = rb'"[ !#-\[\]-~]*"'
"""A JSON string of printable ASCII, no escapes: ids, model names, fingerprints."""
_TEXT = rb'"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})+"'
"""A non-empty JSON string (its bytes are checked as UTF-8 when decoded)."""

_TEXT_EVENT = re.compile(
    (
        rb'data: \{"id":NAME,"object":"chat\.completion\.chunk","created":(?:0|[1-9][0-9]{0,15}),'
        rb'"model":NAME(?:,"service_tier":NAME)?(?:,"system_fingerprint":(?:NAME|null))?,'
        rb'"choices":\[\{"index":0,"delta":\{"content":(TEXT)\},'
        rb'(?:"logprobs":null,)?"finish_reason":null\}\](?:,"usage":null)?(?:,"obfuscation":NAME)?\}\n\n'
    )
    .replace(b"NAME", _NAME)
    .replace(b"TEXT", _TEXT)
)
"""One text event; group 1 is its text as a JSON string."""


def content_texts(data: bytes) -> list[str] | None:
    """Choice 0's texts if `data` is only whole text events in OpenAI's layout, else None."""
    match = _TEXT_EVENT.match
    texts: list[str] = []
    position, end = 0, len(data)
    while position < end:
        found = match(data, position)
        if found is None:
            return None
        try:
            texts.append(orjson.loads(found.group(1)))
        except orjson.JSONDecodeError:  # bad UTF-8 or a lone surrogate: the general path says so
            return None
        position = found.end()
    return texts or None
