"""Google Gemini (`/v1beta/models/{model}:streamGenerateContent?alt=sse`).

Request: system/developer messages become `systemInstruction` (or, when there is nothing else,
the one user turn); roles become user/model;
sampling knobs go to `generationConfig`; tools become function declarations. Stream: text parts
become text deltas, thought-summary parts (`"thought": true`) reasoning deltas; a whole
`functionCall` becomes one tool-call delta with a generated id (which
carries the call's thought signature back on the next turn), and
a candidate that called tools finishes with `tool_calls`. `usageMetadata` is cumulative, so the
last one seen is the answer's usage.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterable
from typing import Any

import orjson

from echo_stream.errors import InvalidRequest, UpstreamUnavailable
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

_FILTERED = frozenset(
    {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"}
)
_TOOL_MODES = {"auto": "AUTO", "required": "ANY", "none": "NONE"}


def build_body(request: ChatCompletionRequest) -> dict[str, Any]:
    """Map an OpenAI chat request onto a Gemini `generateContent` body."""
    system: list[str] = []
    contents: list[dict[str, Any]] = []
    tool_names: dict[str, str] = {}
    for message in request.messages:
        if message.role in ("system", "developer"):
            system.append(message.text())
            continue
        for call in message.tool_calls or ():
            tool_names[call.id] = call.function.name
        role = "model" if message.role == "assistant" else "user"
        parts = _parts(message, tool_names)
        if not parts:
            continue
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    instructions = "\n\n".join(part for part in system if part)
    if not contents:
        # Only system messages (LibreChat's title request): Gemini needs contents, so the
        # instructions become the one user turn.
        contents = [{"role": "user", "parts": [{"text": instructions}]}]
        instructions = ""
    body: dict[str, Any] = {"contents": contents}
    if instructions:
        body["systemInstruction"] = {"parts": [{"text": instructions}]}
    if config := _generation_config(request):
        body["generationConfig"] = config
    _add_tools(body, request)
    return body


def _parts(message: ChatMessage, tool_names: dict[str, str]) -> list[dict[str, Any]]:
    if message.role in ("tool", "function"):
        name = message.name or tool_names.get(message.tool_call_id or "", "")
        if not name:
            raise InvalidRequest(
                "a tool message must answer a tool call made earlier in the conversation",
                param="messages",
            )
        return [{"functionResponse": {"name": name, "response": {"content": message.text()}}}]
    parts: list[dict[str, Any]] = []
    if isinstance(message.content, str):
        if message.content:
            parts.append({"text": message.content})
    elif message.content:
        for part in message.content:
            if part.type == "text" and part.text:
                parts.append({"text": part.text})
            elif part.type == "image_url" and part.image_url is not None:
                image = parse_image_url(part.image_url.url)
                if isinstance(image, InlineImage):
                    parts.append({"inlineData": {"mimeType": image.media_type, "data": image.data}})
                else:
                    parts.append({"fileData": {"fileUri": image.url}})
    for call in message.tool_calls or ():
        args = parse_tool_arguments(call.function.arguments)
        function_call: dict[str, Any] = {"functionCall": {"name": call.function.name, "args": args}}
        if signature := signature_from_call_id(call.id):
            function_call["thoughtSignature"] = signature
        parts.append(function_call)
    return parts


_SIGNATURE_MARK = "__ts_"


def make_call_id(thought_signature: str | None) -> str:
    """A fresh tool-call id that carries Gemini's thought signature, if the call had one.

    Thinking models reject a later turn whose function call lost its signature; OpenAI clients
    send tool-call ids back verbatim, so the id is where it survives the round trip. It is
    wrapped in URL-safe base64, keeping ids to [A-Za-z0-9_-] as other providers require.
    """
    call_id = "call_" + secrets.token_hex(12)
    if not thought_signature:
        return call_id
    wrapped = base64.urlsafe_b64encode(thought_signature.encode()).decode().rstrip("=")
    return call_id + _SIGNATURE_MARK + wrapped


def signature_from_call_id(call_id: str) -> str | None:
    """The thought signature `make_call_id` put in `call_id`, as Gemini sent it."""
    _, mark, wrapped = call_id.partition(_SIGNATURE_MARK)
    if not mark or not wrapped:
        return None
    try:
        return base64.urlsafe_b64decode(wrapped + "=" * (-len(wrapped) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None


def _generation_config(request: ChatCompletionRequest) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if request.temperature is not None:
        config["temperature"] = request.temperature
    if request.top_p is not None:
        config["topP"] = request.top_p
    if limit := request.output_limit():
        config["maxOutputTokens"] = limit
    if stops := request.stop_list():
        config["stopSequences"] = stops[:5]
    if request.seed is not None:
        config["seed"] = request.seed
    if request.n and request.n > 1:
        config["candidateCount"] = request.n
    kind = (request.response_format or {}).get("type")
    if kind in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
        schema = ((request.response_format or {}).get("json_schema") or {}).get("schema")
        if kind == "json_schema" and schema:
            config["responseJsonSchema"] = schema
    return config


def _add_tools(body: dict[str, Any], request: ChatCompletionRequest) -> None:
    if not request.tools:
        return
    declarations = []
    for tool in request.tools:
        declaration: dict[str, Any] = {"name": tool.function.name}
        if tool.function.description:
            declaration["description"] = tool.function.description
        if tool.function.parameters:
            declaration["parametersJsonSchema"] = tool.function.parameters
        declarations.append(declaration)
    body["tools"] = [{"functionDeclarations": declarations}]
    calling: dict[str, Any] = {"mode": "AUTO"}
    if isinstance(request.tool_choice, str):
        calling["mode"] = _TOOL_MODES[request.tool_choice]
    elif name := request.tool_choice_name():
        calling = {"mode": "ANY", "allowedFunctionNames": [name]}
    body["toolConfig"] = {"functionCallingConfig": calling}


def _finish(reason: str, called_tools: bool) -> FinishReason:
    if reason == "MAX_TOKENS":
        return "length"
    if reason in _FILTERED:
        return "content_filter"
    return "tool_calls" if called_tools else "stop"


def _usage(meta: dict[str, Any]) -> Usage:
    prompt = shapes.count(meta.get("promptTokenCount"))
    thoughts = shapes.count(meta.get("thoughtsTokenCount"))
    completion = shapes.count(meta.get("candidatesTokenCount")) + thoughts
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=shapes.count(meta.get("totalTokenCount")) or prompt + completion,
        cached_tokens=shapes.optional_count(meta.get("cachedContentTokenCount")),
        reasoning_tokens=thoughts or None,
    )


class _Reader:
    """Tool-call counts per candidate, whether the answer finished, the last usage seen."""

    __slots__ = ("finished", "tool_counts", "usage")

    def __init__(self) -> None:
        self.tool_counts: dict[int, int] = {}
        self.finished = False
        self.usage: dict[str, Any] | None = None

    def feed(self, chunk: Any) -> list[AnswerEvent]:
        """The events in one `GenerateContentResponse` (one loop, no calls per text part)."""
        if error := chunk.get("error"):
            message = error.get("message", error) if isinstance(error, dict) else error
            raise UpstreamUnavailable(f"google stream error: {message}")
        events: list[AnswerEvent] = []
        candidates = chunk.get("candidates") or ()
        for candidate in candidates:
            index = candidate.get("index", 0)
            if type(index) is not int or not 0 <= index < 1024:
                index = shapes.index(index)
            for part in (candidate.get("content") or {}).get("parts") or ():
                if text := part.get("text"):
                    if type(text) is not str:
                        raise TypeError(f"text is {type(text).__name__}, not a string")
                    # A thought summary (`"thought": true`) is reasoning, not the answer.
                    if part.get("thought"):
                        events.append(ReasoningDelta(text, index))
                    else:
                        events.append(TextDelta(text, index))
                elif call := part.get("functionCall"):
                    events.append(self._tool_call(call, part, index))
            if reason := candidate.get("finishReason"):
                self.finished = True
                called = index in self.tool_counts
                events.append(Finish(_finish(shapes.text(reason), called), index))
        if meta := chunk.get("usageMetadata"):
            self.usage = meta  # cumulative: the last one is the answer's
        if not candidates and (chunk.get("promptFeedback") or {}).get("blockReason"):
            self.finished = True
            events.append(Finish("content_filter"))
        return events

    def _tool_call(self, call: dict[str, Any], part: dict[str, Any], index: int) -> ToolCallDelta:
        tool = self.tool_counts.get(index, 0)
        self.tool_counts[index] = tool + 1
        arguments = orjson.dumps(call.get("args") or {}).decode()
        call_id = make_call_id(shapes.optional_text(part.get("thoughtSignature")))
        return ToolCallDelta(tool, arguments, call_id, shapes.text(call.get("name")), index)

    def finish(self) -> Iterable[AnswerEvent]:
        """The usage, once the answer is known to be whole."""
        if not self.finished:
            raise truncated(GoogleProvider.name)
        return () if self.usage is None else (_usage(self.usage),)


class GoogleProvider(HttpProvider):
    """Adapter for the Gemini API's streamed `generateContent`."""

    name = "google"

    def __init__(
        self,
        base_url: str,
        api_key: str,
        options: UpstreamOptions,
        client: UpstreamClient | None = None,
    ) -> None:
        super().__init__(options, client, {"x-goog-api-key": api_key})
        self._base_url = base_url

    def prepare(self, request: ChatCompletionRequest, upstream_model: str) -> tuple[str, Any]:
        """The model is one percent-encoded path segment: no name can change the path."""
        url = build_url(
            self._base_url,
            "/v1beta/models/{model}:streamGenerateContent",
            {"alt": "sse"},
            model=upstream_model,
        )
        return url, build_body(request)

    def reader(self) -> _Reader:
        """Per-answer state."""
        return _Reader()


def create(setup: ProviderSetup) -> Provider:
    """The adapter for the Gemini API."""
    base_url = setup.base_url or SPEC.default_base_url or ""
    return GoogleProvider(base_url, setup.api_key or "", setup.options, setup.client)


SPEC = ProviderSpec(
    name="google",
    factory=create,
    key_variables=("GOOGLE_API_KEY", "GEMINI_API_KEY"),
    base_url_variable="GOOGLE_BASE_URL",
    default_base_url="https://generativelanguage.googleapis.com",
    prefixes=("gemini-",),
    catalog=(
        "gemini-2.0-flash-exp",
        "gemini-1.5-pro-latest",
        "gemini-2.0-flash",
        "gemini-2.5-flash",
        "gemini-2.5-pro",
    ),
)
