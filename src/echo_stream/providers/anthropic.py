"""Anthropic's Messages API (`POST /v1/messages`, streamed).

Request: system/developer messages become the top-level `system`; tool results become user
`tool_result` blocks; consecutive same-role messages merge (the API requires alternation);
`max_tokens` is always set. Stream: text and `input_json_delta` blocks become text and tool-call
deltas with OpenAI-side tool indexes; usage comes from `message_start` and `message_delta`.
"""

from __future__ import annotations

from contextlib import aclosing
from typing import Any

from echo_stream.errors import RateLimited, UpstreamError, UpstreamUnavailable
from echo_stream.events import (
    FLUSH,
    EventStream,
    Finish,
    FinishReason,
    TextDelta,
    ToolCallDelta,
    Usage,
)
from echo_stream.protocol import ChatCompletionRequest, ChatMessage
from echo_stream.providers.http import (
    UpstreamOptions,
    json_events,
    make_client,
    open_stream,
    truncated,
)
from echo_stream.providers.httpx_client import UpstreamClient
from echo_stream.providers.parts import InlineImage, parse_image_url, parse_tool_arguments

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
    body: dict[str, Any] = {
        "model": upstream_model,
        "max_tokens": request.output_limit() or default_max_tokens,
        "messages": messages,
        "stream": True,
    }
    if any(system):
        body["system"] = "\n\n".join(part for part in system if part)
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


class _StreamState:
    """What one Messages stream accumulates: tool indexes and usage."""

    __slots__ = ("cached", "input", "next_tool", "output", "stop", "tool_index")

    def __init__(self) -> None:
        self.tool_index: dict[int, int] = {}
        self.next_tool = 0
        self.input = 0
        self.cached: int | None = None
        self.output = 0
        self.stop: str | None = None

    def message_start(self, usage: dict[str, Any]) -> None:
        read = usage.get("cache_read_input_tokens") or 0
        written = usage.get("cache_creation_input_tokens") or 0
        self.input = (usage.get("input_tokens") or 0) + read + written
        self.cached = read or None
        self.output = usage.get("output_tokens") or 0

    def usage(self) -> Usage:
        return Usage(self.input, self.output, self.input + self.output, cached_tokens=self.cached)


def _is_stop(event: Any) -> bool:
    return isinstance(event, dict) and event.get("type") == "message_stop"


def _stream_error(event: dict[str, Any]) -> UpstreamError:
    error = event.get("error") or {}
    kind, message = error.get("type", "error"), error.get("message", "")
    if kind == "rate_limit_error":
        return RateLimited(f"anthropic: {message}")
    return UpstreamUnavailable(f"anthropic stream error ({kind}): {message}")


class AnthropicProvider:
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
        self._url = base_url.rstrip("/") + "/v1/messages"
        self._headers = {"x-api-key": api_key, "anthropic-version": API_VERSION}
        self._options = options
        self._default_max_tokens = default_max_tokens
        self._client = client or make_client(options)

    async def stream(self, request: ChatCompletionRequest, upstream_model: str) -> EventStream:
        """Stream the Messages API answer as events."""
        body = build_body(request, upstream_model, self._default_max_tokens)
        response = await open_stream(
            self._client,
            self.name,
            self._url,
            body=body,
            headers=self._headers,
            max_retries=self._options.max_retries,
        )
        state = _StreamState()
        stopped = False
        async with aclosing(json_events(self.name, response, _is_stop)) as payloads:
            async for event in payloads:
                if event is FLUSH:
                    yield FLUSH
                    continue
                kind = event.get("type")
                if kind == "content_block_delta":
                    delta = event["delta"]
                    if delta.get("type") == "text_delta" and delta.get("text"):
                        yield TextDelta(delta["text"])
                    elif delta.get("type") == "input_json_delta" and delta.get("partial_json"):
                        index = state.tool_index.get(event["index"])
                        if index is not None:  # not one of ours (a server tool's input)
                            yield ToolCallDelta(index=index, arguments=delta["partial_json"])
                elif kind == "content_block_start":
                    block = event["content_block"]
                    if block.get("type") == "tool_use":
                        state.tool_index[event["index"]] = index = state.next_tool
                        state.next_tool += 1
                        yield ToolCallDelta(
                            index=index, arguments="", id=block["id"], name=block["name"]
                        )
                elif kind == "message_start":
                    state.message_start(event["message"].get("usage") or {})
                elif kind == "message_delta":
                    state.stop = (event.get("delta") or {}).get("stop_reason") or state.stop
                    state.output = (event.get("usage") or {}).get("output_tokens", state.output)
                elif kind == "message_stop":
                    stopped = True
                    yield state.usage()
                    yield Finish(_STOP.get(state.stop or "end_turn", "stop"))
                elif kind == "error":
                    raise _stream_error(event)
        if not stopped:
            raise truncated(self.name)

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._client.aclose()
