"""Anthropic's Messages API (`POST /v1/messages`, streamed).

Request: system/developer messages become the top-level `system` (or, when there is nothing
else, the one user turn); tool results become user `tool_result` blocks; consecutive same-role
messages merge (the API requires alternation);
`max_tokens` is always set. Stream: text and `input_json_delta` blocks become text and tool-call
deltas with OpenAI-side tool indexes, `thinking_delta`s become reasoning deltas (signatures and
redacted thinking are dropped); usage comes from `message_start` and `message_delta`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from echo_stream.errors import RateLimited, UpstreamError, UpstreamUnavailable
from echo_stream.events import (
    AnswerEvent,
    Finish,
    FinishReason,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from echo_stream.protocol import ChatCompletionRequest, ChatMessage
from echo_stream.providers import shapes
from echo_stream.providers.base import Provider, ProviderSetup, ProviderSpec
from echo_stream.providers.http import HttpProvider, UpstreamOptions, truncated
from echo_stream.providers.parts import InlineImage, parse_image_url, parse_tool_arguments
from echo_stream.providers.transport.base import UpstreamClient
from echo_stream.providers.transport.urls import build_url

API_VERSION = "2023-06-01"
_STOP: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def build_body(
    request: ChatCompletionRequest, upstream_model: str, default_max_tokens: int
) -> dict[str, Any]:
    """Map an OpenAI chat request onto a streamed Messages API request."""
    system: list[str] = []
    messages: list[dict[str, Any]] = []
    for message in request.messages:
        if message.role in ("system", "developer"):
            system.append(message.text())
            continue
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _blocks(message)
        if not blocks:
            continue
        if messages and messages[-1]["role"] == role:
            messages[-1]["content"].extend(blocks)
        else:
            messages.append({"role": role, "content": blocks})
    instructions = "\n\n".join(part for part in system if part)
    if not messages:
        # Only system messages (LibreChat's title request): the API needs a user turn, so the
        # instructions become it.
        messages = [{"role": "user", "content": [{"type": "text", "text": instructions}]}]
        instructions = ""
    body: dict[str, Any] = {
        "model": upstream_model,
        "max_tokens": request.output_limit() or default_max_tokens,
        "messages": messages,
        "stream": True,
    }
    if instructions:
        body["system"] = instructions
    if request.temperature is not None:
        body["temperature"] = min(request.temperature, 1.0)  # Anthropic's range is 0..1
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if stops := [stop for stop in request.stop_list() if stop.strip()]:
        body["stop_sequences"] = stops
    if request.user:
        body["metadata"] = {"user_id": request.user}
    _add_tools(body, request)
    return body


def _blocks(message: ChatMessage) -> list[dict[str, Any]]:
    if message.role in ("tool", "function"):
        return [
            {
                "type": "tool_result",
                "tool_use_id": message.tool_call_id or message.name or "",
                "content": message.text(),
            }
        ]
    blocks: list[dict[str, Any]] = []
    if isinstance(message.content, str):
        if message.content:
            blocks.append({"type": "text", "text": message.content})
    elif message.content:
        for part in message.content:
            if part.type == "text" and part.text:
                blocks.append({"type": "text", "text": part.text})
            elif part.type == "image_url" and part.image_url is not None:
                blocks.append(_image_block(part.image_url.url))
    for call in message.tool_calls or ():
        blocks.append(
            {
                "type": "tool_use",
                "id": call.id,
                "name": call.function.name,
                "input": parse_tool_arguments(call.function.arguments),
            }
        )
    return blocks


def _image_block(url: str) -> dict[str, Any]:
    image = parse_image_url(url)
    if isinstance(image, InlineImage):
        source = {"type": "base64", "media_type": image.media_type, "data": image.data}
        return {"type": "image", "source": source}
    return {"type": "image", "source": {"type": "url", "url": image.url}}


def _add_tools(body: dict[str, Any], request: ChatCompletionRequest) -> None:
    if not request.tools:
        return
    body["tools"] = [
        {
            "name": tool.function.name,
            "description": tool.function.description or "",
            "input_schema": tool.function.parameters or {"type": "object", "properties": {}},
        }
        for tool in request.tools
    ]
    choice: dict[str, Any] = {"type": "auto"}
    if request.tool_choice == "none":
        # Tools stay declared: a history holding tool_use blocks needs them.
        body["tool_choice"] = {"type": "none"}
        return
    if request.tool_choice == "required":
        choice = {"type": "any"}
    elif name := request.tool_choice_name():
        choice = {"type": "tool", "name": name}
    if request.parallel_tool_calls is False:
        choice["disable_parallel_tool_use"] = True
    body["tool_choice"] = choice


class _Reader:
    """What one Messages stream accumulates: tool indexes, usage, the stop reason."""

    __slots__ = ("cached", "input", "next_tool", "output", "stop", "stopped", "tool_index")

    def __init__(self) -> None:
        self.tool_index: dict[int, int] = {}
        self.next_tool = 0
        self.input = 0
        self.cached: int | None = None
        self.output = 0
        self.stop: str | None = None
        self.stopped = False

    def feed(self, event: Any) -> list[AnswerEvent]:
        """The events in one Messages stream event."""
        kind = event["type"]
        if kind == "content_block_delta":
            delta = event["delta"]
            if delta.get("type") == "text_delta" and (text := delta.get("text")):
                if type(text) is not str:  # inline: the per-token path makes no call
                    raise TypeError(f"text is {type(text).__name__}, not a string")
                return [TextDelta(text)]
            delta_type = delta.get("type")
            if delta_type == "thinking_delta" and (thinking := delta.get("thinking")):
                return [ReasoningDelta(shapes.text(thinking))]
            if delta_type == "input_json_delta" and delta.get("partial_json"):
                index = self.tool_index.get(event["index"])
                if index is not None:  # not one of ours (a server tool's input)
                    return [
                        ToolCallDelta(index=index, arguments=shapes.text(delta["partial_json"]))
                    ]
        elif kind == "content_block_start":
            block = event["content_block"]
            if block.get("type") == "tool_use":
                self.tool_index[shapes.index(event["index"])] = index = self.next_tool
                self.next_tool += 1
                call_id, name = shapes.text(block["id"]), shapes.text(block["name"])
                return [ToolCallDelta(index=index, arguments="", id=call_id, name=name)]
        elif kind == "message_start":
            self._message_start(event["message"].get("usage") or {})
        elif kind == "message_delta":
            stop = (event.get("delta") or {}).get("stop_reason")
            self.stop = shapes.optional_text(stop) or self.stop
            output = (event.get("usage") or {}).get("output_tokens")
            self.output = self.output if output is None else shapes.count(output)
        elif kind == "message_stop":
            self.stopped = True
            usage = Usage(
                self.input, self.output, self.input + self.output, cached_tokens=self.cached
            )
            return [usage, Finish(_STOP.get(self.stop or "end_turn", "stop"))]
        elif kind == "error":
            raise _stream_error(event)
        elif type(kind) is not str:
            raise TypeError(f"event type is {type(kind).__name__}, not a string")
        return []

    def finish(self) -> Iterable[AnswerEvent]:
        """Nothing to add; a stream without `message_stop` was cut."""
        if not self.stopped:
            raise truncated(AnthropicProvider.name)
        return ()

    def _message_start(self, usage: dict[str, Any]) -> None:
        read = shapes.count(usage.get("cache_read_input_tokens"))
        written = shapes.count(usage.get("cache_creation_input_tokens"))
        self.input = shapes.count(usage.get("input_tokens")) + read + written
        self.cached = read or None
        self.output = shapes.count(usage.get("output_tokens"))


def _is_stop(payload: Any) -> bool:
    """`message_stop` ends the answer."""
    return isinstance(payload, dict) and payload.get("type") == "message_stop"


def _stream_error(event: dict[str, Any]) -> UpstreamError:
    error = event.get("error") or {}
    kind, message = error.get("type", "error"), error.get("message", "")
    if kind == "rate_limit_error":
        return RateLimited(f"anthropic: {message}")
    return UpstreamUnavailable(f"anthropic stream error ({kind}): {message}")


class AnthropicProvider(HttpProvider):
    """Adapter for Anthropic's streamed Messages API."""

    name = "anthropic"

    def __init__(
        self,
        base_url: str,
        api_key: str,
        options: UpstreamOptions,
        default_max_tokens: int = 4096,
        client: UpstreamClient | None = None,
    ) -> None:
        headers = {"x-api-key": api_key, "anthropic-version": API_VERSION}
        super().__init__(options, client, headers)
        self._url = build_url(base_url, "/v1/messages")
        self._default_max_tokens = default_max_tokens

    def prepare(self, request: ChatCompletionRequest, upstream_model: str) -> tuple[str, Any]:
        """The fixed endpoint; the model travels in the body."""
        return self._url, build_body(request, upstream_model, self._default_max_tokens)

    def reader(self) -> _Reader:
        """Per-answer state."""
        return _Reader()

    is_last = staticmethod(_is_stop)


def create(setup: ProviderSetup) -> Provider:
    """The adapter for Anthropic's Messages API."""
    return AnthropicProvider(
        setup.base_url or SPEC.default_base_url or "",
        setup.api_key or "",
        setup.options,
        default_max_tokens=setup.settings.anthropic_default_max_tokens,
        client=setup.client,
    )


SPEC = ProviderSpec(
    name="anthropic",
    factory=create,
    key_variables=("ANTHROPIC_API_KEY",),
    base_url_variable="ANTHROPIC_BASE_URL",
    default_base_url="https://api.anthropic.com",
    prefixes=("claude-",),
    catalog=(
        "claude-3-5-sonnet-20241022",
        "claude-3-opus-20240229",
        "claude-3-5-haiku-20241022",
        "claude-3-7-sonnet-20250219",
        "claude-sonnet-4-20250514",
        "claude-opus-4-20250514",
        "claude-sonnet-4-5",
    ),
)
