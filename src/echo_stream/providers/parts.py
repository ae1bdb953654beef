"""Message parts as the non-OpenAI providers want them: images and tool-call arguments."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from echo_stream.errors import InvalidRequest


@dataclass(frozen=True, slots=True)
class InlineImage:
    media_type: str
    data: str


@dataclass(frozen=True, slots=True)
class RemoteImage:
    url: str


def parse_image_url(url: str) -> InlineImage | RemoteImage:
    """Split a `data:` URL into media type and base64 payload; keep http(s) URLs as they are."""
    if url.startswith("data:"):
        header, sep, payload = url[5:].partition(",")
        media_type, _, encoding = header.partition(";")
        if not sep or encoding != "base64" or not media_type:
            raise InvalidRequest(
                "image_url data URLs must look like data:<media type>;base64,<data>",
                param="messages",
            )
        return InlineImage(media_type, payload)
    if url.startswith(("http://", "https://")):
        return RemoteImage(url)
    raise InvalidRequest("image_url must be a data: URL or an http(s) URL", param="messages")


def parse_tool_arguments(arguments: str) -> Any:
    """A tool call's JSON arguments string as an object; empty means no arguments."""
    if not arguments.strip():
        return {}
    try:
        return orjson.loads(arguments)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(
            "tool call arguments must be a JSON object string", param="messages"
        ) from exc
