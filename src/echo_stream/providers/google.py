"""Google Gemini (`/v1beta/models/{model}:streamGenerateContent?alt=sse`).

Request: system/developer messages become `systemInstruction`; roles become user/model;
sampling knobs go to `generationConfig`; tools become function declarations. Stream: text parts
become text deltas; a whole `functionCall` becomes one tool-call delta with a generated id (which
carries the call's thought signature back on the next turn), and
a candidate that called tools finishes with `tool_calls`. `usageMetadata` is cumulative, so the
last one seen is the answer's usage.
"""

from __future__ import annotations

import base64
import secrets
from contextlib import aclosing
from typing import Any

import orjson

from echo_stream.errors import InvalidRequest, UpstreamUnavailable
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
    body: dict[str, Any] = {"contents": contents}
    if any(system):
        body["systemInstruction"] = {"parts": [{"text": "\n\n".join(s for s in system if s)}]}
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
    prompt = meta.get("promptTokenCount") or 0
    thoughts = meta.get("thoughtsTokenCount") or 0
    completion = (meta.get("candidatesTokenCount") or 0) + thoughts
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=meta.get("totalTokenCount") or prompt + completion,
        cached_tokens=meta.get("cachedContentTokenCount"),
        reasoning_tokens=thoughts or None,
    )


class GoogleProvider:
    """Adapter for the Gemini API's streamed `generateContent`."""

    name = "google"

    def __init__(
        self,
        base_url: str,
        api_key: str,
        options: UpstreamOptions,
        client: UpstreamClient | None = None,
    ) -> None:
        self._base = base_url.rstrip("/") + "/v1beta/models/"
        self._headers = {"x-goog-api-key": api_key}
        self._options = options
        self._client = client or make_client(options)

    async def stream(self, request: ChatCompletionRequest, upstream_model: str) -> EventStream:
        """Stream Gemini's answer as events."""
        url = f"{self._base}{upstream_model}:streamGenerateContent?alt=sse"
        response = await open_stream(
            self._client,
            self.name,
            url,
            body=build_body(request),
            headers=self._headers,
            max_retries=self._options.max_retries,
        )
        tool_counts: dict[int, int] = {}
        finished = False
        usage: dict[str, Any] | None = None
        async with aclosing(json_events(self.name, response)) as payloads:
            async for chunk in payloads:
                if chunk is FLUSH:
                    yield FLUSH
                    continue
                if error := chunk.get("error"):
                    raise UpstreamUnavailable(f"google stream error: {error.get('message', error)}")
                for candidate in chunk.get("candidates") or ():
                    index = candidate.get("index", 0)
                    for part in (candidate.get("content") or {}).get("parts") or ():
                        if part.get("thought"):
                            continue
                        if text := part.get("text"):
                            yield TextDelta(text, index)
                        elif call := part.get("functionCall"):
                            tool = tool_counts.get(index, 0)
                            tool_counts[index] = tool + 1
                            arguments = orjson.dumps(call.get("args") or {}).decode()
                            call_id = make_call_id(part.get("thoughtSignature"))
                            yield ToolCallDelta(tool, arguments, call_id, call.get("name"), index)
                    if reason := candidate.get("finishReason"):
                        finished = True
                        yield Finish(_finish(reason, index in tool_counts), index)
                if meta := chunk.get("usageMetadata"):
                    usage = meta
                if not chunk.get("candidates") and (chunk.get("promptFeedback") or {}).get(
                    "blockReason"
                ):
                    finished = True
                    yield Finish("content_filter")
        if not finished:
            raise truncated(self.name)
        if usage is not None:
            yield _usage(usage)

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._client.aclose()
